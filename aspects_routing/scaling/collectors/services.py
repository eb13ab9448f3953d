"""
Ralph and Superset: is the health endpoint reachable, and how fast does it answer.

``RALPH_URL`` / ``SUPERSET_URL`` may be the service's base URL (the usual health
path is appended: Ralph's ``/__heartbeat__``, Superset's ``/health``) or a full
URL to probe as is (any path other than ``/``).
"""

from __future__ import annotations

import base64
import statistics
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from aspects_routing.conf import RoutingSettings
from aspects_routing.scaling.collectors.base import Skipped, redact_url

#: Health path appended to a base URL, per service.
HEALTH_PATHS = {"ralph": "/__heartbeat__", "superset": "/health"}


@dataclass(frozen=True)
class ServiceHealth:
    """The result of probing one health endpoint a few times."""

    service: str
    url: str  # redacted
    reachable: bool
    status_code: int | None
    samples: int
    latency_ms_median: float | None
    latency_ms_max: float | None
    error: str | None


@dataclass(frozen=True)
class ServicesReport:
    """Health of the services downstream of the LMS (those that are configured)."""

    services: tuple[ServiceHealth, ...]

    @property
    def unhealthy(self) -> tuple[ServiceHealth, ...]:
        """Services that did not answer 2xx."""
        return tuple(s for s in self.services if not s.reachable)


def health_url(service: str, url: str) -> str:
    """The URL to probe for ``service`` configured as ``url``."""
    parts = urlsplit(url)
    if parts.path in ("", "/"):
        return url.rstrip("/") + HEALTH_PATHS[service]
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A health endpoint that redirects (e.g. to a login page) is not healthy."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # pylint: disable=too-many-arguments
        return None


def _get(opener, url: str, timeout: float) -> int:
    headers = {"User-Agent": "aspects-routing-scaling-report"}
    parts = urlsplit(url)
    if parts.username is not None:
        # Credentials in the URL become a Basic header; urllib does not read them from the URL.
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
        url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
    request = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def probe(service: str, url: str, *, timeout: float, samples: int = 3) -> ServiceHealth:
    """GET the health endpoint ``samples`` times; latency of the answered ones."""
    target = health_url(service, url)
    shown = redact_url(target) or ""
    latencies = []
    status = None
    # Built once, outside the timed requests: building an opener loads the CA store (~50 ms).
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(samples):
        start = time.perf_counter()
        try:
            status = _get(opener, target, timeout)
        except Exception as exc:  # pylint: disable=broad-except
            # Unreachable: no point in more samples.
            reason = getattr(exc, "reason", exc)
            return ServiceHealth(service, shown, False, None, len(latencies), None, None, f"{type(exc).__name__}: {reason}")
        latencies.append((time.perf_counter() - start) * 1000.0)
        if not 200 <= status < 300:
            break
    ok = status is not None and 200 <= status < 300
    return ServiceHealth(
        service=service,
        url=shown,
        reachable=ok,
        status_code=status,
        samples=len(latencies),
        latency_ms_median=round(statistics.median(latencies), 2) if latencies else None,
        latency_ms_max=round(max(latencies), 2) if latencies else None,
        error=None if ok else f"HTTP {status}",
    )


def collect_services(config: RoutingSettings, *, timeout: float) -> ServicesReport:
    """Probe every configured service; raise :class:`Skipped` when none is configured."""
    configured = [(name, url) for name, url in (("ralph", config.ralph_url), ("superset", config.superset_url)) if url]
    if not configured:
        raise Skipped("ASPECTS_ROUTING['RALPH_URL'] and ['SUPERSET_URL'] are not set")
    return ServicesReport(tuple(probe(name, url, timeout=timeout) for name, url in configured))
