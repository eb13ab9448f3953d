"""
The Celery router for Aspects tasks.

A Celery router is a callable ``(name, args, kwargs, options, task=None, **kw)``
returning a route dict or ``None``. :func:`route_task` returns
``{"queue": <queue>}`` for the tasks named by ``ASPECTS_ROUTING["TASKS"]`` /
``EXTRA_TASKS`` and ``None`` for every other task, so the platform's own router
(``openedx.core.lib.celery.routers.route_task``, driven by ``EXPLICIT_QUEUES``)
still decides the rest. Celery merges the caller's options over the route, so a
queue passed to ``apply_async(queue=...)`` still wins.

A decision is computed once per task name and memoized; the memo is dropped
whenever the configuration changes. The router never raises: an unexpected
error leaves the task to the platform's routing and is logged once.
"""

from __future__ import annotations

import fnmatch
import logging

from django.conf import settings

from aspects_routing.conf import RoutingSettings, get_config, on_config_cleared

log = logging.getLogger(__name__)


def decide_queue(name: str, config: RoutingSettings, explicit_queues=None) -> str | None:
    """
    Return the queue for task ``name`` under ``config``, or ``None`` to leave it alone.

    ``explicit_queues`` is the platform's ``EXPLICIT_QUEUES``: an operator's explicit
    per-task entry there beats this plugin, so such tasks are left to the platform.
    """
    if explicit_queues and name in explicit_queues:
        return None
    if not any(fnmatch.fnmatchcase(name, pattern) for pattern in config.task_patterns):
        return None
    for pattern, queue in config.task_queues:
        if fnmatch.fnmatchcase(name, pattern):
            return queue
    return config.queue


class AspectsRouter:
    """Memoizing router; one instance, :data:`route_task`, serves the process."""

    def __init__(self):
        self._memo: dict[str, str | None] = {}
        self._failed_once = False

    def clear(self) -> None:
        """Forget every memoized decision."""
        self._memo = {}

    def __call__(self, name, args=None, kwargs=None, options=None, task=None, **kw):
        try:
            queue = self._memo[name]
        except KeyError:
            queue = self._memo[name] = self._decide(name)
        # A new dict each time: Celery pops "queue" out of the route it is given.
        return {"queue": queue} if queue else None

    def _decide(self, name: str) -> str | None:
        try:
            return decide_queue(name, get_config(), getattr(settings, "EXPLICIT_QUEUES", None))
        except Exception:  # pylint: disable=broad-except
            # Routing must never break publishing: leave the task to the platform.
            if not self._failed_once:
                self._failed_once = True
                log.exception("aspects-routing could not decide a queue for %s; leaving it to the platform", name)
            return None

    def is_routed(self, name: str) -> bool:
        """True when ``name`` is an Aspects task this router sends to a queue."""
        return self(name) is not None


route_task = AspectsRouter()
on_config_cleared(route_task.clear)
