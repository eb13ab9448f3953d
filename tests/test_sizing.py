"""Unit tests of the pure sizing model (aspects_routing.scaling.sizing)."""

import math
import random
from dataclasses import FrozenInstanceError, replace

import pytest

from aspects_routing.scaling import sizing
from aspects_routing.scaling.sizing import Measured, size

NOTHING = Measured.nothing()

MEASURED = Measured(
    events_per_second=40.0,
    task_arrival_per_second=40.0,
    mean_task_runtime_seconds=0.25,
    worker_concurrency=4,
    aspects_workers=1,
    rows_per_day=1_000_000.0,
    bytes_per_row=150.0,
    storage_bytes=5 * sizing.GIB,
    superset_query_p95_seconds=3.0,
    batching_enabled=False,
    transport="celery",
    retention_days=365,
)

# Event rates from idle to a very large instance.
SWEEP = [0, 0.5, 1, 3, 7, 10, 25, 60, 100, 240, 500, 1000, 2500, 5000, 20000]


def _capacities(s):
    return (
        s.workers.slots,
        s.workers.workers,
        s.workers.min_replicas,
        s.workers.max_replicas,
        s.workers.consumers,
        s.ralph.min_replicas,
        s.ralph.max_replicas,
        s.clickhouse.keeper_nodes,
        s.clickhouse.replicas,
        s.clickhouse.total_volume_gi,
        s.clickhouse.projected_bytes,
        s.superset.web_min_replicas,
        s.superset.worker_max_replicas,
    )


@pytest.mark.parametrize("transport", ["celery", "event_bus"])
@pytest.mark.parametrize("base", [NOTHING, MEASURED], ids=["nothing", "measured"])
def test_more_events_never_fewer_replicas_or_less_storage(base, transport):
    base = replace(base, transport=transport)
    previous = None
    for rate in SWEEP:
        current = _capacities(size(base, overrides={"events_per_second": rate}))
        if previous is not None:
            for before, after in zip(previous, current):
                assert after >= before, (rate, previous, current)
        previous = current
    # The sweep really moves the numbers (a constant model would pass the loop).
    first = _capacities(size(base, overrides={"events_per_second": SWEEP[0]}))
    assert current[1] > first[1] and current[5] > first[5] and current[9] > first[9]


def test_measured_events_sweep_is_monotonic_too():
    previous = None
    for rate in SWEEP:
        current = _capacities(size(replace(NOTHING, events_per_second=rate)))
        if previous is not None:
            assert all(a >= b for a, b in zip(current, previous)), (rate, previous, current)
        previous = current


def test_littles_law_for_workers():
    s = size(MEASURED)
    # 40 tasks/s x 0.25 s / 0.7 = 14.3 -> 15 slots; 4 per worker -> 4 workers.
    assert s.workers.slots == 15
    assert s.workers.workers == 4
    # KEDA keeps the average load (a quarter of the peak need) and scales to 3 x peak.
    assert s.workers.min_replicas == 1
    assert s.workers.max_replicas == 4 * sizing.BURST_FACTOR
    # One worker drains 4 x 0.7 / 0.25 = 11.2 tasks/s; 30 s of that is 336 queued tasks.
    assert s.workers.list_length == 336
    assert "Little's law" in s.workers.explanation


def test_event_bus_sizes_consumers_on_events():
    s = size(replace(MEASURED, transport="event_bus"))
    # One consumer handles events serially: 40 x 0.25 / 0.7 -> 15 consumers.
    assert s.workers.consumers == 15
    assert s.workers.min_replicas == math.ceil(15 * sizing.MIN_REPLICAS_LOAD_RATIO)
    assert s.workers.max_replicas == 15 * sizing.BURST_FACTOR
    # 0.7 / 0.25 = 2.8 events/s per consumer; 30 s -> 84 pending events.
    assert s.workers.lag_count == 84


def test_ralph_keeps_two_replicas_and_scales_with_statements():
    assert size(NOTHING, overrides={"events_per_second": 0}).ralph.min_replicas == 2
    big = size(NOTHING, overrides={"events_per_second": 1000})
    peak = math.ceil(1000 / sizing.RALPH_STATEMENTS_PER_SECOND_PER_REPLICA)
    assert big.ralph.min_replicas == max(2, math.ceil(peak * sizing.MIN_REPLICAS_LOAD_RATIO))
    assert big.ralph.max_replicas == peak * sizing.BURST_FACTOR
    assert big.ralph.cpu_target_percent == sizing.RALPH_CPU_TARGET_PERCENT
    assert size(NOTHING, overrides={"replicas": 1}).ralph.min_replicas == 2


def test_volume_from_growth_retention_and_headroom():
    s = size(MEASURED)
    expected = 1_000_000 * 150 * sizing.DERIVED_TABLES_FACTOR * 365 * sizing.STORAGE_HEADROOM
    assert s.clickhouse.projected_bytes == pytest.approx(expected)
    assert s.clickhouse.volume_gi == math.ceil(expected / sizing.GIB)
    assert isinstance(s.clickhouse.volume_gi, int)
    shorter = size(MEASURED, overrides={"retention_days": 30})
    assert shorter.clickhouse.volume_gi < s.clickhouse.volume_gi
    assert shorter.input("retention_days").source == "flag --retention-days"


def test_current_storage_is_a_floor():
    s = size(replace(MEASURED, rows_per_day=0.0, storage_bytes=100 * sizing.GIB))
    assert s.clickhouse.volume_gi == math.ceil(100 * sizing.STORAGE_HEADROOM)


def test_shards_only_when_one_node_cannot_hold_the_data():
    assert size(MEASURED).clickhouse.shards == 1
    huge = size(replace(MEASURED, rows_per_day=60_000_000.0))
    assert huge.clickhouse.shards > 1
    assert huge.clickhouse.volume_gi <= sizing.MAX_VOLUME_PER_NODE_GI
    assert huge.clickhouse.total_volume_gi * sizing.GIB >= huge.clickhouse.projected_bytes


def test_small_and_large_profiles_differ_as_described():
    small = size(MEASURED, profile="small")
    large = size(MEASURED, profile="large")
    assert (small.clickhouse.keeper_nodes, small.clickhouse.replicas) == (1, 1)
    assert (large.clickhouse.keeper_nodes, large.clickhouse.replicas) == (3, sizing.LARGE_REPLICAS)
    assert large.superset.web_min_replicas > small.superset.web_min_replicas
    assert large.superset.web_max_replicas > small.superset.web_max_replicas
    # Same data, same volume: the profile changes redundancy, not the projection.
    assert large.clickhouse.volume_gi == small.clickhouse.volume_gi
    assert small.profile_reason == "--profile small"


def test_auto_profile_follows_the_data_volume():
    assert size(MEASURED).profile == "small"
    busy = size(replace(MEASURED, rows_per_day=sizing.LARGE_PROFILE_ROWS_PER_DAY * 2.0))
    assert busy.profile == "large"
    assert "rows/day" in busy.profile_reason
    assert size(MEASURED, overrides={"replicas": 3}).clickhouse.replicas == 3


def test_superset_async_queries_from_p95():
    slow = size(replace(MEASURED, superset_query_p95_seconds=sizing.SUPERSET_WEBSERVER_TIMEOUT_SECONDS + 1))
    fast = size(MEASURED)
    assert slow.superset.async_queries and "exceeds" in slow.superset.async_reason
    assert not fast.superset.async_queries and "within" in fast.superset.async_reason
    assert size(NOTHING, profile="large").superset.async_queries
    assert not size(NOTHING, profile="small").superset.async_queries


def test_batching_advice():
    advice = size(MEASURED).batching
    assert advice.enable and advice.currently_enabled is False
    assert advice.batch_size == 40 * sizing.BATCH_INTERVAL_SECONDS
    assert advice.settings["EVENT_ROUTING_BACKEND_BATCHING_ENABLED"] is True
    assert not size(replace(MEASURED, batching_enabled=True)).batching.enable
    quiet = size(MEASURED, overrides={"events_per_second": 1})
    assert not quiet.batching.enable and quiet.batching.settings == {}
    assert size(MEASURED, overrides={"events_per_second": 10_000}).batching.batch_size == sizing.MAX_BATCH_SIZE


def test_every_input_has_a_source():
    s = size(NOTHING)
    names = {i.name for i in s.inputs}
    assert {
        "events_per_second", "task_arrival_per_second", "mean_task_runtime_seconds", "worker_concurrency",
        "rows_per_day", "bytes_per_row", "storage_bytes", "superset_query_p95_seconds", "batching_enabled",
        "retention_days", "transport",
    } <= names
    for item in s.inputs:
        assert item.source.startswith(("measured", "configured", "flag --", "derived:", "assumed: ")), item
    assert s.input("events_per_second").source.startswith("assumed: ")
    assert s.input("events_per_second").value == sizing.ASSUMED_EVENTS_PER_SECOND


def test_flags_override_measurements_and_derive_the_rest():
    s = size(MEASURED, overrides={"events_per_second": 80})
    assert s.input("events_per_second").source == "flag --events-per-second"
    # The measured 1 task per event carries over to the what-if rate.
    assert s.input("task_arrival_per_second").value == pytest.approx(80)
    assert s.input("task_arrival_per_second").source.startswith("derived:")
    assert s.input("mean_task_runtime_seconds").source == "measured"
    assert size(MEASURED).input("rows_per_day").source == "measured"


@pytest.mark.parametrize(
    "overrides, profile",
    [
        ({"events_per_second": -1}, "auto"),
        ({"events_per_second": float("nan")}, "auto"),
        ({"retention_days": 0}, "auto"),
        ({"nonsense": 1}, "auto"),
        ({}, "medium"),
    ],
)
def test_bad_inputs_raise_value_error(overrides, profile):
    with pytest.raises(ValueError):
        size(MEASURED, profile=profile, overrides=overrides)


def test_results_are_frozen():
    s = size(MEASURED)
    with pytest.raises(FrozenInstanceError):
        s.workers.workers = 1  # type: ignore[misc]


def test_monotonic_from_random_measured_bases():
    """Many random measurements: raising the event rate never lowers a capacity."""
    rng = random.Random(20261127)
    for _ in range(200):
        base = Measured(
            events_per_second=None,
            task_arrival_per_second=None,
            mean_task_runtime_seconds=rng.choice([None, rng.uniform(0.005, 3.0)]),
            worker_concurrency=rng.choice([None, rng.randint(1, 16)]),
            aspects_workers=rng.choice([None, rng.randint(0, 10)]),
            rows_per_day=None,
            bytes_per_row=rng.choice([None, rng.uniform(50, 800)]),
            storage_bytes=rng.choice([None, rng.randint(0, 5 * 1024**4)]),
            superset_query_p95_seconds=rng.choice([None, rng.uniform(0.1, 120)]),
            batching_enabled=rng.choice([None, True, False]),
            transport=rng.choice(["celery", "event_bus"]),
            retention_days=rng.randint(1, 2000),
        )
        rates = sorted(rng.uniform(0, 20_000) for _ in range(6))
        sized = [_capacities(size(base, overrides={"events_per_second": r})) for r in rates]
        for before, after in zip(sized, sized[1:]):
            assert all(a >= b for a, b in zip(after, before)), (base, before, after)
