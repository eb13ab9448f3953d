"""
Throughput metrics of the Aspects Celery tasks (issue 3).

How it fits together: Celery signal hooks (:mod:`.hooks`) and :func:`count`
record into an in-process buffer (:mod:`.buffer`); a background thread per
process (:mod:`.recorder`) flushes it every ``METRICS_FLUSH_SECONDS`` into
per-minute buckets and cumulative totals in a shared Redis store (:mod:`.store`);
the Prometheus endpoint (:mod:`.views`, :mod:`.exposition`) and the Python API
(:mod:`.api`) read that store, so one process shows the whole cluster.

Interfaces for the rest of the plugin (stable):

``count(name, labels=None, amount=1) -> None``
    Add to a counter. No I/O, never raises; summed over every process through
    the store and exposed at ``/aspects-routing/metrics`` as a Prometheus
    counter named ``name`` (end it in ``_total``) with ``labels`` (a dict of
    strings). Example: ``count("aspects_event_bus_events_sent_total", {"event": name})``.

``flush() -> bool``
    Write this process's buffer to the store now (tests, commands about to exit).

``aspects_routing.metrics.exposition.register_collector(factory)``
    ``factory()`` returns a prometheus_client collector; it is called on every
    scrape of the endpoint, so gauges can be read at scrape time. A collector
    that raises loses its own metrics only.

``aspects_routing.metrics.api.collect(windows=(1, 5, 15, 60)) -> MetricsReport``
    Frozen dataclasses: counts and per-second rates (published, started,
    succeeded, failed, retried) per window, overall and per task and queue;
    queue-wait and run-time p50/p95/p99 and mean; finished tasks per minute over
    the last 60 minutes; cumulative totals; ``source`` (the store URL with
    credentials redacted, or ``"in-process"``). Never raises (``available`` /
    ``error`` say why figures are missing).

``aspects_routing.metrics.api.queue_depths(queues, timeout=0.5) -> dict``
    ``{queue: int}`` from ``LLEN`` on a Redis broker, or
    ``{queue: "unavailable: <reason>"}``; never raises.
"""

from aspects_routing.metrics.recorder import count, flush

__all__ = ["count", "flush"]
