"""
The one place where URLs and DSNs are parsed, shown and turned into error reasons.

Every URL the package reads (the Celery broker, ``METRICS_REDIS_URL``, ``RALPH_URL``,
``SUPERSET_URL``, the ClickHouse DSN, ``EVENT_BUS_REDIS_CONNECTION_URL``, the Kafka
bootstrap servers) goes through :func:`parse_url`, which never raises and tolerates
what operators really type:

* reserved characters left unencoded in the password (``/``, ``#``, ``?``, ``@``,
  ``:``): the user-info ends at the **last** ``@`` that is followed by a valid
  ``host[:port]`` and then ``/``, ``?``, ``#`` or the end;
* a missing port, an IPv6 literal (``[::1]``), an empty host (``unix:///path``);
* nothing parseable at all: the whole value is then treated as secret and shown as
  ``scheme://<unparseable URL>``.

The :class:`Address` it returns gives a display form without credentials
(:attr:`Address.display`, :attr:`Address.location`), the parts to connect with
(:attr:`Address.url` re-encodes them so a library parses them right), and the
strings that are secret (:attr:`Address.secrets`: passwords and secret query values;
user names are not secrets).

Library errors may echo what they were given, so they are never shown raw:
:func:`describe_error` maps them to a short reason (``connection refused``,
``authentication failed``...), and :meth:`Address.failure` prefixes it with the
setting and the host. :func:`scrub` is the last line of defence for exception text:
it masks the secrets and any 4+-character fragment of them, and nothing else.
"""

from __future__ import annotations

import re
import socket
import ssl
from dataclasses import dataclass, field
from typing import Iterable
from urllib.parse import quote, unquote, unquote_plus

#: Shortest secret (or fragment of one) that is masked in exception text. Shorter
#: strings are too common to mask without changing ordinary words.
MIN_SECRET = 4
MASK = "***"
#: Query parameter names whose values are credentials (``?password=``, ``?token=``...).
SECRET_PARAM_WORDS = ("pass", "pwd", "token", "secret", "key", "auth", "credential", "signature")
UNPARSEABLE = "<unparseable URL>"

_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+._\-]*)://")
# A host (name, IPv4, bracketed IPv6) with an optional port, then the end of the authority.
_AUTHORITY_RE = re.compile(r"(\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9._~\-]+)?\]|[A-Za-z0-9._~\-]*)(?::(\d*))?(?=[/?#]|$)")


class UnusableURL(ValueError):
    """A URL that cannot be connected to; the message names the setting and holds no secret."""


def is_secret_param(name: str) -> bool:
    """True when the query parameter ``name`` carries a credential."""
    lowered = name.lower()
    return any(word in lowered for word in SECRET_PARAM_WORDS)


@dataclass(frozen=True)
class Address:  # pylint: disable=too-many-instance-attributes
    """A parsed URL. Credentials never appear in ``repr``; ``problem`` says why it is unusable."""

    setting: str
    scheme: str = ""
    host: str | None = None
    port: int | None = None
    path: str = ""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    query: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    has_userinfo: bool = False
    problem: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def ok(self) -> bool:
        """True when the URL was parsed and may be connected to."""
        return self.problem is None

    @property
    def hostport(self) -> str:
        """``host:port`` (``[v6]:port``), or the path of a socket; what a reason names."""
        if not self.ok:
            return UNPARSEABLE
        host = f"[{self.host}]" if self.host and ":" in self.host else (self.host or "")
        if not host:
            return self.path or "localhost"
        return f"{host}:{self.port}" if self.port is not None else host

    @property
    def location(self) -> str:
        """``scheme://host:port/path``: no user, no password, no query."""
        if not self.scheme:
            return UNPARSEABLE
        if not self.ok:
            return f"{self.scheme}://{UNPARSEABLE}"
        host = self.hostport if self.host else ""
        return f"{self.scheme}://{host}{self.path}"

    @property
    def display(self) -> str:
        """:attr:`location` plus ``***@`` when there were credentials and the query with secret values masked."""
        if not self.ok:
            return self.location
        userinfo = f"{MASK}@" if self.has_userinfo else ""
        host = self.hostport if self.host else ""
        query = "&".join(
            f"{name}={MASK}" if is_secret_param(name) else (f"{name}={value}" if value else name)
            for name, value in self.query
        )
        return f"{self.scheme}://{userinfo}{host}{self.path}" + (f"?{query}" if query else "")

    def origin(self, credentials: bool = True) -> str:
        """``scheme://[user:password@]host:port`` re-encoded (no path or query); :class:`UnusableURL` if unusable."""
        return self.url(credentials=credentials, path=False)

    def url(self, credentials: bool = True, path: bool = True) -> str:
        """
        The URL re-encoded for a library (user-info percent-encoded); :class:`UnusableURL` if it has a
        problem. ``credentials=False`` leaves the user-info out (for clients that take it apart).
        """
        if not self.ok:
            raise UnusableURL(f"{self.setting}: {self.problem}")
        userinfo = ""
        if credentials and self.has_userinfo:
            userinfo = quote(self.username or "", safe="")
            if self.password is not None:
                userinfo += ":" + quote(self.password, safe="")
            userinfo += "@"
        host = self.hostport if self.host else ""
        if not path:
            return f"{self.scheme}://{userinfo}{host}"
        query = "&".join(f"{quote(n, safe='')}={quote(v, safe='')}" if v else quote(n, safe="")
                         for n, v in self.query)
        return f"{self.scheme}://{userinfo}{host}{self.path}" + (f"?{query}" if query else "")

    def failure(self, exc: BaseException | str) -> str:
        """``<setting>: cannot use <host:port>: <reason>``, the reason mapped by :func:`describe_error`."""
        reason = exc if isinstance(exc, str) else describe_error(exc, self.secrets)
        if not self.ok:
            return f"{self.setting}: {self.problem}"
        return f"{self.setting}: {self.hostport}: {reason}"


#: How to fix a URL whose host cannot be found.
ENCODING_HINT = (
    "percent-encode reserved characters in the user name and password (/ %2F, # %23, ? %3F, @ %40, : %3A, % %25)"
)


def _unparseable(setting: str, scheme: str, rest: str, why: str) -> Address:
    return Address(setting, scheme=scheme, problem=f"is not a usable URL: {why}", secrets=_spellings(rest))


def _spellings(secret: str | None) -> tuple[str, ...]:
    """A secret as typed, decoded, and percent-encoded (each is how some library may echo it)."""
    if not secret:
        return ()
    found = {secret, unquote(secret), quote(unquote(secret), safe=""), unquote_plus(secret)}
    return tuple(sorted(found, key=len, reverse=True))


def parse_url(raw: object, setting: str) -> Address:
    """Parse ``raw`` (the value of ``setting``); never raises. See the module docstring for the rules."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return Address(setting, problem="is not set")
    if not isinstance(raw, str):
        return Address(setting, problem=f"is a {type(raw).__name__}, not a URL string")
    text = raw.strip()
    match = _SCHEME_RE.match(text)
    if not match:
        return Address(setting, problem="is not a URL (no scheme://)", secrets=_spellings(text))
    scheme, rest = match.group(1).lower(), text[match.end():]
    userinfo = None
    authority = None
    for at in reversed([i for i, char in enumerate(rest) if char == "@"]):
        authority = _AUTHORITY_RE.match(rest, at + 1)
        if authority:
            userinfo = rest[:at]
            break
    if authority is None:
        authority = _AUTHORITY_RE.match(rest)
        if authority is None:
            return _unparseable(setting, scheme, rest, f"no host[:port] could be found; {ENCODING_HINT}")
    host, port_text = authority.group(1), authority.group(2)
    port = None
    if port_text:
        port = int(port_text)
        if port > 65535:
            return _unparseable(setting, scheme, rest, "the port is not between 0 and 65535")
    remainder = rest[authority.end():].split("#", 1)[0]
    path, _sep, query_text = remainder.partition("?")
    query = []
    secrets: list[str] = []
    for pair in filter(None, query_text.split("&")):
        name, _eq, value = pair.partition("=")
        name, value = unquote_plus(name), unquote_plus(value)
        query.append((name, value))
        if is_secret_param(name):
            secrets.extend(_spellings(value))
    username = password = None
    if userinfo is not None:
        user_raw, colon, password_raw = userinfo.partition(":")
        username = unquote(user_raw) or None
        password = unquote(password_raw) if colon else None
        secrets.extend(_spellings(password_raw))
    host = host.strip("[]") or None
    return Address(
        setting,
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        username=username,
        password=password,
        query=tuple(query),
        has_userinfo=userinfo is not None,
        secrets=tuple(sorted({s for s in secrets if s}, key=len, reverse=True)),
    )


def redact_url(raw: object, setting: str = "URL") -> str | None:
    """``raw`` as :attr:`Address.location` (None/empty stay as they are)."""
    if raw is None or raw == "":
        return raw  # type: ignore[return-value]
    return parse_url(raw, setting).location


# --------------------------------------------------------------------------- error text

#: (text a library puts in its message, the reason shown instead).
_KNOWN_TEXT = (
    ("connection refused", "connection refused"),
    ("wrongpass", "authentication failed"),
    ("noauth", "authentication failed"),
    ("authentication failed", "authentication failed"),
    ("authentication required", "authentication failed"),
    ("invalid username-password", "authentication failed"),
    ("name or service not known", "host name not found"),
    ("temporary failure in name resolution", "host name not found"),
    ("nodename nor servname", "host name not found"),
    ("no address associated", "host name not found"),
    ("network is unreachable", "network unreachable"),
    ("no route to host", "no route to host"),
    ("connection reset", "connection reset"),
    ("timed out", "timed out"),
    ("timeout", "timed out"),
    ("certificate verify failed", "TLS certificate not trusted"),
    ("wrong version number", "TLS handshake failed (is the port plain HTTP?)"),
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[object] = [exc]
    while todo and len(seen) < 10:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None)]
    return seen


def describe_error(exc: BaseException, secrets: Iterable[str] = (), text: str | None = None) -> str:
    """
    A short reason for ``exc`` that cannot echo a credential.

    Network and login failures become fixed phrases; a URL-parsing error says so
    without its text; anything else is ``Type: text`` with :func:`scrub` applied
    (``text``: the exception's text already shortened by the caller).
    """
    chain = _chain(exc)
    for item in chain:
        if isinstance(item, ConnectionRefusedError):
            return "connection refused"
        if isinstance(item, socket.gaierror):
            return "host name not found"
        if isinstance(item, (TimeoutError, socket.timeout)):
            return "timed out"
        if isinstance(item, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(item, UnusableURL):
            return str(item)
    for item in chain:
        text = str(item).lower()
        for needle, reason in _KNOWN_TEXT:
            if needle in text:
                return reason
    for item in chain:
        text = str(item)
        if isinstance(item, (ValueError, TypeError)) and ("port" in text.lower() or "url" in text.lower()):
            return "the URL could not be parsed"
    text = " ".join((str(exc) if text is None else text).split())
    return f"{type(exc).__name__}: {scrub(text, secrets)}"[:300] if text else type(exc).__name__


def scrub(text: str | None, secrets: Iterable[str]) -> str | None:
    """
    ``text`` with every secret, and every run of 4+ characters that is a fragment of
    one, replaced by ``***``. For exception text and reasons, never for whole reports:
    secrets shorter than :data:`MIN_SECRET` are left alone (they would mask words).
    """
    if not text:
        return text
    secrets = [s for s in secrets if s and len(s) >= MIN_SECRET]
    if not secrets:
        return text
    masked = [False] * len(text)
    for secret in secrets:
        grams = {secret[i : i + MIN_SECRET] for i in range(len(secret) - MIN_SECRET + 1)}
        i = 0
        while i <= len(text) - MIN_SECRET:
            if text[i : i + MIN_SECRET] not in grams:
                i += 1
                continue
            end = i + MIN_SECRET
            while end < len(text) and text[i : end + 1] in secret:
                end += 1
            for j in range(i, end):
                masked[j] = True
            i += 1
    out, run = [], False
    for char, hidden in zip(text, masked):
        if hidden:
            if not run:
                out.append(MASK)
            run = True
        else:
            out.append(char)
            run = False
    return "".join(out)


# --------------------------------------------------------------------------- what is configured


def kafka_location(servers: object, setting: str = "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS") -> str:
    """The bootstrap servers as ``host:port,...`` without any user-info; unparseable entries say so."""
    if not isinstance(servers, str) or not servers.strip():
        return UNPARSEABLE
    shown = []
    for entry in servers.split(","):
        entry = entry.strip()
        address = parse_url(entry if "://" in entry else f"kafka://{entry}", setting)
        shown.append(address.hostport)
    return ",".join(shown)


def configured_secrets(extra_urls: Iterable[tuple[str, object]] = (), django_settings=None) -> tuple[str, ...]:
    """
    Every credential the package may come across, read from the settings now: passwords in
    every URL setting, ``METRICS_TOKEN``, the ClickHouse sink password, the Kafka API secret,
    plus those in ``extra_urls`` (``(setting, url)`` pairs such as ``--clickhouse-dsn``).
    """
    if django_settings is None:
        from django.conf import settings as django_settings  # pylint: disable=import-outside-toplevel
    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

    found: list[str] = []
    urls: list[tuple[str, object]] = list(extra_urls)
    for name in ("CELERY_BROKER_URL", "BROKER_URL", "CELERY_RESULT_BACKEND", "EVENT_BUS_REDIS_CONNECTION_URL"):
        urls.append((name, getattr(django_settings, name, None)))
    raw = getattr(django_settings, "ASPECTS_ROUTING", None)
    if isinstance(raw, dict):
        for key, value in raw.items():  # METRICS_REDIS_URL, RALPH_URL, SUPERSET_URL and any later *_URL
            if isinstance(key, str) and key.endswith("_URL"):
                urls.append((f"ASPECTS_ROUTING['{key}']", value))
        token = raw.get("METRICS_TOKEN")
        if isinstance(token, str):
            found.extend(_spellings(token.strip()) + (token,))
    try:
        config = get_config()
        for name, value in vars(config).items():  # the parsed *_url fields (the broker's, when it is the store)
            if name.endswith("_url"):
                urls.append((f"ASPECTS_ROUTING['{name.upper()}']", value))
        found.extend(_spellings(config.metrics_token))
    except Exception:  # pylint: disable=broad-except
        pass
    sink = getattr(django_settings, "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG", None)
    if isinstance(sink, dict):
        urls.append(("EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG['url']", sink.get("url")))
        if isinstance(sink.get("password"), str):
            found.extend(_spellings(sink["password"]))
    kafka_secret = getattr(django_settings, "EVENT_BUS_KAFKA_API_SECRET", None)
    if isinstance(kafka_secret, str):
        found.extend(_spellings(kafka_secret))
    servers = getattr(django_settings, "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", None)
    if isinstance(servers, str):
        for entry in servers.split(","):
            urls.append(("EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", entry if "://" in entry else f"kafka://{entry.strip()}"))
    for name, url in urls:
        if isinstance(url, (list, tuple)):  # a Celery failover list
            for item in url:
                found.extend(parse_url(item, name).secrets)
        elif url:
            found.extend(parse_url(url, name).secrets)
    return tuple(sorted({s for s in found if s}, key=len, reverse=True))
