"""
Recommendations: pure functions from the report's sections and the sizing
model's output to concrete, explained changes.

Every number of capacity (workers, replicas, volume size, batching) comes from
:func:`aspects_routing.scaling.sizing.size` -- the function the config generator
uses too -- never from a constant here. What this module adds is the findings
that need no model: a routed queue nobody consumes, a backlog that never
drains, a source that could not be measured, an unhealthy service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aspects_routing.service import Service, current_service

INFO, WARNING, CRITICAL = "info", "warning", "critical"
_RANK = {INFO: 0, WARNING: 1, CRITICAL: 2}
#: Overall report status for the worst recommendation severity.
STATUS_FOR = {INFO: "ok", WARNING: "warning", CRITICAL: "critical"}


@dataclass(frozen=True)
class Input:
    """One measured (or assumed) number a recommendation rests on."""

    name: str
    value: Any
    source: str  # where it comes from: "measured: ...", "configured: ...", "assumed: ...", "flag ..."
    unit: str = ""


@dataclass(frozen=True)
class Change:
    """The exact change to make."""

    kind: str  # "setting", "replicas", "command" or "config"
    target: str  # what to change: a setting name, a Deployment, a host
    value: str  # the value, replica count or command line


@dataclass(frozen=True)
class Recommendation:
    """A finding with its severity, inputs, reasoning and the change that addresses it."""

    severity: str  # INFO, WARNING or CRITICAL
    area: str  # routing, workers, queues, batching, event_bus, ralph, clickhouse, superset, services, report
    title: str
    inputs: tuple[Input, ...]
    reasoning: str
    changes: tuple[Change, ...]


def overall_status(recommendations) -> str:
    """``ok``, ``warning`` or ``critical``: the worst severity among ``recommendations``."""
    worst = max((_RANK[r.severity] for r in recommendations), default=0)
    return STATUS_FOR[{v: k for k, v in _RANK.items()}[worst]]


def exit_code(status: str) -> int:
    """Exit status for ``--fail-on``: 0 ok, 1 warning, 2 critical."""
    return {"ok": 0, "warning": 1, "critical": 2}[status]


def _by_severity(recommendations):
    return tuple(sorted(recommendations, key=lambda r: -_RANK[r.severity]))


# ---------------------------------------------------------------- routing


def _service(service: Service | None) -> Service:
    """The service the advice is for: the one given, else this process's (LMS or CMS)."""
    return service if service is not None else current_service()


def _worker_command(queue: str, service: Service) -> str:
    return service.celery("worker", "--loglevel=info", "-Q", queue)


def broker_findings(routing) -> list[Recommendation]:
    """A broker that refuses connections is critical: no Aspects task can be published or consumed."""
    if not getattr(routing, "broker_error", None):
        return []
    return [
        Recommendation(
            CRITICAL,
            "routing",
            "The Celery broker cannot be reached: no task can be published or consumed",
            (Input("broker", routing.broker, "measured: one connection attempt"),
             Input("error", routing.broker_error, "measured: one connection attempt")),
            "Every Aspects task (and every other platform task) fails to publish while the broker is down; "
            "tracking events sent through Celery are lost or retried by the caller.",
            (Change("setting", "CELERY_BROKER_URL", "a reachable broker (check its host, port and password)"),),
        )
    ]


def routing_findings(routing, service: Service | None = None) -> list[Recommendation]:
    """A routed queue with no live consumer is critical; unreachable workers are a warning."""
    service = _service(service)
    found = []
    if routing.workers is None:
        found.append(
            Recommendation(
                WARNING,
                "routing",
                "Could not ask the Celery workers which queues they consume",
                (Input("broadcast error", routing.workers_error, "measured: inspect().active_queues()"),),
                "Without an answer from the workers the report cannot tell whether Aspects queues are consumed.",
                (Change("command", "broker", service.celery("inspect", "active_queues")),),
            )
        )
        return found
    consumed = sorted({q for w in routing.workers for q in w.queues})
    for queue in routing.queues:
        if not queue.unconsumed:
            continue
        changes = [Change("command", "worker", _worker_command(queue.queue, service))]
        if consumed:
            changes.append(
                Change("setting", "ASPECTS_ROUTING['QUEUE'] (instead)", f"one of the consumed queues: {', '.join(consumed)}")
            )
        found.append(
            Recommendation(
                CRITICAL,
                "routing",
                f"No live worker consumes {queue.queue!r}: Aspects tasks pile up there unseen",
                (
                    Input("queue", queue.queue, "measured: Celery router"),
                    Input("tasks routed there", len(queue.tasks), "measured: registered Aspects tasks"),
                    Input("live workers", len(routing.workers), "measured: inspect().active_queues()"),
                ),
                f"{', '.join(queue.tasks)} are published to {queue.queue!r}, and none of the "
                f"{len(routing.workers)} worker(s) that answered consumes it.",
                tuple(changes),
            )
        )
    return found


# ---------------------------------------------------------------- sources


def _how_to_restore(name: str, service: Service) -> Change:
    if name == "routing":
        return Change("command", "broker", service.celery("inspect", "ping"))
    return _HOW_TO_RESTORE[name]


_HOW_TO_RESTORE = {
    "throughput": Change("setting", "ASPECTS_ROUTING['METRICS_REDIS_URL']", "a Redis shared by the LMS and workers"),
    "queues": Change("setting", "CELERY_BROKER_URL / ASPECTS_ROUTING['METRICS_REDIS_URL']", "a reachable Redis"),
    "event_bus": Change("setting", "EVENT_BUS_REDIS_CONNECTION_URL", "a reachable Redis"),
    "clickhouse": Change(
        "command", "aspects_scaling_report", "--clickhouse-dsn clickhouse://USER:PASSWORD@HOST:8123/xapi (or --no-clickhouse)"
    ),
    "services": Change("setting", "ASPECTS_ROUTING['RALPH_URL'] / ['SUPERSET_URL']", "reachable base URLs"),
}


def unavailable_findings(sections, service: Service | None = None) -> list[Recommendation]:
    """One warning per section that could not be measured."""
    service = _service(service)
    found = []
    for name, section in sections.items():
        if section.status != "unavailable":
            continue
        found.append(
            Recommendation(
                WARNING,
                name,
                f"The {name.replace('_', ' ')} section could not be measured",
                (Input("reason", section.reason, f"measured: {name} collector"),),
                "Recommendations that need this source are left out rather than guessed.",
                (_how_to_restore(name, service),),
            )
        )
    return found


def service_findings(services) -> list[Recommendation]:
    """Ralph down or its database away (critical); Superset down, its Redis unreachable or no worker (warning)."""
    return [_service_finding(health) for health in services.unhealthy]


def _service_finding(health) -> Recommendation:
    inputs = [Input("url", health.url, "setting: the server's health path (see note)" if health.note else "setting")]
    inputs.append(Input("error", health.error, "measured: HTTP probe"))
    if health.body:
        inputs.append(Input("health body", health.body, f"measured: {health.url}"))
    if health.note:
        inputs.append(Input("note", health.note, "setting"))
    backend = health.backend
    if backend is not None:
        inputs.append(Input("Superset broker", backend.broker, "setting: ASPECTS_ROUTING['SUPERSET_BROKER_URL']"))
        inputs.append(Input("Superset workers answering", len(backend.workers), "measured: inspect().ping()"))
    if health.service == "ralph":
        if health.state == "degraded":
            title = f"Ralph is up, its database is not ({health.body})"
            reasoning = (
                "Ralph answers (/__lbheartbeat__ 200) but its heartbeat reports the backend status above: "
                "xAPI statements are refused until ClickHouse answers again; event-routing-backends retries "
                "and then drops them."
            )
            change = Change("command", "clickhouse", "kubectl logs deployment/ralph --since=15m; check ClickHouse")
        else:
            title = "Ralph is down"
            reasoning = (
                "Nothing answers Ralph's health path: xAPI statements cannot reach ClickHouse; "
                "event-routing-backends retries and then drops them."
            )
            change = Change("command", "ralph", "kubectl rollout status deployment/ralph")
        return Recommendation(CRITICAL, "ralph", title, tuple(inputs), reasoning, (change,))
    if health.state == "degraded" and backend is not None and not backend.redis_reachable:
        title = "Superset's Redis is unreachable"
        reasoning = (
            "Superset's /health answers, but its Redis (Celery broker, results backend and cache) does not: "
            "asynchronous SQL Lab queries, caching, cache warm-up and reports fail."
        )
        change = Change("command", "superset-redis", "kubectl get pods -l app.kubernetes.io/name=superset-redis")
    elif health.state == "degraded":
        title = "No Superset Celery worker answers"
        reasoning = (
            "Superset's /health answers and its Redis too, but no Celery worker replied to a ping: "
            "asynchronous SQL Lab queries, cache warm-up and reports are not run."
        )
        change = Change("command", "superset-worker", "kubectl rollout status deployment/superset-worker")
    else:
        title = "Superset is down"
        reasoning = "Superset's health path does not answer 2xx: dashboards do not load; data keeps flowing into ClickHouse."
        change = Change("command", "superset", "kubectl rollout status deployment/superset")
    return Recommendation(WARNING, "superset", title, tuple(inputs), reasoning, (change,))


# ---------------------------------------------------------------- backlog and throughput

#: A backlog that takes longer than this to drain at the measured rates is a
#: warning: ten times the queue wait the autoscaler is sized for
#: (sizing.TARGET_QUEUE_WAIT_SECONDS), i.e. xAPI data minutes late in ClickHouse.
DRAIN_WARNING_SECONDS = 300.0
#: Share of finished runs that failed, over the window, above which a task is flagged.
FAILURE_RATIO_WARNING = 0.05
#: Fewest failures before the ratio means anything.
FAILURE_MIN_COUNT = 5


def backlog_findings(backlog, unconsumed: tuple[str, ...] = (), service: Service | None = None) -> list[Recommendation]:
    """Aspects queues that never drain, or drain too slowly, at the measured rates."""
    service = _service(service)
    found = []
    for queue in backlog.queues:
        if not queue.aspects or not queue.depth or queue.drain_seconds is None or queue.queue in unconsumed:
            continue
        never = queue.drain_seconds == float("inf")
        if not never and queue.drain_seconds <= DRAIN_WARNING_SECONDS:
            continue
        found.append(
            Recommendation(
                WARNING,
                "queues",
                f"The backlog on {queue.queue!r} "
                + ("never drains at the measured rates" if never else f"takes {queue.drain_seconds:.0f} s to drain"),
                (
                    Input("depth", queue.depth, "measured: broker LLEN", "tasks"),
                    Input("arrivals", queue.arrival_per_second, f"measured: last {backlog.trend_minutes} min", "tasks/s"),
                    Input("finishes", queue.finish_per_second, f"measured: last {backlog.trend_minutes} min", "tasks/s"),
                ),
                (
                    "Tasks arrive at least as fast as workers finish them, so the queue only grows."
                    if never
                    else f"At the measured net rate the queue needs more than {DRAIN_WARNING_SECONDS:.0f} s to empty."
                ),
                (_config_command("workers", service),),
            )
        )
    return found


def throughput_findings(
    metrics, window_minutes: int, wait_target_seconds: float, service: Service | None = None
) -> list[Recommendation]:
    """Tasks that fail often, tasks that wait too long, metrics that were lost."""
    service = _service(service)
    found = []
    window = metrics.window(window_minutes)
    for task in window.per_task:
        finished = task.counts.finished
        if task.counts.failed >= FAILURE_MIN_COUNT and finished and task.counts.failed / finished > FAILURE_RATIO_WARNING:
            found.append(
                Recommendation(
                    WARNING,
                    "throughput",
                    f"{task.task} fails {100 * task.counts.failed / finished:.0f} % of its runs",
                    (
                        Input("failed", task.counts.failed, f"measured: last {window_minutes} min", "tasks"),
                        Input("finished", finished, f"measured: last {window_minutes} min", "tasks"),
                        Input("retried", task.counts.retried, f"measured: last {window_minutes} min", "tasks"),
                    ),
                    "Failed Aspects tasks are events missing from ClickHouse; more workers do not fix them.",
                    (Change("command", "worker logs", f"grep -i 'Task {task.task}\\[.*\\] raised' <worker log>"),),
                )
            )
    wait = window.queue_wait
    if wait.count and wait.p95 is not None and wait.p95 > wait_target_seconds:
        found.append(
            Recommendation(
                WARNING,
                "throughput",
                f"Aspects tasks wait {wait.p95:.3g} s in the queue (p95)",
                (
                    Input("queue wait p95", wait.p95, f"measured: last {window_minutes} min", "s"),
                    Input("target", wait_target_seconds, "sizing model TARGET_QUEUE_WAIT_SECONDS", "s"),
                ),
                "Workers are busy for longer than the autoscaler's target wait: add workers (see the workers sizing).",
                (_config_command("workers", service),),
            )
        )
    if metrics.dropped:
        found.append(
            Recommendation(
                WARNING,
                "throughput",
                f"{metrics.dropped:,} metric events were dropped: the rates above undercount",
                (Input("dropped", metrics.dropped, "measured: aspects_metrics_dropped_total"),),
                "The metrics buffer was full or the store could not be written while tasks ran.",
                (Change("setting", "ASPECTS_ROUTING['METRICS_REDIS_URL']", "a Redis every LMS and worker can reach"),),
            )
        )
    return found


# ---------------------------------------------------------------- event bus


def event_bus_findings(bus) -> list[Recommendation]:
    """A missing xAPI consumer group, backlog without consumers, skip-on-restart risks."""
    from aspects_routing.metrics.event_bus_lag import RISK_NO_CONSUMER, RISK_TEXT  # pylint: disable=import-outside-toplevel
    from aspects_routing.transport.consumer import consumer_command  # pylint: disable=import-outside-toplevel

    command = Change("command", "consume_events", " ".join(
        f"'{part}'" if part.startswith("{") else part for part in consumer_command(manage=("./manage.py", "lms"))
    ))
    found = []
    if bus.group_lag is None and bus.lag.length:
        found.append(
            Recommendation(
                CRITICAL,
                "event_bus",
                f"No consumer group {bus.consumer_group!r} on {bus.lag.stream}: nothing turns events into xAPI",
                (Input("stream length", bus.lag.length, "measured: XINFO STREAM", "events"),),
                "Tracking events are written to the bus, but no consume_events process has ever read them.",
                (command,),
            )
        )
    for group in bus.lag.groups:
        for consumer in group.stalled_consumers:
            found.append(
                Recommendation(
                    WARNING,
                    "event_bus",
                    f"Consumer {consumer.name!r} of group {group.name!r} holds {consumer.stalled} entr"
                    f"{'y' if consumer.stalled == 1 else 'ies'} it never acknowledged",
                    (
                        Input("stalled entries", consumer.stalled, "measured: XPENDING IDLE", "events"),
                        Input("oldest held", (consumer.oldest_pending_ms or 0) // 1000, "measured: XPENDING", "s"),
                        Input("claim threshold", group.stall_threshold_ms, "claim_msgs_older_than", "ms"),
                    ),
                    f"{consumer.name!r} is gone (stopped by SIGKILL, evicted, lost with its node) or stuck. "
                    "edx-event-bus-redis hands such entries over only when a consumer *starts* with "
                    "claim_msgs_older_than; until one does, these events do not reach the LRS (resent at worst: "
                    "Ralph deduplicates by statement id).",
                    (
                        Change("command", "restart one consumer (it claims them at start)",
                               "kubectl rollout restart deployment/aspects-event-consumer"),
                        command,
                    ),
                )
            )
        for risk in group.skip_risks:
            found.append(
                Recommendation(
                    CRITICAL if risk == RISK_NO_CONSUMER else WARNING,
                    "event_bus",
                    f"Group {group.name!r}: {risk.replace('_', ' ')}",
                    (
                        Input("lag", group.lag, "measured: XINFO GROUPS", "events"),
                        Input("consumers", len(group.consumers), "measured: XINFO CONSUMERS"),
                        Input("events skipped", group.skipped, "measured: recorded unsafe starts", "events"),
                    ),
                    RISK_TEXT[risk],
                    (command,),
                )
            )
    return found


# ---------------------------------------------------------------- ClickHouse health

#: Parts in one partition at which inserts slow down: ClickHouse's
#: parts_to_delay_insert was 150 and parts_to_throw_insert 300 for years; newer
#: servers allow more, but this many parts already means too many small inserts.
MAX_PARTS_WARNING = 300
#: No xAPI row for this long while the pipeline runs means it is stalled somewhere.
XAPI_LAG_WARNING_SECONDS = 3600.0
#: Free disk below this share leaves no room for merges.
DISK_FREE_CRITICAL = 0.10


def clickhouse_findings(ch) -> list[Recommendation]:
    """Server health: lag, parts, delayed inserts, distributed queue, replication, disks."""
    found = []
    where = f"measured: {ch.dsn}"

    def add(severity, title, name, value, reasoning, change, unit=""):
        found.append(Recommendation(severity, "clickhouse", title, (Input(name, value, where, unit),), reasoning, (change,)))

    if ch.lag.ok and ch.lag.value.lag_seconds is not None and ch.lag.value.lag_seconds > XAPI_LAG_WARNING_SECONDS:
        add(WARNING, f"The newest xAPI event is {ch.lag.value.lag_seconds / 60:.0f} min old", "xAPI lag",
            ch.lag.value.lag_seconds, "Events are not reaching ClickHouse: check Ralph and the Aspects workers.",
            Change("command", "ralph", "kubectl logs deployment/ralph --since=1h"), "s")
    if ch.lag.ok and getattr(ch.lag.value, "future_rows", 0):
        lag = ch.lag.value
        add(WARNING, f"{lag.future_rows:,} xAPI row(s) are dated in the future, up to {lag.skew_seconds:,.0f} s ahead "
            "(clock skew)", "future-dated rows", lag.future_rows,
            "A clock is wrong (the LMS's, a worker's or ClickHouse's): these rows are left out of the xAPI lag, "
            "and dashboards place them at the wrong time.",
            Change("command", "hosts", "timedatectl status  # on the LMS, worker and ClickHouse hosts: NTP synchronized?"),
            "rows")
    if ch.max_parts_per_partition.ok and ch.max_parts_per_partition.value >= MAX_PARTS_WARNING:
        add(WARNING, f"{ch.max_parts_per_partition.value} parts in one partition", "MaxPartCountForPartition",
            ch.max_parts_per_partition.value,
            "Many small inserts create parts faster than merges remove them; ClickHouse then delays or rejects inserts.",
            Change("setting", "EVENT_ROUTING_BACKEND_BATCHING_ENABLED", "True"))
    if ch.delayed_inserts.ok and ch.delayed_inserts.value:
        add(WARNING, f"{ch.delayed_inserts.value} inserts are being delayed", "DelayedInserts", ch.delayed_inserts.value,
            "ClickHouse throttles inserts because a partition has too many parts.",
            Change("setting", "EVENT_ROUTING_BACKEND_BATCHING_ENABLED", "True"))
    if ch.pending_distributed_files.ok and ch.pending_distributed_files.value:
        add(WARNING, f"{ch.pending_distributed_files.value} files wait in Distributed tables' queues",
            "pending distributed files", ch.pending_distributed_files.value,
            "Inserts through Distributed tables have not reached their shards yet.",
            Change("command", "clickhouse-client", "SELECT * FROM system.distribution_queue WHERE data_files > 0"))
    if ch.stuck_replication_tasks.ok and ch.stuck_replication_tasks.value:
        add(CRITICAL, f"{ch.stuck_replication_tasks.value} replication tasks retried more than 100 times",
            "stuck replication tasks", ch.stuck_replication_tasks.value,
            "Replicas are diverging; queries may return different results per replica.",
            Change("command", "clickhouse-client", "SELECT * FROM system.replication_queue WHERE num_tries > 100"))
    if ch.disks.ok:
        for disk in ch.disks.value:
            if disk.free_ratio is not None and disk.free_ratio < DISK_FREE_CRITICAL:
                add(CRITICAL, f"Disk {disk.name} on {disk.host} is {100 * (1 - disk.free_ratio):.0f} % full",
                    "free bytes", disk.free_bytes, "Merges need free space; a full disk stops inserts.",
                    Change("config", "ClickHouseInstallation volume", "grow the data volume (see the ClickHouse sizing)"),
                    "B")
    return found


# ---------------------------------------------------------------- sizing


def _inputs(sizing, *names: str) -> tuple[Input, ...]:
    """The sizing model's inputs called ``names`` (those it recorded), with their sources."""
    found = []
    for name in names:
        try:
            item = sizing.input(name)
        except KeyError:
            continue
        found.append(Input(name, item.value, item.source, item.unit))
    return tuple(found)


def _measured(sizing, name: str) -> bool:
    try:
        return sizing.input(name).source == "measured"
    except KeyError:
        return False


def _config_command(name: str, service: Service | None = None) -> Change:
    """``./manage.py <lms|cms> aspects_scaling_config --services <name>`` for this service."""
    return Change("command", "aspects_scaling_config", _service(service).manage("aspects_scaling_config", "--services", name))


def worker_recommendation(sizing, service: Service | None = None) -> Recommendation:
    """Workers (Celery) or consumers (event bus) from Little's law; a warning when measured and short."""
    w = sizing.workers
    needed = w.consumers if w.transport == "event_bus" else w.workers
    inputs = _inputs(
        sizing, "task_arrival_per_second", "events_per_second", "mean_task_runtime_seconds",
        "worker_concurrency", "aspects_workers",
    )
    current = sizing.input("aspects_workers").value if _measured(sizing, "aspects_workers") else None
    rate_measured = _measured(sizing, "task_arrival_per_second") and _measured(sizing, "mean_task_runtime_seconds")
    short = current is not None and rate_measured and current < needed
    if w.transport == "event_bus":
        what = "consume_events replica" if needed == 1 else "consume_events replicas"
    else:
        what = "worker on the Aspects queue" if needed == 1 else "workers on the Aspects queue"
    title = f"Run {needed} {what}" + (f" ({current} now)" if current is not None else "")
    if w.transport == "event_bus":
        scaler = Change("config", "KEDA ScaledObject (redis-streams)", f"lagCount {w.lag_count}, replicas {w.min_replicas}-{w.max_replicas}")
    else:
        scaler = Change("config", "KEDA ScaledObject (redis)", f"listLength {w.list_length}, replicas {w.min_replicas}-{w.max_replicas}")
    return Recommendation(
        WARNING if short else INFO,
        "workers",
        title,
        inputs,
        w.explanation + ("" if rate_measured else " The load was not fully measured: see the inputs' sources."),
        (Change("replicas", what, str(needed)), scaler, _config_command("workers", service)),
    )


def batching_recommendation(sizing) -> Recommendation | None:
    """Turn on event-routing-backends batching when per-event dispatch is busy and batching is off."""
    advice = sizing.batching
    if not advice.enable:
        return None
    return Recommendation(
        WARNING if _measured(sizing, "task_arrival_per_second") else INFO,
        "batching",
        "Turn on event-routing-backends batching",
        _inputs(sizing, "task_arrival_per_second", "events_per_second", "batching_enabled"),
        advice.reason,
        tuple(Change("setting", name, repr(value)) for name, value in advice.settings.items()),
    )


def ralph_recommendation(sizing, service: Service | None = None) -> Recommendation:
    """Ralph replicas and HPA thresholds."""
    r = sizing.ralph
    return Recommendation(
        INFO,
        "ralph",
        f"Run Ralph with {r.min_replicas}-{r.max_replicas} replicas, autoscaled on CPU at {r.cpu_target_percent} %",
        _inputs(sizing, "events_per_second"),
        r.explanation,
        (
            Change("replicas", "Deployment ralph (HPA)", f"minReplicas {r.min_replicas}, maxReplicas {r.max_replicas}"),
            _config_command("ralph", service),
        ),
    )


def clickhouse_recommendation(sizing, service: Service | None = None) -> Recommendation:
    """ClickHouse profile and volume size from growth x retention x headroom."""
    c = sizing.clickhouse
    return Recommendation(
        INFO,
        "clickhouse",
        f"ClickHouse {c.profile} profile: {c.keeper_nodes} Keeper node(s), {c.shards} shard(s) x {c.replicas} "
        f"replica(s), {c.volume_gi} Gi data volume per node",
        _inputs(sizing, "rows_per_day", "bytes_per_row", "storage_bytes", "retention_days"),
        f"{sizing.profile_reason}. {c.explanation}",
        (
            Change("config", "ClickHouseInstallation", f"{c.shards} shard(s), {c.replicas} replica(s), {c.volume_gi}Gi"),
            _config_command("clickhouse", service),
        ),
    )


def superset_recommendation(sizing, service: Service | None = None) -> Recommendation:
    """Superset autoscaling, async queries and cache warm-up."""
    s = sizing.superset
    slow = _measured(sizing, "superset_query_p95_seconds") and s.async_queries
    changes = [
        Change("replicas", "Deployment superset (HPA)", f"{s.web_min_replicas}-{s.web_max_replicas}"),
        Change("replicas", "Deployment superset-worker (HPA)", f"{s.worker_min_replicas}-{s.worker_max_replicas}"),
    ]
    changes.append(Change("setting", "superset-worker CELERY_WORKER_EXTRA_ARGS",
                          f"--concurrency={s.worker_concurrency} "
                          f"--max-memory-per-child={s.worker_max_memory_per_child_kib}"))
    if s.async_queries:
        changes.append(Change("config", "Superset database 'OpenedX Clickhouse' (superset-extra-assets)",
                              "allow_run_async: true (GLOBAL_ASYNC_QUERIES stays off: guest tokens)"))
    changes.append(_config_command("superset", service))
    return Recommendation(
        WARNING if slow else INFO,
        "superset",
        "Run SQL Lab queries on the Superset workers" if s.async_queries else "Autoscale Superset and warm its cache",
        _inputs(sizing, "superset_query_p95_seconds"),
        s.explanation,
        tuple(changes),
    )


def sizing_recommendations(sizing, service: Service | None = None) -> list[Recommendation]:
    """The sizing model's output as recommendations (none when the model could not run)."""
    if sizing is None:
        return []
    service = _service(service)
    found = [worker_recommendation(sizing, service), batching_recommendation(sizing), ralph_recommendation(sizing, service),
             clickhouse_recommendation(sizing, service), superset_recommendation(sizing, service)]
    return [r for r in found if r is not None]


def recommend(sections, sizing, window_minutes: int = 60, service: Service | None = None) -> tuple[Recommendation, ...]:
    """
    Every recommendation, worst first, from the report's sections and the sizing model's output.

    Commands name ``service`` (default: this process's LMS or CMS).
    """
    from aspects_routing.scaling.sizing import TARGET_QUEUE_WAIT_SECONDS  # pylint: disable=import-outside-toplevel

    def data(name):
        return sections[name].data if sections[name].ok else None

    service = _service(service)
    found = unavailable_findings(sections, service)
    routing = data("routing")
    unconsumed = ()
    if routing is not None:
        found.extend(broker_findings(routing))
        found.extend(routing_findings(routing, service))
        unconsumed = routing.unconsumed_queues
    if data("queues") is not None:
        found.extend(backlog_findings(data("queues"), unconsumed, service))
    if data("throughput") is not None:
        found.extend(throughput_findings(data("throughput"), window_minutes, TARGET_QUEUE_WAIT_SECONDS, service))
    if data("event_bus") is not None:
        found.extend(event_bus_findings(data("event_bus")))
    if data("clickhouse") is not None:
        found.extend(clickhouse_findings(data("clickhouse")))
    if data("services") is not None:
        found.extend(service_findings(data("services")))
    found.extend(sizing_recommendations(sizing, service))
    return _by_severity(found)
