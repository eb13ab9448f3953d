"""
Monitoring pack: Prometheus rules, Grafana dashboards and scrape configs for the Aspects pipeline.

``aspects_scaling_config --services monitoring`` writes

* ``monitoring/prometheus/aspects-routing.rules.yml``: recording rules (the rates and
  percentiles the dashboards read) and alerts, for a plain Prometheus
  (``rule_files``); ``k8s/monitoring/prometheusrule.yaml``: the same groups as a
  prometheus-operator ``PrometheusRule``;
* ``monitoring/grafana/*.json``: the pipeline overview and the per-task drill-down
  (datasource as a variable), and ``k8s/monitoring/grafana-dashboards.yaml``: both
  in a ``ConfigMap`` labelled for Grafana's dashboard sidecar;
* ``monitoring/prometheus/scrape-config.yml``: a ``scrape_configs`` entry for ``lms:8000`` that reads
  the bearer token from a file; ``k8s/monitoring/service.yaml`` +
  ``servicemonitor.yaml``: a Service naming the LMS pods' port and a ``ServiceMonitor``
  that reads the token from a Secret. The token is never written into any file.

Conventions (monitoring-mixins): recording rules are named ``level:metric:operations``;
every alert has a ``severity`` label and ``summary``, ``description`` (which names
the fix: the scaling report's recommendation for the same finding), ``runbook_url``
and ``dashboard_url`` annotations. Thresholds come from the sizing model and the
report (:data:`~aspects_routing.scaling.sizing.TARGET_QUEUE_WAIT_SECONDS`,
:data:`~aspects_routing.scaling.recommendations.DRAIN_WARNING_SECONDS`, ...), so an
alert fires on the same condition the report flags.

Every LMS pod serves the same cluster-wide figures (they come from the shared
metrics store and the broker), so the rules de-duplicate with ``max by (...)``
before summing: scraping one pod or all of them gives the same numbers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aspects_routing.metrics import clickhouse as ch_metrics
from aspects_routing.metrics.names import (
    DROPPED,
    FAILED,
    PUBLISHED,
    QUEUE_DEPTH,
    QUEUE_WAIT,
    RETRIED,
    RUNTIME,
    STARTED,
    STORE_UP,
    SUCCEEDED,
)
from aspects_routing.scaling.configgen.common import K8S, GeneratedFile, Target, dump, labels, metadata
from aspects_routing.scaling.recommendations import (
    DRAIN_WARNING_SECONDS,
    FAILURE_MIN_COUNT,
    FAILURE_RATIO_WARNING,
    XAPI_LAG_WARNING_SECONDS,
)
from aspects_routing.scaling.sizing import TARGET_QUEUE_WAIT_SECONDS

SERVICE = "monitoring"
#: Share of started runs that asked to be retried, above which the retry alert fires.
RETRY_RATIO_WARNING = 0.10
#: Where the runbook for each alert lives (one section per alert, anchored by its name).
RUNBOOK_URL = "docs/monitoring.md"
#: The endpoint the plugin mounts in the LMS.
METRICS_PATH = "/aspects-routing/metrics"
#: The LMS container's port in Tutor (``lms`` Service, port 8000, no name).
LMS_PORT = 8000
#: The LMS as Tutor's network names it (docker compose service, Kubernetes Service).
LMS_ADDRESS = f"lms:{LMS_PORT}"
#: Secret holding ``ASPECTS_ROUTING["METRICS_TOKEN"]`` (key ``token``); created by the operator.
TOKEN_SECRET = "aspects-routing-metrics-token"
TOKEN_KEY = "token"
#: Where a plain Prometheus reads the token from (mount or write the same value there).
TOKEN_FILE = "/etc/prometheus/secrets/aspects-routing-metrics-token"
METRICS_SERVICE = "aspects-routing-metrics"
METRICS_PORT_NAME = "http-metrics"
OVERVIEW_UID = "aspects-pipeline"
TASK_UID = "aspects-task"
DASHBOARDS_CONFIGMAP = "aspects-routing-dashboards"
#: Event-bus gauges of :mod:`aspects_routing.metrics.event_bus_lag`: entries pending with consumers
#: that are gone, and whether the bus could be read at this scrape.
EVENT_BUS_STALLED = "aspects_event_bus_stalled_pending"
EVENT_BUS_UP = "aspects_event_bus_up"

_DURATION = re.compile(r"^(\d+)(s|m|h)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}


def duration_seconds(value: str) -> int:
    """Seconds in a Prometheus duration such as ``30s``, ``5m`` or ``1h``."""
    match = _DURATION.match(value)
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 30s, 5m or 1h")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True)
class MonitoringOptions:
    """The thresholds and windows of the rules; defaults from the sizing model and the report."""

    queue_wait_slo_seconds: float = TARGET_QUEUE_WAIT_SECONDS
    xapi_lag_seconds: float = XAPI_LAG_WARNING_SECONDS
    #: Window of every rate and percentile (and of "no task started").
    rate_window: str = "5m"
    #: Window over which a backlog or a bus lag must keep growing.
    trend_window: str = "15m"
    scrape_interval: str = "30s"
    job: str = "aspects-routing"

    def __post_init__(self):
        duration_seconds(self.rate_window)
        duration_seconds(self.trend_window)
        duration_seconds(self.scrape_interval)


# ---------------------------------------------------------------- recording rules


def _name(metric: str) -> str:
    return metric[: -len("_total")] if metric.endswith("_total") else metric


class Names:
    """The recording rules' names for one rate window (``w`` as in ``rate5m``)."""

    def __init__(self, window: str):
        self.w = window

    def task_rate(self, counter: str) -> str:
        return f"task_queue:{_name(counter)}:rate{self.w}"

    def queue_rate(self, counter: str) -> str:
        return f"queue:{_name(counter)}:rate{self.w}"

    @property
    def task_finished(self) -> str:
        return f"task_queue:aspects_tasks_finished:rate{self.w}"

    @property
    def queue_finished(self) -> str:
        return f"queue:aspects_tasks_finished:rate{self.w}"

    @property
    def failure_ratio(self) -> str:
        return f"task_queue:aspects_tasks_failed:ratio_rate{self.w}"

    @property
    def retry_ratio(self) -> str:
        return f"task_queue:aspects_tasks_retried:ratio_rate{self.w}"

    def buckets(self, histogram: str) -> str:
        return f"task_queue:{histogram}_bucket:rate{self.w}"

    def task_quantile(self, histogram: str, q: int) -> str:
        return f"task_queue:{histogram}:p{q}_rate{self.w}"

    def queue_quantile(self, histogram: str, q: int) -> str:
        return f"queue:{histogram}:p{q}_rate{self.w}"

    depth = "queue:aspects_queue_depth:max"

    @property
    def drain(self) -> str:
        return f"queue:aspects_queue_drain_seconds:rate{self.w}"

    bus_lag = "stream_group:aspects_event_bus_lag:max"
    bus_length = "stream:aspects_event_bus_stream_length:max"
    xapi_lag = "table:aspects_xapi_lag_seconds:max"


COUNTERS = (PUBLISHED, STARTED, SUCCEEDED, FAILED, RETRIED)
#: The rate whose series (times 0) stands in for a counter not counted yet.
ZERO_FROM = {STARTED: PUBLISHED, SUCCEEDED: STARTED, FAILED: SUCCEEDED, RETRIED: STARTED}
QUANTILES = (50, 95, 99)


def recording_rules(options: MonitoringOptions) -> list[dict[str, Any]]:
    """The rates, ratios, percentiles and drain times the dashboards and alerts read."""
    n, w = Names(options.rate_window), options.rate_window
    rules: list[dict[str, Any]] = []

    def record(name: str, expr: str):
        rules.append({"record": name, "expr": expr})

    # A counter appears in the store at its first count: a task that never failed has no failed
    # series. Each rate falls back to 0 wherever the step before it has a series, so dashboards
    # show 0 (not "no data") and ratios and sums exist for every task that was published.
    for counter in COUNTERS:
        rate = f"max by (namespace, task, queue) (rate({counter}[{w}]))"
        before = ZERO_FROM.get(counter)
        if before is not None:
            rate += f" or {n.task_rate(before)} * 0"
        record(n.task_rate(counter), rate)
    for counter in COUNTERS:
        record(n.queue_rate(counter), f"sum by (namespace, queue) ({n.task_rate(counter)})")
    record(n.task_finished, f"{n.task_rate(SUCCEEDED)} + {n.task_rate(FAILED)}")
    record(n.queue_finished, f"sum by (namespace, queue) ({n.task_finished})")
    record(n.failure_ratio, f"{n.task_rate(FAILED)} / {n.task_finished}")
    record(n.retry_ratio, f"{n.task_rate(RETRIED)} / {n.task_rate(STARTED)}")
    for histogram in (QUEUE_WAIT, RUNTIME):
        record(n.buckets(histogram), f"max by (namespace, task, queue, le) (rate({histogram}_bucket[{w}]))")
        for q in QUANTILES:
            record(n.task_quantile(histogram, q), f"histogram_quantile(0.{q}, {n.buckets(histogram)})")
            record(
                n.queue_quantile(histogram, q),
                f"histogram_quantile(0.{q}, sum by (namespace, queue, le) ({n.buckets(histogram)}))",
            )
    record(n.depth, f"max by (namespace, queue) ({QUEUE_DEPTH})")
    record(n.drain, f"{n.depth} / on (namespace, queue) {n.queue_finished}")
    record(n.bus_lag, "max by (namespace, stream, group) (aspects_event_bus_lag)")
    record(n.bus_length, "max by (namespace, stream) (aspects_event_bus_stream_length)")
    record(n.xapi_lag, f"max by (namespace, database, table) ({ch_metrics.XAPI_LAG})")
    return rules


# ---------------------------------------------------------------- alerts


def _fix_workers() -> str:
    return "./manage.py lms aspects_scaling_config --services workers"


def _alert(name, expr, for_, severity, summary, description, dashboard=OVERVIEW_UID) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{RUNBOOK_URL}#{name.lower()}",
        "dashboard_url": f"/d/{dashboard}",
    }
    return rule


def alerting_rules(options: MonitoringOptions, stalled_metric: str, bus_up_metric: str) -> list[dict[str, Any]]:
    """One alert per finding of the scaling report that can be seen in the metrics."""
    n, w, trend = Names(options.rate_window), options.rate_window, options.trend_window
    min_failures_per_second = FAILURE_MIN_COUNT / duration_seconds(w)
    slo, lag = options.queue_wait_slo_seconds, options.xapi_lag_seconds
    return [
        _alert(
            "AspectsQueueWaitHigh",
            f"{n.queue_quantile(QUEUE_WAIT, 95)} > {slo:g}",
            "15m", "warning",
            f"Aspects tasks on {{{{ $labels.queue }}}} wait more than {slo:g} s in the queue (p95).",
            f"The 95th percentile of the queue wait on {{{{ $labels.queue }}}} is above the {slo:g} s the workers "
            "are sized for (TARGET_QUEUE_WAIT_SECONDS): xAPI data reaches ClickHouse late. Fix: add workers on the "
            f"queue; `{_fix_workers()}` sizes them and their KEDA autoscaler from the measured load.",
        ),
        _alert(
            "AspectsQueueBacklogGrowing",
            f"{n.drain} > {DRAIN_WARNING_SECONDS:g} and on (namespace, queue) deriv({n.depth}[{trend}]) > 0",
            trend, "warning",
            "The backlog on {{ $labels.queue }} keeps growing and takes more than "
            f"{DRAIN_WARNING_SECONDS:g} s to drain.",
            "Tasks arrive on {{ $labels.queue }} faster than the workers finish them, so the queue only grows "
            f"(drain time above {DRAIN_WARNING_SECONDS:g} s for {trend}). Fix: add workers on the queue; "
            f"`{_fix_workers()}` sizes them from the measured arrival rate and run time.",
        ),
        _alert(
            "AspectsQueueNoConsumer",
            f"{n.depth} > 0 unless on (namespace, queue) {n.queue_rate(STARTED)} > 0",
            "10m", "critical",
            "Nothing consumes the Aspects queue {{ $labels.queue }}: tasks pile up unseen.",
            "{{ $labels.queue }} holds tasks and no worker started one in the last " + w + ". Fix: start a worker "
            "on the queue (`celery --app=lms.celery worker --loglevel=info -Q {{ $labels.queue }}`), or set "
            "ASPECTS_ROUTING['QUEUE'] to a queue the workers consume.",
        ),
        _alert(
            "AspectsTaskFailureRateHigh",
            f"{n.failure_ratio} > {FAILURE_RATIO_WARNING:g} and {n.task_rate(FAILED)} > {min_failures_per_second:g}",
            "15m", "warning",
            "{{ $labels.task }} fails more than " + f"{FAILURE_RATIO_WARNING:.0%} of its runs.",
            "Failed Aspects tasks are events missing from ClickHouse; more workers do not fix them. Fix: read "
            "the error in the worker logs (`grep -i 'Task {{ $labels.task }}\\[.*\\] raised' <worker log>`) and "
            "repair its cause (Ralph or ClickHouse unreachable, bad credentials, a failing transform).",
            TASK_UID,
        ),
        _alert(
            "AspectsTaskRetryRateHigh",
            f"{n.retry_ratio} > {RETRY_RATIO_WARNING:g}",
            "15m", "warning",
            "{{ $labels.task }} asks to be retried on more than " + f"{RETRY_RATIO_WARNING:.0%} of its runs.",
            "Retries delay events and add load. Fix: see why the task retries in the worker logs (a tracking "
            "backend missing from EVENT_TRACKING_BACKENDS, Ralph or ClickHouse answering errors) and repair it.",
            TASK_UID,
        ),
        _alert(
            "AspectsEventBusLagGrowing",
            f"{n.bus_lag} > 0 and deriv({n.bus_lag}[{trend}]) > 0",
            trend, "warning",
            "Event-bus group {{ $labels.group }} falls behind on {{ $labels.stream }}.",
            "Entries not yet delivered to {{ $labels.group }} keep growing: the consume_events replicas cannot keep "
            f"up. Fix: add consume_events replicas; `{_fix_workers()}` sizes them and their KEDA scaler "
            "(redis-streams lagCount) from the measured load.",
        ),
        _alert(
            "AspectsEventBusEntriesStalled",
            f"max by (namespace, stream, group) ({stalled_metric}) > 0",
            "10m", "warning",
            "Entries of {{ $labels.group }} on {{ $labels.stream }} are stuck with consumers that are gone.",
            "Delivered but unacknowledged entries sit with consumers that no longer run; nothing processes them "
            "until another consumer claims them, which edx-event-bus-redis does only when a consumer starts "
            "with claim_msgs_older_than (the generated consumer Deployment has it). Fix: restart one consumer "
            "(kubectl rollout restart deployment/aspects-event-consumer); the report names the consumer.",
        ),
        _alert(
            "AspectsEventBusDown",
            f"{bus_up_metric} == 0",
            "5m", "critical",
            "The event bus cannot be read from {{ $labels.instance }}.",
            "The metrics endpoint cannot read the event-bus stream, so its lag is unknown (and the producers "
            "probably cannot write to it). Fix: make EVENT_BUS_REDIS_CONNECTION_URL point at a reachable Redis.",
        ),
        _alert(
            "AspectsMetricsStoreDown",
            f"{STORE_UP} == 0",
            "5m", "critical",
            "The aspects-routing metrics store cannot be read from {{ $labels.instance }}.",
            "Task counters and percentiles are missing while the store is unreachable. Fix: set "
            "ASPECTS_ROUTING['METRICS_REDIS_URL'] to a Redis every LMS and worker can reach.",
        ),
        _alert(
            "AspectsClickHouseDown",
            f"{ch_metrics.UP} == 0",
            "10m", "warning",
            "ClickHouse cannot be measured from {{ $labels.instance }}.",
            "The xAPI lag and growth are unknown. Fix: check EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG (url, "
            "credentials) and that ClickHouse answers; `./manage.py lms aspects_scaling_report` shows the error.",
        ),
        _alert(
            "AspectsXapiLagHigh",
            f"{n.xapi_lag} > {lag:g}",
            "10m", "warning",
            f"The newest xAPI event in ClickHouse is more than {lag:g} s old.",
            "Events are not reaching {{ $labels.database }}.{{ $labels.table }}: check Ralph "
            "(`kubectl logs deployment/ralph --since=1h`) and the Aspects workers (AspectsQueueNoConsumer, "
            "AspectsTaskFailureRateHigh).",
        ),
        _alert(
            "AspectsMetricsDropped",
            f"max by (namespace) (increase({DROPPED}[{trend}])) > 0",
            "", "warning",
            "aspects-routing dropped metric events: the rates undercount.",
            "The metrics buffer was full or the store could not be written while tasks ran. Fix: set "
            "ASPECTS_ROUTING['METRICS_REDIS_URL'] to a Redis every LMS and worker can reach.",
        ),
    ]


def rule_groups(options: MonitoringOptions, stalled_metric: str, bus_up_metric: str) -> list[dict[str, Any]]:
    """The ``groups`` of the rules file and of the PrometheusRule."""
    return [
        {"name": "aspects-routing.rules", "rules": recording_rules(options)},
        {"name": "aspects-routing.alerts", "rules": alerting_rules(options, stalled_metric, bus_up_metric)},
    ]


# ---------------------------------------------------------------- dashboards

_DS = {"type": "prometheus", "uid": "${datasource}"}


def _datasource_variable() -> dict[str, Any]:
    return {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
            "current": {}, "hide": 0, "refresh": 1, "options": [], "regex": ""}


def _panel(pid: int, title: str, exprs: list[tuple[str, str]], unit: str, grid: tuple[int, int, int, int],
           kind: str = "timeseries", description: str = "") -> dict[str, Any]:
    x, y, width, height = grid
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": _DS,
        "gridPos": {"x": x, "y": y, "w": width, "h": height},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}} if kind == "timeseries" else {},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": _DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def _dashboard(uid: str, title: str, panels: list[dict[str, Any]], variables: list[dict[str, Any]]):
    return {
        "uid": uid,
        "title": title,
        "tags": ["aspects", "openedx"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [_datasource_variable(), *variables]},
        "links": [{"title": "Aspects dashboards", "type": "dashboards", "tags": ["aspects"], "asDropdown": False}],
        "panels": panels,
    }


def overview_dashboard(options: MonitoringOptions, stalled_metric: str) -> dict[str, Any]:
    """Pipeline overview: throughput, waits, backlog, event bus, ClickHouse."""
    n = Names(options.rate_window)
    panels = [
        _panel(1, "Published per task", [(f"sum by (task) ({n.task_rate(PUBLISHED)})", "{{task}}")],
               "reqps", (0, 0, 12, 8)),
        _panel(2, "Finished per task", [(f"sum by (task) ({n.task_finished})", "{{task}}")], "reqps", (12, 0, 12, 8)),
        _panel(3, "Failed and retried per task", [
            (f"sum by (task) ({n.task_rate(FAILED)})", "failed {{task}}"),
            (f"sum by (task) ({n.task_rate(RETRIED)})", "retried {{task}}"),
        ], "reqps", (0, 8, 12, 8)),
        _panel(4, "Queue wait (p50 / p95 / p99)", [
            (n.queue_quantile(QUEUE_WAIT, q), f"p{q} {{{{queue}}}}") for q in QUANTILES
        ], "s", (12, 8, 12, 8), description=f"SLO: p95 below {options.queue_wait_slo_seconds:g} s."),
        _panel(5, "Run time (p50 / p95 / p99)", [
            (n.queue_quantile(RUNTIME, q), f"p{q} {{{{queue}}}}") for q in QUANTILES
        ], "s", (0, 16, 12, 8)),
        _panel(6, "Queue depth", [(n.depth, "{{queue}}")], "short", (12, 16, 6, 8)),
        _panel(7, "Drain time", [(n.drain, "{{queue}}")], "s", (18, 16, 6, 8),
               description="Depth divided by the finish rate; +Inf: nothing finishes."),
        _panel(8, "Event-bus lag", [
            (n.bus_lag, "lag {{group}}"),
            (f"max by (stream, group) ({stalled_metric})", "stalled {{group}}"),
            (n.bus_length, "length {{stream}}"),
        ], "short", (0, 24, 12, 8)),
        _panel(9, "xAPI lag in ClickHouse", [(n.xapi_lag, "{{database}}.{{table}}")], "s", (12, 24, 12, 8),
               description=f"Alert above {options.xapi_lag_seconds:g} s."),
        _panel(10, "xAPI table size", [
            (f"max by (database, table) ({ch_metrics.XAPI_BYTES})", "on disk {{database}}.{{table}}"),
        ], "bytes", (0, 32, 12, 8)),
        _panel(11, "xAPI growth per day", [
            (f"max by (database, table) ({ch_metrics.XAPI_BYTES_PER_DAY})", "bytes/day {{database}}.{{table}}"),
            (f"max by (database, table) ({ch_metrics.XAPI_ROWS_PER_DAY})", "rows/day {{database}}.{{table}}"),
        ], "short", (12, 32, 12, 8)),
        _panel(12, "Sources up", [
            (f"min({STORE_UP})", "metrics store"),
            (f"min({ch_metrics.UP})", "ClickHouse"),
            (f"min({EVENT_BUS_UP})", "event bus"),
        ], "short", (0, 40, 12, 6), kind="stat"),
        _panel(13, "Metric events dropped", [(f"max(increase({DROPPED}[{options.trend_window}])) or vector(0)",
                                              "dropped")],
               "short", (12, 40, 12, 6), kind="stat"),
    ]
    return _dashboard(OVERVIEW_UID, "Aspects pipeline", panels, [])


def task_dashboard(options: MonitoringOptions) -> dict[str, Any]:
    """One task: its rates, failure and retry ratios, queue wait and run time percentiles."""
    n = Names(options.rate_window)
    task_var = {
        "name": "task", "label": "Task", "type": "query", "datasource": _DS,
        "query": {"query": f"label_values({PUBLISHED}, task)", "refId": "task"},
        "definition": f"label_values({PUBLISHED}, task)", "refresh": 2, "includeAll": False, "multi": False,
        "current": {}, "options": [], "sort": 1, "hide": 0,
    }
    sel = '{task="$task"}'
    panels = [
        _panel(1, "Rates", [
            (f"sum by (task) ({n.task_rate(counter)}{sel})", _name(counter).replace("aspects_tasks_", ""))
            for counter in COUNTERS
        ], "reqps", (0, 0, 24, 8)),
        _panel(2, "Failure and retry ratio", [
            (f"max by (task) ({n.failure_ratio}{sel})", "failed / finished"),
            (f"max by (task) ({n.retry_ratio}{sel})", "retried / started"),
        ], "percentunit", (0, 8, 12, 8)),
        _panel(3, "Queue wait", [
            (f"max by (task) ({n.task_quantile(QUEUE_WAIT, q)}{sel})", f"p{q}") for q in QUANTILES
        ], "s", (12, 8, 12, 8)),
        _panel(4, "Run time", [
            (f"max by (task) ({n.task_quantile(RUNTIME, q)}{sel})", f"p{q}") for q in QUANTILES
        ], "s", (0, 16, 24, 8)),
    ]
    return _dashboard(TASK_UID, "Aspects task", panels, [task_var])


def panel_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every target of a dashboard."""
    return [(p["title"], t["expr"]) for p in dashboard["panels"] for t in p["targets"]]


# ---------------------------------------------------------------- scrape configs


def scrape_config(options: MonitoringOptions, address: str = LMS_ADDRESS) -> dict[str, Any]:
    """
    A ``scrape_configs`` entry for one LMS address, the token read from a file.

    One address is enough: every LMS pod serves the whole cluster's figures. ``lms:8000`` is the
    LMS's name on Tutor's network (docker compose) and in its Kubernetes namespace, and a host
    name the LMS accepts (ALLOWED_HOSTS).
    """
    return {
        "job_name": options.job,
        "scrape_interval": options.scrape_interval,
        "metrics_path": METRICS_PATH,
        "authorization": {"type": "Bearer", "credentials_file": TOKEN_FILE},
        "static_configs": [{"targets": [address]}],
    }


def metrics_service(target: Target) -> dict[str, Any]:
    """A Service over the LMS pods with a named port (Tutor's ``lms`` Service has neither labels nor port name)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(METRICS_SERVICE, target),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "selector": {"app.kubernetes.io/name": "lms"},
            "ports": [{"name": METRICS_PORT_NAME, "port": LMS_PORT, "targetPort": LMS_PORT, "protocol": "TCP"}],
        },
    }


def service_monitor(options: MonitoringOptions, target: Target) -> dict[str, Any]:
    """A prometheus-operator ``ServiceMonitor`` that sends the token from Secret :data:`TOKEN_SECRET`."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(METRICS_SERVICE, target),
        "spec": {
            "jobLabel": "app.kubernetes.io/name",
            "selector": {"matchLabels": labels(METRICS_SERVICE)},
            "namespaceSelector": {"matchNames": [target.namespace]},
            "endpoints": [
                {
                    "port": METRICS_PORT_NAME,
                    "path": METRICS_PATH,
                    "interval": options.scrape_interval,
                    "scheme": "http",
                    "authorization": {"type": "Bearer", "credentials": {"name": TOKEN_SECRET, "key": TOKEN_KEY}},
                }
            ],
        },
    }


def prometheus_rule(groups: list[dict[str, Any]], target: Target) -> dict[str, Any]:
    """The rule groups as a prometheus-operator ``PrometheusRule``."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata("aspects-routing", target),
        "spec": {"groups": groups},
    }


def dashboards_configmap(dashboards: dict[str, dict[str, Any]], target: Target) -> dict[str, Any]:
    """The dashboards in a ConfigMap that Grafana's sidecar (label ``grafana_dashboard: "1"``) loads."""
    meta = metadata(DASHBOARDS_CONFIGMAP, target)
    meta["labels"] = {**meta["labels"], "grafana_dashboard": "1"}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta,
        "data": {name: json.dumps(board, indent=2, sort_keys=True) + "\n" for name, board in dashboards.items()},
    }


# ---------------------------------------------------------------- files


def generate(target: Target, options: MonitoringOptions | None = None, forms=(K8S,)) -> list[GeneratedFile]:
    """
    The rules, dashboards and scrape config (always), and the Kubernetes objects when ``forms``
    holds ``k8s`` (they fit a kustomize ``k8s/`` tree). Tutor has no monitoring of its own.
    """
    options = options or MonitoringOptions()
    stalled, bus_up = EVENT_BUS_STALLED, EVENT_BUS_UP
    groups = rule_groups(options, stalled, bus_up)
    boards = {
        "aspects-pipeline-overview.json": overview_dashboard(options, stalled),
        "aspects-task-drilldown.json": task_dashboard(options),
    }
    alerts = [r["alert"] for r in groups[1]["rules"]]
    basis = (
        f"Queue-wait SLO {options.queue_wait_slo_seconds:g} s (sizing model TARGET_QUEUE_WAIT_SECONDS unless "
        f"--queue-wait-slo), drain {DRAIN_WARNING_SECONDS:g} s, failures {FAILURE_RATIO_WARNING:.0%}, xAPI lag "
        f"{options.xapi_lag_seconds:g} s: the scaling report's thresholds."
    )
    token = f"token from Secret {TOKEN_SECRET} (key '{TOKEN_KEY}'), never inline"
    files = [
        GeneratedFile("monitoring/prometheus/aspects-routing.rules.yml", dump({"groups": groups}), K8S, SERVICE,
                      f"Prometheus rules: {len(groups[0]['rules'])} recording rules, alerts {', '.join(alerts)}",
                      basis),
        GeneratedFile("monitoring/prometheus/scrape-config.yml", dump({"scrape_configs": [scrape_config(options)]}),
                      K8S, SERVICE, f"scrape_configs entry for {LMS_ADDRESS}, bearer token read from {TOKEN_FILE}",
                      "Any one LMS serves the cluster-wide figures, so one address is enough."),
    ]
    for name, board in boards.items():
        files.append(GeneratedFile(f"monitoring/grafana/{name}", json.dumps(board, indent=2) + "\n", K8S, SERVICE,
                                   f"Grafana dashboard '{board['title']}' (uid {board['uid']}), datasource variable",
                                   "Panels read the recording rules."))
    if K8S not in forms:
        return files
    files += [
        GeneratedFile("k8s/monitoring/prometheusrule.yaml", dump(prometheus_rule(groups, target)), K8S, SERVICE,
                      "PrometheusRule with the same groups as the rules file", basis),
        GeneratedFile("k8s/monitoring/service.yaml", dump(metrics_service(target)), K8S, SERVICE,
                      f"headless Service {METRICS_SERVICE} over the LMS pods, port {METRICS_PORT_NAME}",
                      "Tutor's lms Service has no labels or port name for a ServiceMonitor to select.",
                      complete_k8s_object=True),
        GeneratedFile("k8s/monitoring/servicemonitor.yaml", dump(service_monitor(options, target)), K8S, SERVICE,
                      f"ServiceMonitor scraping {METRICS_PATH} every {options.scrape_interval}, {token}",
                      "Every LMS pod serves the cluster-wide figures; the rules de-duplicate with max."),
        GeneratedFile("k8s/monitoring/grafana-dashboards.yaml", dump(dashboards_configmap(boards, target)), K8S,
                      SERVICE, "ConfigMap with both dashboards for Grafana's sidecar (grafana_dashboard: \"1\")",
                      "Panels read the recording rules.", complete_k8s_object=True),
    ]
    return files


NOTES = (
    f"Create Secret {TOKEN_SECRET} (key '{TOKEN_KEY}') holding ASPECTS_ROUTING['METRICS_TOKEN'] for the "
    f"ServiceMonitor; a plain Prometheus reads the same token from {TOKEN_FILE}.",
    "The ServiceMonitor scrapes the LMS pods by address: the LMS must accept that Host (Django ALLOWED_HOSTS); "
    f"otherwise use the scrape_configs entry, which scrapes {LMS_ADDRESS} "
    "(one LMS serves the whole cluster's figures).",
    "prometheus-operator selects PrometheusRules and ServiceMonitors by label (ruleSelector, "
    "serviceMonitorSelector): add your Prometheus's selector labels (e.g. release: <helm release>) with kustomize.",
)
