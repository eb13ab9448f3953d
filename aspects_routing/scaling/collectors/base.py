"""
What every collector shares: how it says "not applicable here", and how a URL
is shown without its credentials.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class Skipped(Exception):
    """
    Raised by a collector when its source is not in use here (not configured,
    switched off by a flag). The report shows the section as skipped with this
    message, which is not a failure: nothing was expected to be measured.
    """


class Unavailable(Exception):
    """
    Raised by a collector whose source could not be measured, with a reason an
    operator can act on (shown as is, after secrets are scrubbed).
    """


def redact_url(url: str | None) -> str | None:
    """
    ``url`` with any user name, password and query string removed.

    ``redis://:s3cret@redis:6379/0`` -> ``redis://redis:6379/0``. Query strings
    go too because some clients accept ``?password=...``.
    """
    if not url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def url_secrets(url: str | None) -> tuple[str, ...]:
    """The credentials embedded in ``url`` (user name, password, query values), to scrub from messages."""
    if not url:
        return ()
    try:
        parts = urlsplit(url)
    except ValueError:
        return ()
    found = [parts.password or ""]
    for pair in parts.query.split("&"):
        name, _sep, value = pair.partition("=")
        if any(word in name.lower() for word in ("pass", "token", "secret", "key")):
            found.append(value)
    return tuple(s for s in found if len(s) >= 3)


def scrub(text: str | None, secrets: tuple[str, ...]) -> str | None:
    """``text`` with every one of ``secrets`` replaced by ``***`` (longest first)."""
    if not text:
        return text
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text
