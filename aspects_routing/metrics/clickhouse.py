"""
xAPI lag and ClickHouse growth on the metrics endpoint, read at scrape time from a cache.

:class:`ClickHouseCollector` is added to every registry the endpoint builds
(:func:`aspects_routing.metrics.exposition.build_registry`). At each scrape it

* starts a new measurement when the last one started at least
  ``ASPECTS_ROUTING["METRICS_CLICKHOUSE_SECONDS"]`` ago and none is running: the
  scaling report's own :func:`~aspects_routing.scaling.collectors.clickhouse.collect_clickhouse`
  (same queries, bound parameters, ``max_execution_time``), run in a background
  thread with a :data:`QUERY_TIMEOUT_SECONDS` budget;
* waits for that new measurement at most :data:`SCRAPE_WAIT_SECONDS` (a cached
  scrape does not wait at all), then serves the newest finished one.

So ClickHouse is queried at most once per interval whatever the scrape rate or the
number of Prometheus servers, and a slow or dead ClickHouse costs a scrape at most
:data:`SCRAPE_WAIT_SECONDS`. A failed measurement, or one still running after
:data:`STUCK_AFTER_SECONDS`, is ``aspects_clickhouse_up 0``; the scrape itself
never fails.

Where ClickHouse is: Aspects' ``EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG`` (read at each
scrape). Without a ``url`` there, nothing is exported.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

log = logging.getLogger(__name__)

#: The budget given to one measurement (``collect_clickhouse(timeout=...)``).
QUERY_TIMEOUT_SECONDS = 10.0
#: How long a scrape that started a measurement waits for it before serving the cache.
SCRAPE_WAIT_SECONDS = 0.25
#: A measurement still running after this long counts as ClickHouse being unreadable.
STUCK_AFTER_SECONDS = 3 * QUERY_TIMEOUT_SECONDS

UP = "aspects_clickhouse_up"
COLLECTIONS = "aspects_clickhouse_collections_total"
QUERY_SECONDS = "aspects_clickhouse_collection_seconds"
LAST_SUCCESS = "aspects_clickhouse_last_success_timestamp_seconds"
XAPI_LAG = "aspects_xapi_lag_seconds"
XAPI_ROWS = "aspects_clickhouse_xapi_rows"
XAPI_BYTES = "aspects_clickhouse_xapi_bytes_on_disk"
XAPI_ROWS_PER_DAY = "aspects_clickhouse_xapi_rows_per_day"
XAPI_BYTES_PER_DAY = "aspects_clickhouse_xapi_bytes_per_day"
MAX_PARTS = "aspects_clickhouse_max_parts_per_partition"
DELAYED_INSERTS = "aspects_clickhouse_delayed_inserts"

HELP = {
    UP: "1 if the last ClickHouse measurement succeeded, 0 if it failed or is stuck.",
    COLLECTIONS: "ClickHouse measurements started by this process (at most one per METRICS_CLICKHOUSE_SECONDS).",
    QUERY_SECONDS: "Seconds the last finished ClickHouse measurement took.",
    LAST_SUCCESS: "Unix time at which the last successful ClickHouse measurement finished.",
    XAPI_LAG: "Seconds between ClickHouse's clock and the newest xAPI event's emission_time.",
    XAPI_ROWS: "Rows in the xAPI table's active parts (largest replica).",
    XAPI_BYTES: "Bytes on disk of the xAPI table's active parts (largest replica).",
    XAPI_ROWS_PER_DAY: "xAPI rows added per day: mean of the complete UTC days of the last 30.",
    XAPI_BYTES_PER_DAY: "xAPI bytes on disk added per day: mean of the complete UTC days of the last 30.",
    MAX_PARTS: "Most active parts in one partition (MaxPartCountForPartition).",
    DELAYED_INSERTS: "Inserts ClickHouse is delaying because a partition has too many parts.",
}


@dataclass(frozen=True)
class Snapshot:  # pylint: disable=too-many-instance-attributes
    """One finished measurement, reduced to the numbers exported."""

    ok: bool
    reason: str | None
    finished_at: float  # unix time
    seconds: float
    database: str
    table: str
    lag_seconds: float | None = None
    rows: int | None = None
    bytes_on_disk: int | None = None
    rows_per_day: float | None = None
    bytes_per_day: float | None = None
    max_parts: int | None = None
    delayed_inserts: int | None = None


def snapshot_of(report, finished_at: float) -> Snapshot:
    """The exported numbers of a :class:`~aspects_routing.scaling.collectors.clickhouse.ClickHouseReport`."""

    def value(measured):
        return measured.value if measured.ok else None

    lag = value(report.lag)
    storage = value(report.storage)
    projection = value(report.projection)
    reason = report.unavailable or (None if report.lag.ok else f"xAPI lag: {report.lag.unavailable}")
    return Snapshot(
        ok=reason is None,
        reason=reason,
        finished_at=finished_at,
        seconds=report.seconds,
        database=report.database,
        table=report.table,
        lag_seconds=lag.lag_seconds if lag else None,
        rows=storage.rows if storage else None,
        bytes_on_disk=storage.bytes_on_disk if storage else None,
        rows_per_day=projection.growth_rows_per_day if projection else None,
        bytes_per_day=projection.growth_bytes_per_day if projection else None,
        max_parts=value(report.max_parts_per_partition),
        delayed_inserts=value(report.delayed_inserts),
    )


def _measure(target, cluster, retention_days) -> Snapshot:
    from aspects_routing.scaling.collectors.clickhouse import (  # pylint: disable=import-outside-toplevel
        collect_clickhouse,
    )

    report = collect_clickhouse(
        target, cluster=cluster, retention_days=retention_days, timeout=QUERY_TIMEOUT_SECONDS
    )
    return snapshot_of(report, time.time())


class ClickHouseCache:
    """
    At most one measurement per interval, run off the scrape's thread.

    ``measure(key)`` returns a :class:`Snapshot` (``key`` is what it measures; a new
    key drops the cache). Thread-safe: concurrent scrapes share one measurement.
    """

    def __init__(self, measure: Callable[..., Snapshot] = _measure, clock: Callable[[], float] = time.monotonic,
                 wait: float = SCRAPE_WAIT_SECONDS, stuck_after: float = STUCK_AFTER_SECONDS):
        self._measure = measure
        self._clock = clock
        self.wait = wait
        self.stuck_after = stuck_after
        self._lock = threading.Lock()
        self._key = None
        self._started: float | None = None
        self._running: threading.Thread | None = None
        self._latest: Snapshot | None = None
        self.collections = 0

    def reset(self) -> None:
        """Forget the cached figures and the count (a running measurement finishes into the void)."""
        with self._lock:
            self._key, self._started, self._running, self._latest = None, None, None, None
            self.collections = 0

    def _run(self, key, args) -> None:
        started = time.perf_counter()
        try:
            result = self._measure(*args)
        except Exception as exc:  # pylint: disable=broad-except
            # collect_clickhouse never raises; this guards the thread against anything else.
            result = Snapshot(False, f"measurement failed: {type(exc).__name__}", time.time(),
                              time.perf_counter() - started, "", "")
        with self._lock:
            if self._key == key:
                self._latest = result
                self._running = None

    def get(self, key, args, interval: float) -> tuple[Snapshot | None, float | None]:
        """The newest finished snapshot, and how long the running measurement has run (None: none running)."""
        with self._lock:
            if key != self._key:
                self._key, self._started, self._running, self._latest = key, None, None, None
            now = self._clock()
            started_here = None
            if self._running is None and (self._started is None or now - self._started >= interval):
                self._started = now
                self.collections += 1
                started_here = threading.Thread(
                    target=self._run, args=(key, args), name="aspects-clickhouse-metrics", daemon=True
                )
                self._running = started_here
                started_here.start()
        if started_here is not None and self.wait > 0:
            started_here.join(self.wait)
        with self._lock:
            running_for = None if self._running is None else self._clock() - self._started
            return self._latest, running_for


#: The process's cache: shared by every scrape of this process.
CACHE = ClickHouseCache()


def _families(snapshot: Snapshot | None, running_for: float | None, stuck_after: float, collections: int):
    up = GaugeMetricFamily(UP, HELP[UP])
    yield CounterMetricFamily(COLLECTIONS[: -len("_total")], HELP[COLLECTIONS], value=collections)
    stuck = running_for is not None and running_for > stuck_after
    if stuck:
        up.add_metric([], 0)
    elif snapshot is not None:
        up.add_metric([], 1 if snapshot.ok else 0)
    yield up
    if snapshot is None:
        return
    yield GaugeMetricFamily(QUERY_SECONDS, HELP[QUERY_SECONDS], value=snapshot.seconds)
    if snapshot.ok:
        yield GaugeMetricFamily(LAST_SUCCESS, HELP[LAST_SUCCESS], value=snapshot.finished_at)
    labelled = (
        (XAPI_LAG, snapshot.lag_seconds),
        (XAPI_ROWS, snapshot.rows),
        (XAPI_BYTES, snapshot.bytes_on_disk),
        (XAPI_ROWS_PER_DAY, snapshot.rows_per_day),
        (XAPI_BYTES_PER_DAY, snapshot.bytes_per_day),
    )
    for name, value in labelled:
        if value is not None:
            family = GaugeMetricFamily(name, HELP[name], labels=["database", "table"])
            family.add_metric([snapshot.database, snapshot.table], value)
            yield family
    for name, value in ((MAX_PARTS, snapshot.max_parts), (DELAYED_INSERTS, snapshot.delayed_inserts)):
        if value is not None:
            yield GaugeMetricFamily(name, HELP[name], value=value)


class ClickHouseCollector:
    """The Prometheus collector over :data:`CACHE` (see the module docstring)."""

    def __init__(self, cache: ClickHouseCache = CACHE):
        self.cache = cache

    def describe(self):
        """Nothing at registration time (that would query ClickHouse)."""
        return []

    def collect(self):
        """The cached figures; starts a new measurement when the interval has passed."""
        from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel
        from aspects_routing.scaling.collectors.clickhouse import (  # pylint: disable=import-outside-toplevel
            target_from_settings,
        )

        config = get_config()
        interval = config.metrics_clickhouse_seconds
        if interval is None:
            return
        target = target_from_settings()
        if target is None:
            return
        key = (target, config.clickhouse_cluster, config.retention_days)
        snapshot, running_for = self.cache.get(key, key, interval)
        yield from _families(snapshot, running_for, self.cache.stuck_after, self.cache.collections)
