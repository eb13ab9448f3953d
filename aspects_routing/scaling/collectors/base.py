"""
What every collector shares: how it says "not applicable here". URLs are shown
and scrubbed by :mod:`aspects_routing.redaction` (re-exported here).
"""

from __future__ import annotations

from aspects_routing import redaction


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


def redact_url(url: str | None, setting: str = "URL") -> str | None:
    """``url`` without user, password or query (:attr:`aspects_routing.redaction.Address.location`)."""
    return redaction.redact_url(url, setting)


def url_secrets(url: str | None, setting: str = "URL") -> tuple[str, ...]:
    """The secrets in ``url`` (password and secret query values; not the user name)."""
    return redaction.parse_url(url, setting).secrets if url else ()


def scrub(text: str | None, secrets: tuple[str, ...]) -> str | None:
    """:func:`aspects_routing.redaction.scrub`: for exception text and reasons only."""
    return redaction.scrub(text, secrets)
