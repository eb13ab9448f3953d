"""
The sizing model: measured load in, replica counts and volumes out.

One pure function, :func:`size`, turns a :class:`Measured` (what the scaling
report measured, ``None`` where it could not) into a :class:`Sizing`. The scaling
report's recommendations and ``aspects_scaling_config`` both call it, so the
numbers an operator reads in the report are the numbers in the generated YAML.

Every constant below is named and says why it has its value. Every input the
model used is returned in :attr:`Sizing.inputs` with its source: ``"measured"``,
``"configured: ..."``, ``"flag --x"``, ``"derived: ..."`` or ``"assumed: <why>"``.

The model is monotonic: a higher event rate never yields fewer replicas or less
storage (``tests/test_sizing.py`` sweeps it). See docs/decisions/0003-sizing-model.rst.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

GIB = 1024**3

PROFILES = ("auto", "small", "large")

# ---------------------------------------------------------------- queueing model
#: Busy fraction each worker slot is sized for. Above ~0.7 queue wait grows
#: steeply with any burst (M/M/c waiting time explodes as utilisation -> 1).
TARGET_UTILISATION = 0.7
#: How long a task may wait in the queue at the autoscaler's target backlog.
#: KEDA adds a replica for every listLength/lagCount items; 30 s keeps xAPI
#: data fresh in ClickHouse within a minute under load.
TARGET_QUEUE_WAIT_SECONDS = 30.0
#: Ratio of the autoscaler's max replicas to the replicas the peak needs. Bursts
#: (course launches, bulk re-sends of dispatch_bulk_events) exceed the measured
#: peak; three times the peak absorbs them without an unbounded max.
BURST_FACTOR = 3
#: Autoscalers keep enough replicas for the average load (peak need x this,
#: the average-to-peak ratio below) and add replicas as backlog builds, so
#: off-peak hours do not hold peak capacity.
MIN_REPLICAS_LOAD_RATIO = 0.25
#: Never fewer than one worker on the Aspects queue: a queue with no consumer
#: piles up unseen (the report flags it as critical).
MIN_WORKERS = 1

# ---------------------------------------------------------------- defaults assumed when nothing is measured
#: Peak tracking events per second assumed when neither measured nor given.
#: About 1,000 learners active at once, each emitting an event every ~100 s.
ASSUMED_EVENTS_PER_SECOND = 10.0
#: Mean run time of an Aspects task: dispatch_event is one HTTP POST to Ralph
#: on the cluster network plus the xAPI transform, about 100 ms.
ASSUMED_TASK_RUNTIME_SECONDS = 0.1
#: Celery's prefork pool defaults to one process per CPU; Tutor's worker pods
#: usually get 2 CPUs.
ASSUMED_WORKER_CONCURRENCY = 2
#: Without batching every tracking event becomes one dispatch_event task per
#: xAPI router; Aspects configures one router (Ralph).
ASSUMED_TASKS_PER_EVENT = 1.0
#: Compressed bytes per xAPI row in ClickHouse: the event JSON compresses well
#: (LZ4/ZSTD on repetitive keys); measured Aspects tables land near 200 B/row.
ASSUMED_BYTES_PER_ROW = 200.0

# ---------------------------------------------------------------- traffic shape
#: Average-day traffic as a fraction of the peak rate: tracking traffic follows
#: a daily rhythm, and the mean hour carries about a quarter of the peak hour.
AVERAGE_TO_PEAK_RATIO = 0.25
SECONDS_PER_DAY = 86_400

# ---------------------------------------------------------------- batching
#: Above this many tasks per second, per-event dispatch spends more on broker
#: round trips and HTTP requests than on work; batching pays off.
BATCHING_TASKS_PER_SECOND_THRESHOLD = 5.0
#: Flush at least this often, so xAPI data is at most this stale at low
#: traffic (event-routing-backends defaults to 60 s).
BATCH_INTERVAL_SECONDS = 10
#: Batch bounds: below 10 batching saves little; above 1000 one Ralph POST gets
#: large enough to risk request-size limits and long retries.
MIN_BATCH_SIZE = 10
MAX_BATCH_SIZE = 1000

# ---------------------------------------------------------------- Ralph
#: Two replicas at least, so one pod restart or node drain never stops the LRS.
RALPH_MIN_REPLICAS = 2
#: xAPI statements one Ralph replica (1 CPU limit, ClickHouse backend) handles at
#: the CPU target; ingestion is CPU-bound JSON validation.
RALPH_STATEMENTS_PER_SECOND_PER_REPLICA = 100.0
#: HPA CPU target: Ralph scales mainly on CPU; 60 % leaves room for the
#: 15-30 s an HPA takes to add a pod.
RALPH_CPU_TARGET_PERCENT = 60
#: HPA memory target; Ralph's memory is flat, so this only catches leaks.
RALPH_MEMORY_TARGET_PERCENT = 80
#: Requests/limits of one Aspects Celery worker pod, per prefork slot: the
#: tasks are I/O-bound (HTTP to Ralph, inserts into ClickHouse), so a slot uses
#: about a quarter CPU; each slot is a forked LMS process of ~400 MiB.
WORKER_CPU_MILLICORES_PER_SLOT = 250
WORKER_MEMORY_MI_PER_SLOT = 400
#: One consume_events process: a single LMS process reading the stream.
CONSUMER_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
RALPH_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}

# ---------------------------------------------------------------- ClickHouse
#: Disk headroom over the projected data: merges temporarily need space up to
#: the size of the parts they merge, and growth is rarely exactly linear.
STORAGE_HEADROOM = 1.5
#: Aspects' materialized views copy each xAPI event into derived tables
#: (enrollment, grades, video, problem, navigation facts) roughly doubling it.
DERIVED_TABLES_FACTOR = 2.0
#: Smallest data volume generated: small clusters still need room for
#: system logs and the Superset query log.
MIN_VOLUME_GI = 20
#: Largest data volume per node before adding shards: beyond ~2 TiB a replica
#: resync or a restore takes many hours.
MAX_VOLUME_PER_NODE_GI = 2048
#: Above this many xAPI rows per day the auto profile picks "large" (3 Keepers,
#: replicas): 20 M rows/day is ~230 rows/s average, where a single node's
#: merges start to compete with Superset's queries.
LARGE_PROFILE_ROWS_PER_DAY = 20_000_000
#: Replicas per shard in the large profile: two survive one node loss.
LARGE_REPLICAS = 2
KEEPER_NODES = {"small": 1, "large": 3}
KEEPER_VOLUME_GI = 10
CLICKHOUSE_RESOURCES = {
    "small": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "8Gi"}},
    "large": {"requests": {"cpu": "4", "memory": "16Gi"}, "limits": {"cpu": "8", "memory": "32Gi"}},
}
KEEPER_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}

# ---------------------------------------------------------------- Superset
#: Superset's own default web timeout (SUPERSET_WEBSERVER_TIMEOUT). Queries
#: slower than this fail in the browser unless they run asynchronously.
SUPERSET_WEBSERVER_TIMEOUT_SECONDS = 60.0
#: HPA ranges by profile for the web (superset) and worker (superset-worker)
#: Deployments; the beat Deployment is a singleton and never autoscaled.
SUPERSET_REPLICAS = {"small": (1, 3), "large": (2, 6)}
#: HPA utilisation targets need requests; Superset's gunicorn web pod holds ~1 GiB.
#: The worker's limit is derived from its concurrency below.
SUPERSET_RESOURCES = {
    "superset": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
    "superset-worker": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2"}},
}
SUPERSET_CPU_TARGET_PERCENT = 70
SUPERSET_MEMORY_TARGET_PERCENT = 80
#: Superset's Celery worker (``celery worker -Ofair``, prefork), measured on the real
#: Superset 6.1 worker with Aspects' rendered config (docs/sizing-and-configs.md,
#: proportional set sizes): the main process (124 MiB measured), and what each pool
#: child adds once it has run a query (95-149 MiB measured; 170 the largest reported).
#: Without ``--concurrency`` Celery forks one child per node CPU, so the pod's memory
#: follows the node's size, not its request.
SUPERSET_WORKER_BASE_MI = 130
SUPERSET_WORKER_CHILD_MI = 170
#: A child that grows past this after a task is replaced (``--max-memory-per-child``),
#: so a large result set cannot keep a child big; the limit holds every child at it.
SUPERSET_WORKER_CHILD_MAX_MI = 400
#: The pod limit is rounded up to this step.
SUPERSET_MEMORY_STEP_MI = 256
#: Dashboards the warm-up task refreshes every run (strategy top_n_dashboards).
CACHE_WARMUP_TOP_N = 10
#: Warm-up cadence: every 30 minutes keeps the default 1-hour cache warm.
CACHE_WARMUP_CRONTAB_MINUTE = "*/30"


@dataclass(frozen=True)
class Measured:  # pylint: disable=too-many-instance-attributes
    """What the scaling report measured; ``None`` means not measured."""

    events_per_second: float | None  # peak tracking events/s entering the pipeline
    task_arrival_per_second: float | None  # peak Aspects task publish rate (all Aspects queues)
    mean_task_runtime_seconds: float | None
    worker_concurrency: int | None  # measured slots per Aspects worker
    aspects_workers: int | None  # live workers consuming the Aspects queue(s)
    rows_per_day: float | None  # xAPI rows/day in ClickHouse (recent average or peak)
    bytes_per_row: float | None  # compressed bytes per xAPI row
    storage_bytes: int | None  # current total
    superset_query_p95_seconds: float | None
    batching_enabled: bool | None
    transport: str = "celery"
    retention_days: int = 365

    @classmethod
    def nothing(cls, transport: str = "celery", retention_days: int = 365) -> "Measured":
        """A measurement with every rate unknown (nothing could be measured)."""
        return cls(None, None, None, None, None, None, None, None, None, None, transport, retention_days)


@dataclass(frozen=True)
class Input:
    """One input of the model, with its value and where it came from."""

    name: str
    value: Any
    unit: str
    source: str  # "measured", "configured: ...", "flag --x", "derived: ...", "assumed: <why>"


@dataclass(frozen=True)
class WorkerSizing:  # pylint: disable=too-many-instance-attributes
    """Celery workers on the Aspects queue (or event-bus consumers)."""

    transport: str
    arrival_per_second: float
    mean_runtime_seconds: float
    concurrency: int
    slots: int  # ceil(arrival x runtime / TARGET_UTILISATION)
    workers: int  # replicas the measured peak needs
    min_replicas: int
    max_replicas: int
    list_length: int  # KEDA redis scaler: queued tasks per replica
    lag_count: int  # KEDA redis-streams scaler: pending events per consumer
    consumers: int  # consume_events replicas with the event bus
    explanation: str
    requests: Mapping[str, str] = field(default_factory=dict)  # one worker pod
    limits: Mapping[str, str] = field(default_factory=dict)
    consumer_requests: Mapping[str, str] = field(default_factory=dict)  # one consume_events pod
    consumer_limits: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RalphSizing:
    """The Ralph LRS Deployment and its HPA."""

    statements_per_second: float
    min_replicas: int
    max_replicas: int
    cpu_target_percent: int
    memory_target_percent: int
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    explanation: str


@dataclass(frozen=True)
class ClickHouseSizing:  # pylint: disable=too-many-instance-attributes
    """The ClickHouse cluster: Keeper nodes, layout and data volumes."""

    profile: str  # "small" or "large"
    keeper_nodes: int
    shards: int
    replicas: int
    rows_per_day: float
    bytes_per_day: float
    projected_bytes: float  # growth/day x retention x derived tables x headroom (or current x headroom)
    volume_gi: int  # per node
    keeper_volume_gi: int
    requests: Mapping[str, str]
    limits: Mapping[str, str]
    keeper_requests: Mapping[str, str]
    keeper_limits: Mapping[str, str]
    explanation: str

    @property
    def total_volume_gi(self) -> int:
        """Data volume of one replica of the whole dataset (all shards)."""
        return self.volume_gi * self.shards


@dataclass(frozen=True)
class SupersetSizing:  # pylint: disable=too-many-instance-attributes
    """Superset web and worker autoscaling, async queries, cache warm-up."""

    web_min_replicas: int
    web_max_replicas: int
    worker_min_replicas: int
    worker_max_replicas: int
    cpu_target_percent: int
    memory_target_percent: int
    async_queries: bool
    async_reason: str
    cache_warmup: bool
    cache_warmup_top_n: int
    cache_warmup_minute: str
    explanation: str
    resources: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)  # per Deployment
    worker_concurrency: int = 1  # superset-worker prefork children
    worker_max_memory_per_child_kib: int = 0  # celery --max-memory-per-child
    global_async_queries: bool = False  # FEATURE_FLAGS["GLOBAL_ASYNC_QUERIES"]
    global_async_reason: str = ""


@dataclass(frozen=True)
class BatchingAdvice:
    """Whether to turn on event-routing-backends batching, and with what values."""

    enable: bool
    currently_enabled: bool | None
    batch_size: int
    batch_interval_seconds: int
    reason: str

    @property
    def settings(self) -> dict[str, Any]:
        """The event-routing-backends settings this advice amounts to."""
        if not self.enable:
            return {}
        return {
            "EVENT_ROUTING_BACKEND_BATCHING_ENABLED": True,
            "EVENT_ROUTING_BACKEND_BATCH_SIZE": self.batch_size,
            "EVENT_ROUTING_BACKEND_BATCH_INTERVAL": self.batch_interval_seconds,
        }


@dataclass(frozen=True)
class Sizing:
    """Everything :func:`size` decided, with the inputs behind it."""

    profile: str  # resolved: "small" or "large"
    profile_reason: str
    workers: WorkerSizing
    ralph: RalphSizing
    clickhouse: ClickHouseSizing
    superset: SupersetSizing
    batching: BatchingAdvice
    inputs: tuple[Input, ...]

    def input(self, name: str) -> Input:
        """The input called ``name``."""
        for item in self.inputs:
            if item.name == name:
                return item
        raise KeyError(name)


#: Names accepted in ``overrides`` besides the fields of :class:`Measured`.
EXTRA_OVERRIDES = ("replicas",)
_UNITS = {
    "events_per_second": "events/s",
    "task_arrival_per_second": "tasks/s",
    "mean_task_runtime_seconds": "s",
    "worker_concurrency": "slots/worker",
    "aspects_workers": "workers",
    "rows_per_day": "rows/day",
    "bytes_per_row": "B/row",
    "storage_bytes": "B",
    "superset_query_p95_seconds": "s",
    "batching_enabled": "",
    "transport": "",
    "retention_days": "days",
    "replicas": "replicas",
    "tasks_per_event": "tasks/event",
}
# Inputs read from settings rather than measured, with the setting named in their source.
_CONFIGURED = {
    "transport": "configured: ASPECTS_ROUTING",
    "retention_days": "configured: ASPECTS_ROUTING",
    "batching_enabled": "configured: EVENT_ROUTING_BACKEND_BATCHING_ENABLED",
}


def flag_name(name: str) -> str:
    """The command-line flag that overrides input ``name``."""
    return "--" + name.replace("_", "-")


class _Inputs:
    """Resolves each input from overrides, measurements or assumptions, recording the source."""

    def __init__(self, measured: Measured, overrides: Mapping[str, Any]):
        self.measured = measured
        self.overrides = overrides
        self.items: dict[str, Input] = {}

    def record(self, name: str, value: Any, source: str) -> Any:
        self.items[name] = Input(name, value, _UNITS.get(name, ""), source)
        return value

    def overridden(self, name: str) -> bool:
        return self.overrides.get(name) is not None

    def get(self, name: str, assumed: Any = None, why: str = "") -> Any:
        """Override, else measurement, else ``assumed`` (recorded only if not None)."""
        if self.overridden(name):
            return self.record(name, self.overrides[name], f"flag {flag_name(name)}")
        value = getattr(self.measured, name, None)
        if value is not None:
            source = _CONFIGURED.get(name, "measured")
            return self.record(name, value, source)
        if assumed is None:
            # Recorded too, so a summary can say the input was missing and what that implies.
            self.record(name, None, f"assumed: not measured; {why}")
            return None
        return self.record(name, assumed, f"assumed: {why}")


def _check(measured: Measured, profile: str, overrides: Mapping[str, Any]) -> None:
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    known = {f.name for f in fields(Measured)} | set(EXTRA_OVERRIDES)
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"unknown override(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    for name in known:
        value = overrides.get(name, getattr(measured, name, None))
        if isinstance(value, bool) or value is None or isinstance(value, str):
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite number >= 0; got {value!r}")
    for name in ("retention_days", "replicas", "worker_concurrency"):
        value = overrides.get(name, getattr(measured, name, None))
        if value is not None and value < 1:
            raise ValueError(f"{name} must be at least 1; got {value!r}")


def _tasks_per_event(inputs: _Inputs, batching_enabled: bool | None) -> float:
    m = inputs.measured
    if m.events_per_second and m.task_arrival_per_second is not None:
        ratio = m.task_arrival_per_second / m.events_per_second
        return inputs.record("tasks_per_event", ratio, "derived: measured tasks/s / measured events/s")
    if batching_enabled:
        ratio = 1.0 / 100  # event-routing-backends' default EVENT_ROUTING_BACKEND_BATCH_SIZE
        return inputs.record("tasks_per_event", ratio, "assumed: batching on with the default batch size 100")
    return inputs.record(
        "tasks_per_event", ASSUMED_TASKS_PER_EVENT, "assumed: one dispatch_event task per event (one xAPI router)"
    )


def _arrival(inputs: _Inputs, events: float, tasks_per_event: float) -> float:
    """Peak Aspects task arrival rate: measured, unless the event rate was overridden."""
    if inputs.overridden("task_arrival_per_second"):
        return inputs.get("task_arrival_per_second")
    if not inputs.overridden("events_per_second") and inputs.measured.task_arrival_per_second is not None:
        return inputs.get("task_arrival_per_second")
    return inputs.record(
        "task_arrival_per_second",
        events * tasks_per_event,
        "derived: events/s x tasks per event",
    )


def _workers(inputs: _Inputs, transport: str, events: float, arrival: float, replicas: int | None) -> WorkerSizing:
    runtime = inputs.get(
        "mean_task_runtime_seconds", ASSUMED_TASK_RUNTIME_SECONDS, "one HTTP POST to Ralph plus the transform, ~100 ms"
    )
    concurrency = int(
        inputs.get("worker_concurrency", ASSUMED_WORKER_CONCURRENCY, "Celery prefork default of one per CPU, 2 CPUs")
    )
    slots = max(1, math.ceil(arrival * runtime / TARGET_UTILISATION))
    workers = max(MIN_WORKERS, math.ceil(slots / concurrency))
    # With the event bus, consume_events handles one event at a time per consumer.
    consumers = max(MIN_WORKERS, math.ceil(events * runtime / TARGET_UTILISATION))
    needed = consumers if transport == "event_bus" else workers
    floor = max(MIN_WORKERS, math.ceil(needed * MIN_REPLICAS_LOAD_RATIO))
    min_replicas = max(replicas, MIN_WORKERS) if replicas else floor
    max_replicas = max(min_replicas + 1, needed * BURST_FACTOR)
    per_replica_rate = concurrency * TARGET_UTILISATION / runtime if runtime > 0 else arrival or 1.0
    list_length = max(1, math.ceil(per_replica_rate * TARGET_QUEUE_WAIT_SECONDS))
    per_consumer_rate = TARGET_UTILISATION / runtime if runtime > 0 else events or 1.0
    lag_count = max(1, math.ceil(per_consumer_rate * TARGET_QUEUE_WAIT_SECONDS))
    if transport == "event_bus":
        explanation = (
            f"consume_events replicas = ceil({events:g} events/s x {runtime:g} s / {TARGET_UTILISATION}) = {consumers}; "
            f"KEDA adds one per {lag_count} pending events ({TARGET_QUEUE_WAIT_SECONDS:g} s of one consumer's work); "
            f"min = ceil({consumers} x {MIN_REPLICAS_LOAD_RATIO}) for the average load, max = {BURST_FACTOR} x peak."
        )
    else:
        explanation = (
            f"slots = ceil({arrival:g} tasks/s x {runtime:g} s / {TARGET_UTILISATION}) = {slots} (Little's law); "
            f"workers = ceil({slots} / {concurrency} per worker) = {workers}; "
            f"KEDA adds one per {list_length} queued tasks ({TARGET_QUEUE_WAIT_SECONDS:g} s of one worker's work); "
            f"min = ceil({workers} x {MIN_REPLICAS_LOAD_RATIO}) for the average load, max = {BURST_FACTOR} x peak."
        )
    if replicas:
        explanation += f" Min replicas {min_replicas} from --replicas."
    return WorkerSizing(
        transport, arrival, runtime, concurrency, slots, workers, min_replicas, max_replicas,
        list_length, lag_count, consumers, explanation,
        requests={
            "cpu": f"{WORKER_CPU_MILLICORES_PER_SLOT * concurrency}m",
            "memory": f"{WORKER_MEMORY_MI_PER_SLOT * concurrency}Mi",
        },
        limits={"cpu": str(concurrency), "memory": f"{2 * WORKER_MEMORY_MI_PER_SLOT * concurrency}Mi"},
        consumer_requests=dict(CONSUMER_RESOURCES["requests"]),
        consumer_limits=dict(CONSUMER_RESOURCES["limits"]),
    )


def _ralph(events: float, replicas: int | None) -> RalphSizing:
    peak = math.ceil(events / RALPH_STATEMENTS_PER_SECOND_PER_REPLICA)
    needed = max(RALPH_MIN_REPLICAS, peak)
    floor = max(RALPH_MIN_REPLICAS, math.ceil(peak * MIN_REPLICAS_LOAD_RATIO))
    min_replicas = max(RALPH_MIN_REPLICAS, replicas) if replicas else floor
    max_replicas = max(min_replicas + 1, needed * BURST_FACTOR)
    explanation = (
        f"peak = ceil({events:g} statements/s / {RALPH_STATEMENTS_PER_SECOND_PER_REPLICA:g} per replica) = {peak}; "
        f"min = max({RALPH_MIN_REPLICAS} for fault tolerance, ceil({peak} x {MIN_REPLICAS_LOAD_RATIO}) for the "
        f"average load) = {floor}"
        + (f", set to {min_replicas} by --replicas" if replicas else "")
        + f"; max = {BURST_FACTOR} x max({RALPH_MIN_REPLICAS}, peak) = {max_replicas}; "
        f"scale on CPU at {RALPH_CPU_TARGET_PERCENT} %."
    )
    return RalphSizing(
        events, min_replicas, max_replicas, RALPH_CPU_TARGET_PERCENT, RALPH_MEMORY_TARGET_PERCENT,
        dict(RALPH_RESOURCES["requests"]), dict(RALPH_RESOURCES["limits"]), explanation,
    )


def _rows_per_day(inputs: _Inputs, events: float) -> float:
    if inputs.overridden("rows_per_day"):
        return inputs.get("rows_per_day")
    if not inputs.overridden("events_per_second") and inputs.measured.rows_per_day is not None:
        return inputs.get("rows_per_day")
    return inputs.record(
        "rows_per_day",
        events * SECONDS_PER_DAY * AVERAGE_TO_PEAK_RATIO,
        f"derived: events/s x {SECONDS_PER_DAY} s x {AVERAGE_TO_PEAK_RATIO} average-to-peak",
    )


def _clickhouse(inputs: _Inputs, profile: str, events: float, replicas: int | None) -> ClickHouseSizing:
    rows = _rows_per_day(inputs, events)
    bytes_per_row = inputs.get("bytes_per_row", ASSUMED_BYTES_PER_ROW, "typical compressed xAPI row in Aspects")
    retention = int(inputs.get("retention_days"))
    current = inputs.get("storage_bytes", why="the volume follows from growth x retention only") or 0
    bytes_per_day = rows * bytes_per_row * DERIVED_TABLES_FACTOR
    projected = max(bytes_per_day * retention, current) * STORAGE_HEADROOM
    total_gi = max(MIN_VOLUME_GI, math.ceil(projected / GIB))
    shards = max(1, math.ceil(total_gi / MAX_VOLUME_PER_NODE_GI))
    volume_gi = math.ceil(total_gi / shards)
    if profile == "large":
        node_replicas = max(LARGE_REPLICAS, replicas or 0)
    else:
        node_replicas = 1
    explanation = (
        f"volume = max({rows:,.0f} rows/day x {bytes_per_row:g} B x {DERIVED_TABLES_FACTOR:g} derived tables x "
        f"{retention} days, current {current:,} B) x {STORAGE_HEADROOM:g} headroom = {total_gi} Gi"
        f"; {shards} shard(s) of {volume_gi} Gi (at most {MAX_VOLUME_PER_NODE_GI} Gi per node)"
        f"; {node_replicas} replica(s), {KEEPER_NODES[profile]} Keeper node(s) ({profile} profile)."
    )
    return ClickHouseSizing(
        profile=profile,
        keeper_nodes=KEEPER_NODES[profile],
        shards=shards,
        replicas=node_replicas,
        rows_per_day=rows,
        bytes_per_day=bytes_per_day,
        projected_bytes=projected,
        volume_gi=volume_gi,
        keeper_volume_gi=KEEPER_VOLUME_GI,
        requests=dict(CLICKHOUSE_RESOURCES[profile]["requests"]),
        limits=dict(CLICKHOUSE_RESOURCES[profile]["limits"]),
        keeper_requests=dict(KEEPER_RESOURCES["requests"]),
        keeper_limits=dict(KEEPER_RESOURCES["limits"]),
        explanation=explanation,
    )


def _superset(inputs: _Inputs, profile: str, replicas: int | None) -> SupersetSizing:
    p95 = inputs.get("superset_query_p95_seconds", why="async queries follow the profile")
    if p95 is not None and p95 > SUPERSET_WEBSERVER_TIMEOUT_SECONDS:
        async_queries = True
        reason = f"query p95 {p95:g} s exceeds the {SUPERSET_WEBSERVER_TIMEOUT_SECONDS:g} s web timeout"
    elif p95 is not None:
        async_queries = False
        reason = f"query p95 {p95:g} s is within the {SUPERSET_WEBSERVER_TIMEOUT_SECONDS:g} s web timeout"
    elif profile == "large":
        async_queries = True
        reason = "query p95 not measured; the large profile runs queries asynchronously to keep web workers free"
    else:
        async_queries = False
        reason = "query p95 not measured; synchronous queries are enough for the small profile"
    low, high = SUPERSET_REPLICAS[profile]
    web_min = max(low, replicas or 0)
    worker_min = max(low, replicas or 0)
    resources = {name: {k: dict(v) for k, v in res.items()} for name, res in SUPERSET_RESOURCES.items()}
    concurrency, limit_mi, worker_why = superset_worker_memory(_memory_mi(resources["superset-worker"]["requests"]["memory"]))
    resources["superset-worker"]["limits"]["memory"] = f"{limit_mi}Mi"
    explanation = (
        f"{profile} profile: superset and superset-worker scale {web_min}-{max(high, web_min + 1)} replicas on "
        f"CPU {SUPERSET_CPU_TARGET_PERCENT} % / memory {SUPERSET_MEMORY_TARGET_PERCENT} %; {worker_why}; "
        f"SQL Lab queries {'asynchronous (allow_run_async on the Aspects ClickHouse database)' if async_queries else 'synchronous'}: "
        f"{reason}; GLOBAL_ASYNC_QUERIES off: {GLOBAL_ASYNC_REASON}; "
        f"cache warm-up of the top {CACHE_WARMUP_TOP_N} dashboards every 30 min."
    )
    return SupersetSizing(
        web_min, max(high, web_min + 1), worker_min, max(high, worker_min + 1),
        SUPERSET_CPU_TARGET_PERCENT, SUPERSET_MEMORY_TARGET_PERCENT,
        async_queries, reason, True, CACHE_WARMUP_TOP_N, CACHE_WARMUP_CRONTAB_MINUTE, explanation,
        resources=resources,
        worker_concurrency=concurrency,
        worker_max_memory_per_child_kib=SUPERSET_WORKER_CHILD_MAX_MI * 1024,
        global_async_queries=False,
        global_async_reason=GLOBAL_ASYNC_REASON,
    )


#: Why FEATURE_FLAGS["GLOBAL_ASYNC_QUERIES"] stays off in every profile.
GLOBAL_ASYNC_REASON = (
    "Aspects shows its dashboards in the LMS through guest tokens (EMBEDDED_SUPERSET), and with "
    "GLOBAL_ASYNC_QUERIES Superset 6.1 answers a guest's chart-data request 401 (it signs the async "
    "channel's JWT with sub=None for guests; PyJWT rejects it: InvalidSubjectError)"
)


def _memory_mi(quantity: str) -> int:
    for suffix, factor in (("Gi", 1024), ("Mi", 1)):
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    raise ValueError(f"unsupported memory quantity {quantity!r}")


def superset_worker_memory(request_mi: int) -> tuple[int, int, str]:
    """
    (concurrency, limit MiB, explanation) of the Superset worker for a memory request.

    Concurrency: as many children as fit under the HPA's memory target with the
    measured base and per-child memory, so a loaded pod can reach the target
    (and an idle one sits below it). Limit: every child at the
    ``--max-memory-per-child`` threshold, rounded up.
    """
    target_mi = request_mi * SUPERSET_MEMORY_TARGET_PERCENT / 100
    concurrency = max(1, int((target_mi - SUPERSET_WORKER_BASE_MI) // SUPERSET_WORKER_CHILD_MI))
    peak = SUPERSET_WORKER_BASE_MI + concurrency * SUPERSET_WORKER_CHILD_MAX_MI
    limit_mi = math.ceil(peak / SUPERSET_MEMORY_STEP_MI) * SUPERSET_MEMORY_STEP_MI
    why = (
        f"superset-worker --concurrency={concurrency}: floor(({request_mi} Mi request x "
        f"{SUPERSET_MEMORY_TARGET_PERCENT} % - {SUPERSET_WORKER_BASE_MI} Mi base) / {SUPERSET_WORKER_CHILD_MI} Mi "
        f"per child), limit {limit_mi} Mi = {SUPERSET_WORKER_BASE_MI} + {concurrency} x "
        f"{SUPERSET_WORKER_CHILD_MAX_MI} Mi (--max-memory-per-child) rounded up"
    )
    return concurrency, limit_mi, why


def _batching(inputs: _Inputs, events: float, arrival: float) -> BatchingAdvice:
    enabled = inputs.items["batching_enabled"].value
    size_ = min(MAX_BATCH_SIZE, max(MIN_BATCH_SIZE, math.ceil(events * BATCH_INTERVAL_SECONDS)))
    if enabled:
        return BatchingAdvice(False, enabled, size_, BATCH_INTERVAL_SECONDS, "batching is already on")
    if arrival > BATCHING_TASKS_PER_SECOND_THRESHOLD:
        return BatchingAdvice(
            True, enabled, size_, BATCH_INTERVAL_SECONDS,
            f"{arrival:g} tasks/s exceeds {BATCHING_TASKS_PER_SECOND_THRESHOLD:g}/s of per-event dispatch; "
            f"batches of {size_} (~{BATCH_INTERVAL_SECONDS} s of peak events) cut tasks and Ralph requests",
        )
    return BatchingAdvice(
        False, enabled, size_, BATCH_INTERVAL_SECONDS,
        f"{arrival:g} tasks/s is below {BATCHING_TASKS_PER_SECOND_THRESHOLD:g}/s; per-event dispatch is fine",
    )


def _resolve_profile(profile: str, rows: float, shards_needed: bool, replicas: int | None) -> tuple[str, str]:
    if profile != "auto":
        return profile, f"--profile {profile}"
    if replicas and replicas > 1:
        return "large", f"auto: --replicas {replicas} asks for replicated nodes"
    if rows > LARGE_PROFILE_ROWS_PER_DAY:
        return "large", f"auto: {rows:,.0f} rows/day > {LARGE_PROFILE_ROWS_PER_DAY:,}"
    if shards_needed:
        return "large", "auto: the data needs more than one node"
    return "small", f"auto: {rows:,.0f} rows/day <= {LARGE_PROFILE_ROWS_PER_DAY:,}"


def size(measured: Measured, *, profile: str = "auto", overrides: Mapping[str, Any] | None = None) -> Sizing:
    """
    Size the Aspects pipeline from ``measured`` load.

    ``overrides`` maps a :class:`Measured` field name (or ``"replicas"``) to a
    value given on the command line; it wins over the measurement and is
    recorded with the source ``flag --<name>``. ``profile`` is ``auto``
    (chosen from the data volume), ``small`` or ``large``. Raises
    :class:`ValueError` on a negative or non-finite input or an unknown profile.
    """
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check(measured, profile, overrides)
    inputs = _Inputs(measured, overrides)
    transport = inputs.get("transport")
    inputs.get("retention_days")
    replicas = inputs.get("replicas", why="replica counts follow from the load")
    events = inputs.get(
        "events_per_second", ASSUMED_EVENTS_PER_SECOND, "nothing measured; ~1,000 learners active at once"
    )
    batching_enabled = inputs.get("batching_enabled", why="treated as off")
    tasks_per_event = _tasks_per_event(inputs, batching_enabled)
    arrival = _arrival(inputs, events, tasks_per_event)
    inputs.get("aspects_workers", why="informational; the model sizes from the load, not from today's workers")

    # The profile depends on the data volume, which the small sizing computes.
    probe = _clickhouse(_Inputs(measured, overrides), "small", events, replicas)
    resolved, reason = _resolve_profile(profile, probe.rows_per_day, probe.shards > 1, replicas)

    clickhouse = _clickhouse(inputs, resolved, events, replicas)
    superset = _superset(inputs, resolved, replicas)
    return Sizing(
        profile=resolved,
        profile_reason=reason,
        workers=_workers(inputs, transport, events, arrival, replicas),
        ralph=_ralph(events, replicas),
        clickhouse=clickhouse,
        superset=superset,
        batching=_batching(inputs, events, arrival),
        inputs=tuple(inputs.items.values()),
    )


__all__ = [
    "BatchingAdvice",
    "ClickHouseSizing",
    "Input",
    "Measured",
    "RalphSizing",
    "Sizing",
    "SupersetSizing",
    "WorkerSizing",
    "flag_name",
    "size",
]
