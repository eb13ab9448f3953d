"""
Throughput and backlog, from the metrics store (:mod:`aspects_routing.metrics.api`)
and the broker.

* Throughput is the metrics API's :class:`~aspects_routing.metrics.api.MetricsReport`
  as is: rates over 1, 5, 15 and 60 minutes (and ``--window``), wait and run-time
  percentiles, per task and queue, finished tasks per minute.
* Backlog is the depth of each Aspects queue and of the platform's default and
  high queues (``LLEN`` on a Redis broker), with the trend (arrivals minus
  finishes per second over :data:`TREND_MINUTES`) and the time to drain at the
  measured finish rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from django.conf import settings

from aspects_routing.metrics import api
from aspects_routing.scaling.collectors.base import Skipped, Unavailable
from aspects_routing.scaling.collectors.routing import aspects_task_names, routed_queue

#: Window of the rates that give the backlog's trend and drain time: long enough
#: to smooth per-minute bursts, short enough to reflect the current load.
TREND_MINUTES = 5


def windows_for(window_minutes: int) -> tuple[int, ...]:
    """The metrics API's windows plus the operator's ``--window``, ascending."""
    return tuple(sorted({*api.WINDOWS, window_minutes}))


def _checked(report: api.MetricsReport) -> api.MetricsReport:
    if report.source == "in-process":
        raise Unavailable(
            "metrics are only kept in this process: set ASPECTS_ROUTING['METRICS_REDIS_URL'] (or use a Redis "
            "broker) so the LMS and the workers share one store"
        )
    if not report.available:
        raise Unavailable(f"metrics store {report.source} could not be read: {report.error}")
    return report


def collect_throughput(config, *, window_minutes: int) -> api.MetricsReport:
    """Task rates and latencies of every window, from the shared metrics store."""
    if not config.metrics_enabled:
        raise Skipped("ASPECTS_ROUTING['METRICS_ENABLED'] is False")
    return _checked(api.collect(windows=windows_for(window_minutes)))


#: Shortest window peak rates are taken from. The 1-minute window covers only the
#: seconds elapsed in the current minute, too few to size from.
PEAK_MIN_MINUTES = 5


def _peak_windows(report: api.MetricsReport, window_minutes: int) -> list:
    shortest = min(PEAK_MIN_MINUTES, window_minutes)
    return [w for w in report.windows if shortest <= w.minutes <= window_minutes]


def peak_window(report: api.MetricsReport, window_minutes: int) -> api.WindowStats | None:
    """The window (of :data:`PEAK_MIN_MINUTES` up to ``window_minutes``) with the highest publish rate."""
    return max(_peak_windows(report, window_minutes), key=lambda w: w.rates.published, default=None)


def task_rate(report: api.MetricsReport, window_minutes: int, task: str) -> float | None:
    """Peak publish rate of ``task`` over the same windows as :func:`peak_window` (None: never seen)."""
    rates = [
        stats.rates.published
        for window in _peak_windows(report, window_minutes)
        for stats in window.per_task
        if stats.task == task
    ]
    return max(rates) if rates else None


# ---------------------------------------------------------------- backlog


@dataclass(frozen=True)
class QueueBacklog:  # pylint: disable=too-many-instance-attributes
    """One queue: what waits in it, how it moves, how long it takes to empty."""

    queue: str
    aspects: bool  # Aspects tasks are routed here
    depth: int | None
    error: str | None  # why the depth is unknown
    arrival_per_second: float | None  # Aspects tasks published to it (None: not measured)
    finish_per_second: float | None  # Aspects tasks finished from it
    trend_per_second: float | None  # arrival - finish: > 0 grows, < 0 shrinks
    drain_seconds: float | None  # math.inf: never at the measured rates (null in JSON); None: unknown
    drains: bool | None  # False: never at the measured rates; None: unknown


@dataclass(frozen=True)
class BacklogReport:
    """Depth, trend and drain time of every queue that matters to Aspects."""

    queues: tuple[QueueBacklog, ...]
    trend_minutes: int
    rates_source: str | None  # the metrics store, or None when rates were unavailable
    rates_error: str | None

    def queue(self, name: str) -> QueueBacklog:
        """The backlog of queue ``name``."""
        for backlog in self.queues:
            if backlog.queue == name:
                return backlog
        raise KeyError(name)


def drain_seconds(depth: int | None, arrival: float | None, finish: float | None) -> float | None:
    """
    Seconds to empty a queue of ``depth`` at the measured rates (pure).

    0 when empty; ``math.inf`` ("never") when arrivals keep up with or outpace
    finishes; None when the depth or the rates are unknown.
    """
    if depth is None:
        return None
    if depth == 0:
        return 0.0
    if arrival is None or finish is None:
        return None
    net = finish - arrival
    return depth / net if net > 0 else math.inf


def backlog_queues(app, config) -> tuple[str, ...]:
    """Every Aspects queue (configured or routed to) and the platform's default and high queues."""
    names = list(config.queues)
    names += [routed_queue(app, n) for n in aspects_task_names(app, config)]
    for setting in ("DEFAULT_PRIORITY_QUEUE", "HIGH_PRIORITY_QUEUE"):
        value = getattr(settings, setting, None)
        if isinstance(value, str) and value:
            names.append(value)
    names.append(app.conf.task_default_queue)
    return tuple(dict.fromkeys(n for n in names if n))


def _queue_rates(report: api.MetricsReport | None) -> dict[str, tuple[float, float]]:
    if report is None:
        return {}
    rates: dict[str, tuple[float, float]] = {}
    for stats in report.window(TREND_MINUTES).per_task:
        arrival, finish = rates.get(stats.queue, (0.0, 0.0))
        rates[stats.queue] = (arrival + stats.rates.published, finish + stats.rates.finished)
    return rates


def collect_backlog(config, queues: tuple[str, ...], aspects_queues: frozenset, *, timeout: float) -> BacklogReport:
    """Depth of each of ``queues`` from the broker, with trend and drain time from the metrics store."""
    depths = api.queue_depths(queues, timeout=timeout)
    if all(isinstance(v, str) for v in depths.values()):
        raise Unavailable(next(iter(depths.values()), "no queue to measure").removeprefix("unavailable: "))
    report, rates_error = None, None
    if config.metrics_enabled:
        try:
            report = _checked(api.collect(windows=(TREND_MINUTES,)))
        except Unavailable as exc:
            rates_error = str(exc)
    else:
        rates_error = "ASPECTS_ROUTING['METRICS_ENABLED'] is False"
    rates = _queue_rates(report)
    backlog = []
    for queue in queues:
        raw = depths.get(queue)
        depth = raw if isinstance(raw, int) else None
        arrival = finish = None
        # Only Aspects tasks are counted: a platform queue's own traffic is not measured.
        if report is not None and queue in aspects_queues:
            arrival, finish = rates.get(queue, (0.0, 0.0))
        drain = drain_seconds(depth, arrival, finish)
        backlog.append(
            QueueBacklog(
                queue=queue,
                aspects=queue in aspects_queues,
                depth=depth,
                error=None if depth is not None else str(raw),
                arrival_per_second=arrival,
                finish_per_second=finish,
                trend_per_second=None if arrival is None or finish is None else arrival - finish,
                drain_seconds=drain,
                drains=None if drain is None else not math.isinf(drain),
            )
        )
    return BacklogReport(
        queues=tuple(backlog),
        trend_minutes=TREND_MINUTES,
        rates_source=report.source if report is not None else None,
        rates_error=rates_error,
    )
