"""
Routing: which Aspects tasks are registered, which queue the running Celery
app sends each to, and which live workers consume those queues.

The queue comes from the app's own router chain (``app.amqp.router``), so it
is what a ``.delay()`` in this process would do, including the platform's
``EXPLICIT_QUEUES`` and any ``CELERY_ROUTES``. Live consumers come from a
broadcast (``inspect().active_queues()``) answered by running workers.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from aspects_routing.conf import RoutingSettings
from aspects_routing.redaction import describe_error, parse_url


@dataclass(frozen=True)
class TaskRoute:
    """One registered Aspects task and the queue it is published to."""

    task: str
    queue: str


@dataclass(frozen=True)
class QueueConsumers:
    """A queue that Aspects tasks are routed to, and who consumes it."""

    queue: str
    tasks: tuple[str, ...]
    # Names of the live workers consuming the queue; None when workers could not be asked.
    workers: tuple[str, ...] | None

    @property
    def unconsumed(self) -> bool:
        """True when tasks are routed here, workers were asked, and none consumes this queue."""
        return bool(self.tasks) and self.workers is not None and not self.workers


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker as it described itself."""

    name: str
    queues: tuple[str, ...]
    concurrency: int | None


@dataclass(frozen=True)
class RoutingReport:  # pylint: disable=too-many-instance-attributes
    """Where Aspects tasks go and whether anything picks them up."""

    transport: str
    configured_queue: str | None
    configured_queue_source: str
    broker: str | None  # redacted URL
    tasks: tuple[TaskRoute, ...]
    unmatched_patterns: tuple[str, ...]
    queues: tuple[QueueConsumers, ...]
    workers: tuple[WorkerInfo, ...] | None
    workers_error: str | None
    # Why the broker refused a connection (None: it accepted one): no task can be published or consumed.
    broker_error: str | None = None

    @property
    def unconsumed_queues(self) -> tuple[str, ...]:
        """Routed queues that no live worker consumes."""
        return tuple(q.queue for q in self.queues if q.unconsumed)

    def concurrency_for(self, queue: str) -> int | None:
        """Median pool size of the workers consuming ``queue`` (None when unknown)."""
        sizes = sorted(
            w.concurrency for w in (self.workers or ()) if queue in w.queues and w.concurrency
        )
        return sizes[len(sizes) // 2] if sizes else None


def aspects_task_names(app, config: RoutingSettings) -> tuple[str, ...]:
    """Registered task names that match the configured Aspects patterns, sorted."""
    names = [n for n in app.tasks if not n.startswith("celery.")]
    return tuple(sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in config.task_patterns)))


def routed_queue(app, task_name: str) -> str:
    """The queue ``task_name`` is published to by ``app`` with no per-call options."""
    route = app.amqp.router.route({}, task_name, (), {})
    queue = route.get("queue")
    name = getattr(queue, "name", queue)
    return name or app.conf.task_default_queue


def _ask_workers(app, timeout: float) -> tuple[WorkerInfo, ...]:
    """Broadcast ``active_queues`` (and ``stats`` for pool sizes) to the live workers."""
    replies = app.control.inspect(timeout=timeout).active_queues() or {}
    if not replies:
        return ()
    # Stop waiting as soon as every worker that answered the first call has answered this one.
    stats = app.control.inspect(timeout=timeout, destination=list(replies), limit=len(replies)).stats() or {}
    workers = []
    for name, queues in sorted(replies.items()):
        pool = (stats.get(name) or {}).get("pool") or {}
        concurrency = pool.get("max-concurrency")
        workers.append(
            WorkerInfo(
                name=name,
                queues=tuple(sorted(q.get("name", "") for q in queues or () if isinstance(q, dict))),
                concurrency=concurrency if isinstance(concurrency, int) else None,
            )
        )
    return tuple(workers)


def _broker_url(app):
    url = app.conf.broker_url
    if isinstance(url, (list, tuple)):  # failover list: the first is the one in use
        url = url[0] if url else None
    return url


def broker_check(app, timeout: float):
    """``(address, None)`` when the broker accepts a connection, else ``(address, reason)``; never raises."""
    address = parse_url(_broker_url(app), "CELERY_BROKER_URL")
    if not address.ok:
        return address, address.failure("")
    try:
        with app.connection_for_write() as connection:
            # One attempt, no back-off: an unreachable broker costs at most ``timeout``.
            connection.ensure_connection(max_retries=0, interval_start=0, timeout=timeout)
    except Exception as exc:  # pylint: disable=broad-except
        return address, address.failure(exc)
    return address, None


def collect_routing(app, config: RoutingSettings, *, inspect_timeout: float = 1.0) -> RoutingReport:
    """Read the routing of every registered Aspects task and ask the workers what they consume."""
    names = aspects_task_names(app, config)
    routes = tuple(TaskRoute(task=n, queue=routed_queue(app, n)) for n in names)
    registered = [n for n in app.tasks if not n.startswith("celery.")]
    unmatched = tuple(
        p for p in config.task_patterns if not any(fnmatch.fnmatchcase(n, p) for n in registered)
    )

    workers: tuple[WorkerInfo, ...] | None = None
    broker, broker_error = broker_check(app, inspect_timeout)
    error = broker_error
    if broker_error is None:
        try:
            workers = _ask_workers(app, inspect_timeout)
        except Exception as exc:  # pylint: disable=broad-except
            # Kombu's messages may echo the broker URL: mapped, never shown raw.
            error = broker.failure(describe_error(exc, broker.secrets))

    by_queue: dict[str, list[str]] = {}
    for route in routes:
        by_queue.setdefault(route.queue, []).append(route.task)
    for queue in config.queues:  # configured queues show up even when no task routes there yet
        by_queue.setdefault(queue, [])
    queues = tuple(
        QueueConsumers(
            queue=queue,
            tasks=tuple(tasks),
            workers=None if workers is None else tuple(w.name for w in workers if queue in w.queues),
        )
        for queue, tasks in sorted(by_queue.items())
    )
    return RoutingReport(
        transport=config.transport,
        configured_queue=config.queue,
        configured_queue_source=config.queue_source,
        broker=broker.location if broker.scheme else None,
        tasks=routes,
        unmatched_patterns=unmatched,
        queues=queues,
        workers=workers,
        workers_error=error,
        broker_error=broker_error,
    )
