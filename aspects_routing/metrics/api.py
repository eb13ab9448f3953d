"""
Python API over the metrics store, for the scaling report and for tests.

:func:`collect` reads the per-minute buckets of the last hour (one Redis round
trip) and returns a frozen :class:`MetricsReport`: for each window (1, 5, 15
and 60 minutes) the counts and per-second rates of published, started,
succeeded, failed and retried Aspects tasks, the queue-wait and run-time
percentiles (interpolated from the histogram buckets) and mean, overall and per
task and queue; the finished tasks of each of the last 60 minutes; the
cumulative totals; and where the figures came from.

:func:`summarize` is the pure part (figures in, report pieces out);
:func:`queue_depths` reads ``LLEN`` on the Redis broker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable, Mapping

from aspects_routing.metrics.buckets import N_BUCKETS, quantile, window_minutes, window_seconds
from aspects_routing.metrics.depth import queue_depths  # noqa: F401  (part of this API)
from aspects_routing.metrics.names import DROPPED, FAILED, QUEUE_WAIT, RUNTIME, SUCCEEDED, TASK_COUNTERS
from aspects_routing.metrics.store import Figures, Histogram

__all__ = [
    "WINDOWS",
    "Counts",
    "Rates",
    "Latency",
    "TaskStats",
    "WindowStats",
    "MetricsReport",
    "collect",
    "summarize",
    "queue_depths",
]

#: Windows, in minutes, that :func:`collect` summarizes.
WINDOWS = (1, 5, 15, 60)
#: Minutes of per-minute finished counts in :attr:`MetricsReport.finished_per_minute`.
SPARKLINE_MINUTES = 60

_FIELDS = ("published", "started", "succeeded", "failed", "retried")
_NAME_OF_FIELD = dict(zip(_FIELDS, TASK_COUNTERS))


@dataclass(frozen=True)
class Counts:
    """Task counts (over a window, or cumulative)."""

    published: int = 0
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    retried: int = 0

    @property
    def finished(self) -> int:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class Rates:
    """Tasks per second over a window."""

    published: float = 0.0
    started: float = 0.0
    succeeded: float = 0.0
    failed: float = 0.0
    retried: float = 0.0

    @property
    def finished(self) -> float:
        return self.succeeded + self.failed


@dataclass(frozen=True)
class Latency:
    """Percentiles and mean (seconds) of one histogram; ``None`` without observations."""

    count: int = 0
    mean: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None


@dataclass(frozen=True)
class TaskStats:
    """One task on one queue over a window."""

    task: str
    queue: str
    counts: Counts
    rates: Rates
    queue_wait: Latency
    runtime: Latency


@dataclass(frozen=True)
class WindowStats:
    """All Aspects tasks over the last ``minutes`` (``seconds`` is what the rates divide by)."""

    minutes: int
    seconds: float
    counts: Counts
    rates: Rates
    queue_wait: Latency
    runtime: Latency
    per_task: tuple[TaskStats, ...]


@dataclass(frozen=True)
class MetricsReport:
    """What :func:`collect` found, and where."""

    source: str  # the store URL with credentials redacted, or "in-process"
    available: bool
    error: str | None
    generated_at: float
    windows: tuple[WindowStats, ...]
    finished_per_minute: tuple[int, ...]  # oldest first; the last entry is the current minute
    totals: Counts
    dropped: int

    def window(self, minutes: int) -> WindowStats:
        """The :class:`WindowStats` of the window of ``minutes``."""
        for stats in self.windows:
            if stats.minutes == minutes:
                return stats
        raise KeyError(minutes)


def latency(histogram: Histogram | None) -> Latency:
    """Percentiles of one histogram (pure)."""
    if histogram is None or histogram.count == 0:
        return Latency()
    counts = histogram.counts
    return Latency(
        count=histogram.count,
        mean=histogram.sum / histogram.count,
        p50=quantile(0.50, counts),
        p95=quantile(0.95, counts),
        p99=quantile(0.99, counts),
    )


def _counts(counters: Mapping[str, int]) -> Counts:
    return Counts(**{field: int(counters.get(_NAME_OF_FIELD[field], 0)) for field in _FIELDS})


def _rates(counts: Counts, seconds: float) -> Rates:
    return Rates(**{field: getattr(counts, field) / seconds for field in _FIELDS})


def _add_histogram(into: dict, key, histogram: Histogram) -> None:
    counts, total = into.get(key, ([0] * N_BUCKETS, 0.0))
    into[key] = ([a + b for a, b in zip(counts, histogram.counts)], total + histogram.sum)


def _as_histogram(pair) -> Histogram | None:
    if pair is None:
        return None
    return Histogram(counts=tuple(pair[0]), sum=pair[1])


def _series_task_queue(labels) -> tuple[str, str] | None:
    label_dict = dict(labels)
    if "task" not in label_dict:
        return None
    return label_dict["task"], label_dict.get("queue", "")


def summarize_window(figures_by_minute: Mapping[int, Figures], now: float, minutes: int) -> WindowStats:
    """Stats of the window of ``minutes`` ending at ``now`` from per-minute figures (pure)."""
    seconds = window_seconds(now, minutes)
    per_series: dict[tuple[str, str], dict[str, int]] = {}
    hist_series: dict[tuple[str, tuple[str, str]], tuple] = {}
    for minute in window_minutes(now, minutes):
        figures = figures_by_minute.get(minute)
        if figures is None:
            continue
        for (name, labels), value in figures.counters.items():
            if name in TASK_COUNTERS:
                series = _series_task_queue(labels)
                if series is not None:
                    bucket = per_series.setdefault(series, {})
                    bucket[name] = bucket.get(name, 0) + value
        for (name, labels), histogram in figures.histograms.items():
            series = _series_task_queue(labels)
            if name in (QUEUE_WAIT, RUNTIME) and series is not None:
                _add_histogram(hist_series, (name, series), histogram)
    per_task = []
    overall_counts: dict[str, int] = {}
    overall_hist: dict[str, tuple] = {}
    for series in sorted(set(per_series) | {s for _n, s in hist_series}):
        counters = per_series.get(series, {})
        for name, value in counters.items():
            overall_counts[name] = overall_counts.get(name, 0) + value
        histograms = {}
        for name in (QUEUE_WAIT, RUNTIME):
            pair = hist_series.get((name, series))
            histograms[name] = _as_histogram(pair)
            if pair is not None:
                _add_histogram(overall_hist, name, histograms[name])
        counts = _counts(counters)
        per_task.append(
            TaskStats(
                task=series[0],
                queue=series[1],
                counts=counts,
                rates=_rates(counts, seconds),
                queue_wait=latency(histograms[QUEUE_WAIT]),
                runtime=latency(histograms[RUNTIME]),
            )
        )
    counts = _counts(overall_counts)
    return WindowStats(
        minutes=minutes,
        seconds=seconds,
        counts=counts,
        rates=_rates(counts, seconds),
        queue_wait=latency(_as_histogram(overall_hist.get(QUEUE_WAIT))),
        runtime=latency(_as_histogram(overall_hist.get(RUNTIME))),
        per_task=tuple(per_task),
    )


def finished_per_minute(figures_by_minute: Mapping[int, Figures], now: float, minutes: int = SPARKLINE_MINUTES):
    """Succeeded + failed Aspects tasks in each of the last ``minutes`` minutes, oldest first (pure)."""
    out = []
    for minute in window_minutes(now, minutes):
        figures = figures_by_minute.get(minute)
        total = 0
        if figures is not None:
            total = sum(v for (name, _labels), v in figures.counters.items() if name in (SUCCEEDED, FAILED))
        out.append(total)
    return tuple(out)


def summarize(
    figures_by_minute: Mapping[int, Figures], now: float, windows: Iterable[int] = WINDOWS
) -> tuple[WindowStats, ...]:
    """:func:`summarize_window` for each window (pure)."""
    return tuple(summarize_window(figures_by_minute, now, minutes) for minutes in windows)


def _total_counts(totals: Figures) -> Counts:
    summed: dict[str, int] = {}
    for (name, _labels), value in totals.counters.items():
        if name in TASK_COUNTERS:
            summed[name] = summed.get(name, 0) + value
    return _counts(summed)


def collect(windows: Iterable[int] = WINDOWS, now: float | None = None, store=None) -> MetricsReport:
    """
    Read the store and summarize it; never raises.

    ``store`` defaults to the configured one (the shared Redis store, or this
    process's memory, flushed first). If the store cannot be read, the report
    has ``available=False``, the error, and empty windows.
    """
    from aspects_routing.metrics import recorder  # pylint: disable=import-outside-toplevel

    windows = tuple(windows)
    now = time.time() if now is None else now
    try:
        if store is None:
            store = recorder.current_store()
            if store is recorder.MEMORY_STORE:
                recorder.flush()
        source = store.description
    except Exception as exc:  # pylint: disable=broad-except
        return _unavailable("unknown", exc.__class__.__name__, now, windows)
    span = max((*windows, SPARKLINE_MINUTES))
    try:
        by_minute = store.minutes(window_minutes(now, span))
        totals = store.totals()
    except Exception as exc:  # pylint: disable=broad-except
        return _unavailable(source, exc.__class__.__name__, now, windows)
    return MetricsReport(
        source=source,
        available=True,
        error=None,
        generated_at=now,
        windows=summarize(by_minute, now, windows),
        finished_per_minute=finished_per_minute(by_minute, now),
        totals=_total_counts(totals),
        dropped=int(totals.counters.get((DROPPED, ()), 0)),
    )


def _unavailable(source: str, error: str, now: float, windows) -> MetricsReport:
    return MetricsReport(
        source=source,
        available=False,
        error=error,
        generated_at=now,
        windows=summarize({}, now, windows),
        finished_per_minute=(0,) * SPARKLINE_MINUTES,
        totals=Counts(),
        dropped=0,
    )

