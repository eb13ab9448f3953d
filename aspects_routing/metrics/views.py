"""
``GET /aspects-routing/metrics``: Prometheus text exposition of the shared store.

Access: a staff user's session, or ``Authorization: Bearer <METRICS_TOKEN>``
(compared in constant time). No credentials, or a wrong or unconfigured
token: 401. A signed-in user who is not staff: 403. Refused requests get no
metrics at all.
"""

from __future__ import annotations

import hmac
from typing import Callable

from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry

from aspects_routing.conf import get_config
from aspects_routing.metrics.exposition import build_registry, render


def authorize(request, token: str | None) -> int | None:
    """``None`` if the request may read the metrics, else the HTTP status to refuse it with."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return 401
        if hmac.compare_digest(credentials.strip().encode("utf-8"), token.encode("utf-8")):
            return None
        return 401
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 401
    return None if user.is_staff else 403


def _refuse(status: int) -> HttpResponse:
    response = HttpResponse(
        "Staff session or 'Authorization: Bearer <METRICS_TOKEN>' required.\n",
        status=status,
        content_type="text/plain; charset=utf-8",
    )
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="aspects-routing"'
    return response


#: The setting problem that makes the endpoint unable to answer (see conf.parse).
STORE_URL_PROBLEM = "aspects_routing.W111"


def _unavailable(reason: str) -> HttpResponse:
    response = HttpResponse(f"Metrics unavailable: {reason}\n", status=503, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    response["Retry-After"] = "60"
    return response


def make_metrics_view(registry_factory: Callable[[], CollectorRegistry] = build_registry):
    """
    The endpoint view, reading a registry from ``registry_factory()`` on each scrape.

    It answers 503 with a reason, never 500: when ``METRICS_REDIS_URL`` is unusable
    (the figures would come from another store than the one configured), or when
    building or rendering the figures fails.
    """

    @require_GET
    def metrics(request):
        config = get_config()
        refused = authorize(request, config.metrics_token)
        if refused is not None:
            return _refuse(refused)
        problem = next((p for p in config.problems if p.id == STORE_URL_PROBLEM), None)
        if problem is not None:
            return _unavailable(f"{problem.msg} ({problem.id}; run manage.py check)")
        try:
            body = render(registry_factory())
        except Exception as exc:  # pylint: disable=broad-except
            return _unavailable(f"the figures could not be read ({type(exc).__name__})")
        response = HttpResponse(body, content_type=CONTENT_TYPE_PLAIN_0_0_4)
        response["Cache-Control"] = "no-store"
        return response

    return metrics


metrics = make_metrics_view()
