"""
Ralph and Superset: are they up, and is what they depend on up.

``RALPH_URL`` / ``SUPERSET_URL`` name the service. Whatever path the operator
gave (``https://lrs.example.com/xAPI/``, a health path, nothing), the probe goes
to the health path at the root of that server -- Ralph's ``/__heartbeat__`` and
Superset's ``/health`` are always served there -- and the result says when the
given path was not the one probed.

Ralph:

* ``/__heartbeat__`` answers 200 ``{"database": "ok"}`` or 500 with the backend's
  status (``{"database": "away"}`` when ClickHouse cannot be reached). A 500 with
  that body means Ralph is **up** and its database is not: the body is kept and
  ``/__lbheartbeat__`` (the process alone) is asked to confirm.
* No answer at all: Ralph is **down**.

Superset's ``/health`` only says the web process runs (it answers 200 with
Redis dead and no worker). With ``SUPERSET_BROKER_URL`` (Superset's Celery
broker, a Redis URL) the report also pings that Redis and asks the Celery
workers on it to answer (``inspect().ping()``): an unreachable Redis or no
worker is **degraded** -- dashboards may load, but SQL Lab's asynchronous
queries, the results backend, caching, cache warm-up and reports do not work.
"""

from __future__ import annotations

import base64
import json
import statistics
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from aspects_routing.conf import RoutingSettings
from aspects_routing.redaction import parse_url
from aspects_routing.scaling.collectors.base import Skipped, redact_url, scrub, url_secrets

#: Health path probed at the root of each service's server.
HEALTH_PATHS = {"ralph": "/__heartbeat__", "superset": "/health"}
#: Ralph's liveness path: 200 while the process serves, whatever its backend does.
RALPH_LIVENESS_PATH = "/__lbheartbeat__"
#: Largest health body read (Ralph's is a few bytes).
MAX_BODY = 65536

UP, DEGRADED, DOWN = "up", "degraded", "down"


@dataclass(frozen=True)
class SupersetBackend:
    """Superset's Celery broker (its Redis) and the workers answering on it."""

    broker: str  # redacted
    redis_reachable: bool
    workers: tuple[str, ...]  # worker names that answered ping
    error: str | None


@dataclass(frozen=True)
class ServiceHealth:  # pylint: disable=too-many-instance-attributes
    """The result of probing one service."""

    service: str
    url: str  # the probed URL, redacted
    reachable: bool  # the health endpoint answered 2xx
    status_code: int | None
    samples: int
    latency_ms_median: float | None
    latency_ms_max: float | None
    error: str | None
    state: str = DOWN  # UP, DEGRADED (answers, a dependency does not) or DOWN (no answer)
    body_status: tuple[tuple[str, str], ...] = ()  # e.g. (("database", "away"),) from Ralph's heartbeat
    alive: bool | None = None  # Ralph's /__lbheartbeat__ answered 2xx (asked when the heartbeat is not 2xx)
    note: str | None = None  # e.g. the configured path that was not the one probed
    backend: SupersetBackend | None = None

    @property
    def body(self) -> str | None:
        """The health body's status as ``key: value`` pairs, for display."""
        return ", ".join(f"{k}: {v}" for k, v in self.body_status) or None


@dataclass(frozen=True)
class ServicesReport:
    """Health of the services downstream of the LMS (those that are configured)."""

    services: tuple[ServiceHealth, ...]

    @property
    def unhealthy(self) -> tuple[ServiceHealth, ...]:
        """Services that are not fully up."""
        return tuple(s for s in self.services if s.state != UP)


def base_url(url: str) -> str:
    """``scheme://[user@]host[:port]``: ``url`` without path, query or fragment."""
    # Parsed by aspects_routing.redaction: a '/', '#' or '?' in the password stays in the password.
    return parse_url(url, "URL").origin()


def health_url(service: str, url: str, path: str | None = None) -> str:
    """The URL probed for ``service`` configured as ``url``: the health path at the server's root."""
    return base_url(url) + (path or HEALTH_PATHS[service])


def path_note(service: str, url: str) -> str | None:
    """Why the probed URL differs from the configured one (a path was given), or None."""
    path = parse_url(url, "URL").path
    if path in ("", "/", HEALTH_PATHS[service]):
        return None
    return (
        f"{service.upper()}_URL has path {path!r}; the report probes the server's health path "
        f"{HEALTH_PATHS[service]} at its root, whatever path is configured"
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A health endpoint that redirects (e.g. to a login page) is not healthy."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # pylint: disable=too-many-arguments
        return None


def _get(opener, url: str, timeout: float) -> tuple[int, bytes]:
    headers = {"User-Agent": "aspects-routing-scaling-report"}
    address = parse_url(url, "URL")
    if address.has_userinfo:
        # Credentials in the URL become a Basic header; urllib does not read them from the URL.
        pair = f"{address.username or ''}:{address.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        url = address.url(credentials=False)
    request = urllib.request.Request(url, headers=headers)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(MAX_BODY)


def body_status(body: bytes) -> tuple[tuple[str, str], ...]:
    """A JSON object's string/number values (Ralph's ``{"database": "away"}``); () for anything else."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return ()
    if not isinstance(data, dict):
        return ()
    return tuple((str(k), str(v)) for k, v in data.items() if isinstance(v, (str, int, float, bool)))


def _error(exc: Exception, secrets: tuple[str, ...]) -> str:
    reason = getattr(exc, "reason", exc)
    return scrub(f"{type(exc).__name__}: {reason}", secrets) or type(exc).__name__


def probe(service: str, url: str, *, timeout: float, samples: int = 3) -> ServiceHealth:
    """GET the health endpoint ``samples`` times (fewer when it fails); Ralph's liveness when it is not 2xx."""
    target = health_url(service, url)
    shown = redact_url(target) or ""
    secrets = url_secrets(url)
    note = path_note(service, url)
    latencies = []
    status, body = None, b""
    # Built once, outside the timed requests: building an opener loads the CA store (~50 ms).
    opener = urllib.request.build_opener(_NoRedirect)
    for _ in range(samples):
        start = time.perf_counter()
        try:
            status, body = _get(opener, target, timeout)
        except Exception as exc:  # pylint: disable=broad-except
            # Nothing answers: no point in more samples.
            return ServiceHealth(service, shown, False, None, len(latencies), None, None,
                                 _error(exc, secrets), DOWN, note=note)
        latencies.append((time.perf_counter() - start) * 1000.0)
        if not 200 <= status < 300:
            break
    ok = status is not None and 200 <= status < 300
    statuses = body_status(body)
    alive = None
    state = UP if ok else DOWN
    if not ok and service == "ralph":
        try:
            live, _ = _get(opener, health_url(service, url, RALPH_LIVENESS_PATH), timeout)
            alive = 200 <= live < 300
        except Exception:  # pylint: disable=broad-except
            alive = False
        # Up, its backend not: the heartbeat answered with the backend's status.
        state = DEGRADED if alive and statuses else DOWN
    error = None
    if not ok:
        error = f"HTTP {status}" + (f" {{{', '.join(f'{k}: {v}' for k, v in statuses)}}}" if statuses else "")
    return ServiceHealth(
        service=service,
        url=shown,
        reachable=ok,
        status_code=status,
        samples=len(latencies),
        latency_ms_median=round(statistics.median(latencies), 2) if latencies else None,
        latency_ms_max=round(max(latencies), 2) if latencies else None,
        error=error,
        state=state,
        body_status=statuses,
        alive=alive,
        note=note,
    )


def superset_backend(broker_url: str, *, timeout: float) -> SupersetBackend:
    """Ping Superset's Redis, then ask the Celery workers on it to answer."""
    import redis  # pylint: disable=import-outside-toplevel
    from celery import Celery  # pylint: disable=import-outside-toplevel

    shown = redact_url(broker_url) or ""
    secrets = url_secrets(broker_url)
    try:
        # Re-encoded by aspects_routing.redaction: a '#' or '/' in the password reaches Redis as typed.
        broker_url = parse_url(broker_url, "ASPECTS_ROUTING['SUPERSET_BROKER_URL']").url()
        client = redis.Redis.from_url(broker_url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # pylint: disable=broad-except
        return SupersetBackend(shown, False, (), _error(exc, secrets))
    # A throwaway app: Superset's workers answer broadcasts on the broker's default pidbox exchange.
    app = Celery("aspects-routing-superset-probe", broker=broker_url, set_as_current=False)
    try:
        replies = app.control.inspect(timeout=timeout).ping() or {}
    except Exception as exc:  # pylint: disable=broad-except
        return SupersetBackend(shown, True, (), _error(exc, secrets))
    finally:
        app.close()
    workers = tuple(sorted(replies))
    return SupersetBackend(shown, True, workers, None if workers else f"no Celery worker answered within {timeout:g} s")


def with_backend(health: ServiceHealth, backend: SupersetBackend) -> ServiceHealth:
    """Superset's health with its broker/worker check folded into ``state`` and ``error``."""
    values: dict[str, Any] = dict(health.__dict__)
    values["backend"] = backend
    if health.state == UP and (not backend.redis_reachable or not backend.workers):
        values["state"] = DEGRADED
        values["error"] = (
            f"Superset's Redis {backend.broker} is unreachable ({backend.error})"
            if not backend.redis_reachable
            else f"no Superset Celery worker answered on {backend.broker} ({backend.error})"
        )
    return ServiceHealth(**values)


def collect_services(config: RoutingSettings, *, timeout: float) -> ServicesReport:
    """Probe every configured service; raise :class:`Skipped` when none is configured."""
    configured = [(name, url) for name, url in (("ralph", config.ralph_url), ("superset", config.superset_url)) if url]
    if not configured:
        raise Skipped("ASPECTS_ROUTING['RALPH_URL'] and ['SUPERSET_URL'] are not set")
    found = []
    for name, url in configured:
        health = probe(name, url, timeout=timeout)
        if name == "superset" and config.superset_broker_url:
            health = with_backend(health, superset_backend(config.superset_broker_url, timeout=timeout))
        found.append(health)
    return ServicesReport(tuple(found))
