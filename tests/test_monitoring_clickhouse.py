"""
xAPI lag and ClickHouse growth on the metrics endpoint: cached, rate-limited, never a failed scrape.

The cache is driven with a clock the test moves (so "at most one measurement per
interval" is checked exactly, without waiting); the endpoint is read through
Django's test client against a real chDB engine seeded with Aspects' xAPI table,
and against a ClickHouse address where nothing listens.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import clickhouse_connect
import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from aspects_routing.conf import parse
from aspects_routing.metrics import clickhouse as chm
from aspects_routing.testing.xapi import seed_xapi_events

TOKEN = "monitoring-test-token"


def _samples(body: str) -> dict:
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples, name):
    values = [v for (n, _labels), v in samples.items() if n == name]
    assert len(values) <= 1, (name, values)
    return values[0] if values else None


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _ok_snapshot(value=1.0):
    return chm.Snapshot(True, None, 0.0, 0.01, "xapi", "xapi_events_all", lag_seconds=value, rows=10)


# ---------------------------------------------------------------- the cache


def test_at_most_one_measurement_per_interval():
    clock = FakeClock()
    calls = []
    cache = chm.ClickHouseCache(measure=lambda *a: calls.append(a) or _ok_snapshot(len(calls)), clock=clock, wait=5)
    for _ in range(50):  # 50 scrapes within the same second
        snapshot, _running = cache.get("k", ("k",), interval=60)
    assert len(calls) == 1 and snapshot.lag_seconds == 1
    clock.now += 59.9
    for _ in range(10):
        cache.get("k", ("k",), interval=60)
    assert len(calls) == 1
    clock.now += 0.1
    snapshot, _ = cache.get("k", ("k",), interval=60)
    assert len(calls) == 2 and snapshot.lag_seconds == 2
    assert cache.collections == 2
    # Another target (settings changed): the cache is dropped and measured at once.
    snapshot, _ = cache.get("other", ("other",), interval=60)
    assert len(calls) == 3 and snapshot.lag_seconds == 3


def test_a_slow_clickhouse_never_holds_the_scrape():
    clock = FakeClock()
    release = threading.Event()
    calls = []

    def slow(*_args):
        calls.append(1)
        if len(calls) > 1:
            assert release.wait(60), "the test never released the measurement"
        return _ok_snapshot(len(calls))

    cache = chm.ClickHouseCache(measure=slow, clock=clock, wait=0.05, stuck_after=30)
    first, _ = cache.get("k", ("k",), interval=10)
    assert first.lag_seconds == 1
    clock.now += 10
    # The second measurement blocks until released; scrapes return meanwhile with the old figures.
    for _ in range(3):
        snapshot, running_for = cache.get("k", ("k",), interval=10)
        assert snapshot.lag_seconds == 1 and running_for is not None
    assert not release.is_set() and len(calls) == 2
    families = {f.name: f for f in chm._families(snapshot, running_for, 30, cache.collections)}
    assert families[chm.UP].samples[0].value == 1
    # Still running long after the budget: ClickHouse counts as unreadable.
    clock.now += 31
    snapshot, running_for = cache.get("k", ("k",), interval=10)
    families = {f.name: f for f in chm._families(snapshot, running_for, 30, cache.collections)}
    assert families[chm.UP].samples[0].value == 0
    assert len(calls) == 2  # no second query piled on the stuck one
    release.set()


def test_a_measurement_that_raises_is_up_zero():
    def broken(*_args):
        raise RuntimeError("boom")

    cache = chm.ClickHouseCache(measure=broken, clock=FakeClock(), wait=5)
    snapshot, running_for = cache.get("k", ("k",), interval=10)
    assert snapshot is not None and not snapshot.ok and running_for is None
    families = {f.name: f for f in chm._families(snapshot, running_for, 30, 1)}
    assert families[chm.UP].samples[0].value == 0
    assert chm.XAPI_LAG not in families


# ---------------------------------------------------------------- the setting


@pytest.mark.parametrize("value", [0, -5, 0.5, "60", True])
def test_bad_interval_is_a_system_check_error(value):
    config = parse({"METRICS_CLICKHOUSE_SECONDS": value})
    assert config.metrics_clickhouse_seconds == 60.0
    (problem,) = [p for p in config.problems if p.id == "aspects_routing.W136"]
    assert "METRICS_CLICKHOUSE_SECONDS" in problem.msg and "None or a number of seconds >= 1" in problem.hint


def test_interval_none_and_numbers_are_accepted():
    assert parse({"METRICS_CLICKHOUSE_SECONDS": None}).metrics_clickhouse_seconds is None
    assert parse({"METRICS_CLICKHOUSE_SECONDS": 15}).metrics_clickhouse_seconds == 15.0
    assert not parse({"METRICS_CLICKHOUSE_SECONDS": 15}).problems


# ---------------------------------------------------------------- the endpoint on chDB


@pytest.fixture(scope="module")
def chdb_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("chdb-monitoring")
    client = clickhouse_connect.get_client(interface="chdb", path=str(path))
    micros = client.query("SELECT toUnixTimestamp64Micro(now64(6))").result_rows[0][0]
    now = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
    end = (now - timedelta(minutes=90)).replace(microsecond=0)
    seeded = seed_xapi_events(client, days=4, events_per_day=2_000, end=end, seed=5)
    client.close()
    return path, seeded, end


@pytest.fixture
def endpoint(settings, redis_url):
    chm.CACHE.reset()

    def scrape():
        response = Client().get("/aspects-routing/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        return _samples(response.content.decode())

    yield scrape
    chm.CACHE.reset()


def _configure(settings, url, interval=60.0, **routing):
    settings.ASPECTS_ROUTING = {
        "QUEUE": "edx.lms.core.aspects", "METRICS_TOKEN": TOKEN, "METRICS_CLICKHOUSE_SECONDS": interval, **routing
    }
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {"url": url} if url else {}


def test_endpoint_exports_lag_and_growth_from_chdb(settings, endpoint, chdb_path):
    path, seeded, end = chdb_path
    _configure(settings, f"chdb://{path}")
    chm.CACHE.wait = 30  # this test wants the first scrape to carry the figures
    try:
        first = endpoint()
    finally:
        chm.CACHE.wait = chm.SCRAPE_WAIT_SECONDS
    assert _value(first, chm.UP) == 1
    labels = (("database", "xapi"), ("table", "xapi_events_all"))
    assert first[(chm.XAPI_ROWS, labels)] == seeded.rows
    assert first[(chm.XAPI_BYTES, labels)] > 0
    lag = first[(chm.XAPI_LAG, labels)]
    assert 90 * 60 <= lag < 90 * 60 + 600  # the newest event is stamped `end`, 90 min before seeding
    assert first[(chm.XAPI_ROWS_PER_DAY, labels)] > 0 and first[(chm.XAPI_BYTES_PER_DAY, labels)] > 0
    assert _value(first, chm.LAST_SUCCESS) > 0
    assert _value(first, chm.COLLECTIONS) == 1
    # Cached: further scrapes within the interval do not query again and serve the same figures.
    for _ in range(5):
        again = endpoint()
    assert _value(again, chm.COLLECTIONS) == 1
    assert again[(chm.XAPI_LAG, labels)] == lag


def test_unreachable_clickhouse_is_up_zero_and_the_scrape_succeeds(settings, endpoint):
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    _configure(settings, "http://ch_user:ch-secret-pw@127.0.0.1:9/xapi")
    chm.CACHE.wait = 30
    try:
        samples = endpoint()
    finally:
        chm.CACHE.wait = chm.SCRAPE_WAIT_SECONDS
    assert _value(samples, chm.UP) == 0
    assert _value(samples, chm.XAPI_LAG) is None
    assert _value(samples, "aspects_metrics_store_up") == 1  # the rest of the endpoint is intact
    body = Client().get("/aspects-routing/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").content.decode()
    assert "ch-secret-pw" not in body


def test_nothing_exported_without_clickhouse_or_with_the_setting_off(settings, endpoint, chdb_path):
    _configure(settings, None)
    assert _value(endpoint(), chm.UP) is None
    _configure(settings, f"chdb://{chdb_path[0]}", interval=None)
    assert _value(endpoint(), chm.UP) is None
    assert chm.CACHE.collections == 0
