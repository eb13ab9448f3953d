"""
Prometheus exposition of the shared store (what ``/aspects-routing/metrics`` serves).

:func:`build_registry` returns a fresh ``CollectorRegistry`` holding

* :class:`StoreCollector` -- every counter and histogram in the store, cumulative
  over the cluster (task counters, ``count()`` counters, the two histograms,
  ``aspects_metrics_dropped_total``) and ``aspects_metrics_store_up``;
* :class:`QueueDepthCollector` -- ``aspects_queue_depth`` per Aspects queue, read
  from the broker at scrape time;
* :class:`~aspects_routing.metrics.clickhouse.ClickHouseCollector` -- xAPI lag and
  ClickHouse growth, from a cache refreshed at most every ``METRICS_CLICKHOUSE_SECONDS``;
* whatever other parts of the plugin added with :func:`register_collector`.

Collectors read at scrape time; only the ClickHouse figures are cached between scrapes.
"""

from __future__ import annotations

import logging
from typing import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from aspects_routing.metrics.buckets import BOUNDS, cumulative
from aspects_routing.metrics.clickhouse import ClickHouseCollector
from aspects_routing.metrics.names import HELP, QUEUE_DEPTH, STORE_UP
from aspects_routing.metrics.recorder import RateLimitedLog

log = logging.getLogger(__name__)

#: Seconds the scrape waits for the broker when reading queue depths.
DEPTH_TIMEOUT = 0.5

_extra_collectors: list[Callable[[], object]] = []
_scrape_errors = RateLimitedLog()


def register_collector(factory: Callable[[], object]) -> Callable[[], object]:
    """
    Add a collector to every registry :func:`build_registry` makes.

    ``factory()`` is called once per scrape and must return a prometheus_client
    collector (an object with ``collect()``, and ``describe()`` returning ``[]``
    if it reads anything at collect time). Registering the same factory twice
    has no effect. Usable as a decorator.
    """
    if factory not in _extra_collectors:
        _extra_collectors.append(factory)
    return factory


def unregister_collector(factory: Callable[[], object]) -> None:
    """Remove a factory added by :func:`register_collector` (tests)."""
    if factory in _extra_collectors:
        _extra_collectors.remove(factory)


def _base_name(name: str) -> str:
    # prometheus_client adds the _total suffix of a counter itself.
    return name[: -len("_total")] if name.endswith("_total") else name


class StoreCollector:
    """Cluster-wide counters and histograms from the metrics store."""

    def __init__(self, store):
        self.store = store

    def describe(self):
        return []

    def collect(self):
        try:
            figures = self.store.totals()
        except Exception as exc:  # pylint: disable=broad-except
            _scrape_errors.warning(
                "aspects-routing could not read metrics from %s: %s", self.store.description, exc.__class__.__name__
            )
            yield GaugeMetricFamily(STORE_UP, HELP[STORE_UP], value=0)
            return
        yield GaugeMetricFamily(STORE_UP, HELP[STORE_UP], value=1)
        yield from _counter_families(figures.counters)
        yield from _histogram_families(figures.histograms)


def _grouped(series):
    by_name: dict[str, list] = {}
    for (name, labels), value in sorted(series.items()):
        by_name.setdefault(name, []).append((dict(labels), value))
    return by_name


def _counter_families(counters):
    for name, samples in _grouped(counters).items():
        label_names = sorted({k for labels, _ in samples for k in labels})
        family = CounterMetricFamily(
            _base_name(name), HELP.get(name, "Counted by aspects-routing."), labels=label_names
        )
        for labels, value in samples:
            family.add_metric([labels.get(k, "") for k in label_names], value)
        yield family


def _histogram_families(histograms):
    les = [_le(bound) for bound in BOUNDS] + ["+Inf"]
    for name, samples in _grouped(histograms).items():
        label_names = sorted({k for labels, _ in samples for k in labels})
        family = HistogramMetricFamily(name, HELP.get(name, "Observed by aspects-routing."), labels=label_names)
        for labels, histogram in samples:
            family.add_metric(
                [labels.get(k, "") for k in label_names],
                buckets=list(zip(les, cumulative(histogram.counts))),
                sum_value=histogram.sum,
            )
        yield family


def _le(bound: float) -> str:
    return repr(float(bound))


class QueueDepthCollector:
    """``aspects_queue_depth`` for every Aspects queue, read from the broker at scrape time."""

    def __init__(self, queues, timeout: float = DEPTH_TIMEOUT):
        self.queues = tuple(queues)
        self.timeout = timeout

    def describe(self):
        return []

    def collect(self):
        from aspects_routing.metrics.depth import queue_depths  # pylint: disable=import-outside-toplevel

        family = GaugeMetricFamily(QUEUE_DEPTH, HELP[QUEUE_DEPTH], labels=["queue"])
        for queue, depth in sorted(queue_depths(self.queues, self.timeout).items()):
            if isinstance(depth, int):
                family.add_metric([queue], depth)
            else:
                _scrape_errors.warning("aspects-routing queue depth of %s %s", queue, depth)
        yield family


def build_registry(store=None, queues=None) -> CollectorRegistry:
    """
    A new registry with the store, queue-depth and registered collectors.

    ``store`` defaults to the configured one (Redis, or this process's memory);
    ``queues`` to the Aspects queues of the settings.
    """
    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel
    from aspects_routing.metrics import recorder  # pylint: disable=import-outside-toplevel

    if store is None:
        store = recorder.current_store()
        if store is recorder.MEMORY_STORE:
            recorder.flush()  # in-process figures: include what this process has buffered
    if queues is None:
        queues = get_config().queues
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(store))
    registry.register(QueueDepthCollector(queues))
    registry.register(_Guarded(ClickHouseCollector()))
    for factory in list(_extra_collectors):
        try:
            registry.register(_Guarded(factory()))
        except Exception:  # pylint: disable=broad-except
            _scrape_errors.warning("aspects-routing could not add collector %r to the metrics endpoint", factory)
    return registry


class _Guarded:
    """A registered collector whose failure costs its own metrics, not the whole scrape."""

    def __init__(self, collector):
        self.collector = collector

    def describe(self):
        return []

    def collect(self):
        try:
            families = list(self.collector.collect())
        except Exception as exc:  # pylint: disable=broad-except
            _scrape_errors.warning("aspects-routing metrics collector %r failed: %r", self.collector, exc)
            return
        yield from families


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus text exposition format."""
    return generate_latest(registry)
