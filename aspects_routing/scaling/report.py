"""
The scaling report: run every collector concurrently under one deadline, feed
the measurements to the sizing model, and derive recommendations.

Nothing here renders (see :mod:`aspects_routing.scaling.render`) and nothing
here decides sizes (see :mod:`aspects_routing.scaling.sizing`).

A collector that fails or runs past the deadline gives an *unavailable* section
with the reason; one whose source is not in use here gives a *skipped* section.
Either way the other sections still render. Collector threads are daemons, so
a source that hangs cannot keep the command from exiting.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from aspects_routing.conf import RoutingSettings, get_config
from aspects_routing.routing.install import celery_app
from aspects_routing.redaction import configured_secrets, describe_error
from aspects_routing.scaling.collectors.base import Skipped, Unavailable, scrub

#: Section names, in the order they are collected and rendered.
SECTIONS = ("routing", "throughput", "queues", "event_bus", "clickhouse", "services")

OK, UNAVAILABLE, SKIPPED = "ok", "unavailable", "skipped"


@dataclass(frozen=True)
class ReportOptions:
    """What the operator asked for (``aspects_scaling_report`` flags)."""

    window_minutes: int = 60
    timeout: float = 30.0
    clickhouse_dsn: str | None = field(default=None, repr=False)
    clickhouse: bool = True

    @property
    def probe_timeout(self) -> float:
        """
        Timeout of one network round trip (worker broadcast, HTTP probe, Redis call):
        a sixth of the deadline, between 0.5 s (shorter, and busy workers miss the
        broadcast, which would read as "no consumer") and 2 s.
        """
        return max(0.5, min(2.0, self.timeout / 6))


@dataclass(frozen=True)
class Section:
    """One section of the report: its data, or why there is none."""

    name: str
    status: str  # OK, UNAVAILABLE or SKIPPED
    data: Any  # the collector's frozen dataclass, or None
    reason: str | None
    elapsed_seconds: float

    @property
    def ok(self) -> bool:
        """True when the section holds measured data."""
        return self.status == OK


@dataclass(frozen=True)
class Report:
    """Everything the renderers show."""

    generated_at: datetime
    window_minutes: int
    sections: tuple[Section, ...]
    measured: Any  # sizing.Measured, or None when the sizing model is not available
    sizing: Any  # sizing.Sizing, or None
    sizing_error: str | None
    recommendations: tuple  # of recommendations.Recommendation
    status: str  # "ok", "warning" or "critical"
    elapsed_seconds: float
    # Credentials the report may have come across (exception text is scrubbed of them at the source).
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def section(self, name: str) -> Section:
        """The section called ``name``."""
        for section in self.sections:
            if section.name == name:
                return section
        raise KeyError(name)

    def data(self, name: str) -> Any:
        """The data of section ``name`` when it was measured, else None."""
        section = self.section(name)
        return section.data if section.ok else None


def _secrets(config: RoutingSettings, options: ReportOptions, app) -> tuple[str, ...]:  # pylint: disable=unused-argument
    """Every credential the report could come across (not user names), to scrub from exception text."""
    broker = getattr(app.conf, "broker_url", None)
    return configured_secrets([("--clickhouse-dsn", options.clickhouse_dsn), ("broker_url", broker)])


def _run_one(name: str, collect: Callable[[], Any], results: dict, secrets: tuple[str, ...]) -> None:
    start = time.perf_counter()
    try:
        data = collect()
        section = Section(name, OK, data, None, 0.0)
    except Skipped as exc:
        section = Section(name, SKIPPED, None, scrub(str(exc), secrets), 0.0)
    except Unavailable as exc:
        section = Section(name, UNAVAILABLE, None, scrub(str(exc) or "unavailable", secrets), 0.0)
    except Exception as exc:  # pylint: disable=broad-except
        # A library's message may echo a URL: mapped to a reason, never shown raw.
        section = Section(name, UNAVAILABLE, None, describe_error(exc, secrets), 0.0)
    results[name] = Section(
        section.name, section.status, section.data, section.reason, round(time.perf_counter() - start, 3)
    )


def run_collectors(collectors: dict[str, Callable[[], Any]], timeout: float, secrets=()) -> tuple[Section, ...]:
    """
    Run every collector in its own daemon thread; wait at most ``timeout`` seconds in all.

    A collector still running at the deadline gives an unavailable section.
    """
    results: dict[str, Section] = {}
    threads = {}
    for name, collect in collectors.items():
        thread = threading.Thread(
            target=_run_one, args=(name, collect, results, secrets), name=f"aspects-report-{name}", daemon=True
        )
        thread.start()
        threads[name] = thread
    deadline = time.monotonic() + timeout
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    sections = []
    for name in collectors:
        done = results.get(name)
        if done is None:
            done = Section(name, UNAVAILABLE, None, f"no answer within the {timeout:g} s report timeout", timeout)
        sections.append(done)
    return tuple(sections)


def _collectors(options: ReportOptions, config: RoutingSettings, app) -> dict[str, Callable[[], Any]]:
    # pylint: disable=import-outside-toplevel
    from aspects_routing.scaling.collectors import clickhouse_source, event_bus, routing, services, throughput

    # Local work only (registry and router): no I/O before the threads start. A router
    # that raises here is reported by the routing section; the backlog falls back to
    # the configured queues.
    try:
        queues = throughput.backlog_queues(app, config)
        aspects_queues = frozenset(routing.routed_queue(app, n) for n in routing.aspects_task_names(app, config))
    except Exception:  # pylint: disable=broad-except
        queues, aspects_queues = tuple(config.queues), frozenset()
    aspects_queues |= frozenset(config.queues)
    probe = options.probe_timeout
    window = options.window_minutes
    return {
        "routing": lambda: routing.collect_routing(app, config, inspect_timeout=probe),
        "throughput": lambda: throughput.collect_throughput(config, window_minutes=window),
        "queues": lambda: throughput.collect_backlog(config, queues, aspects_queues, timeout=probe),
        "event_bus": lambda: event_bus.collect_event_bus(config, timeout=probe, window_minutes_=window),
        "clickhouse": lambda: clickhouse_source.collect(options, config, timeout=max(1.0, options.timeout - 1.0)),
        "services": lambda: services.collect_services(config, timeout=probe),
    }


def build_report(options: ReportOptions | None = None) -> Report:
    """Measure every source and build the full report. Never raises for a failing source."""
    # pylint: disable=import-outside-toplevel
    from aspects_routing.scaling import recommendations

    options = options or ReportOptions()
    start = time.perf_counter()
    config = get_config()
    app = celery_app()
    generated_at = datetime.now(timezone.utc)
    secrets = _secrets(config, options, app)
    sections = run_collectors(_collectors(options, config, app), options.timeout, secrets)
    by_name = {s.name: s for s in sections}
    measured, sizing, sizing_error = size_from_sections(by_name, config, options.window_minutes)
    advice = recommendations.recommend(by_name, sizing, options.window_minutes)
    return Report(
        generated_at=generated_at,
        window_minutes=options.window_minutes,
        sections=sections,
        measured=measured,
        sizing=sizing,
        sizing_error=scrub(sizing_error, secrets),
        recommendations=advice,
        status=recommendations.overall_status(advice),
        elapsed_seconds=round(time.perf_counter() - start, 3),
        secrets=secrets,
    )


def size_from_sections(sections: dict[str, Section], config: RoutingSettings, window_minutes: int = 60):
    """``(measured, sizing, error)``: the sizing model run on what the sections measured."""
    try:
        from aspects_routing.scaling import sizing  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        return None, None, f"sizing model not available: {exc}"
    measured = measured_from_sections(sections, config, window_minutes)
    try:
        return measured, sizing.size(measured), None
    except Exception as exc:  # pylint: disable=broad-except
        return measured, None, f"{type(exc).__name__}: {exc}"


def _batching_enabled() -> bool | None:
    """event-routing-backends' batching switch, read at call time (None when the setting is absent)."""
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    value = getattr(settings, "EVENT_ROUTING_BACKEND_BATCHING_ENABLED", None)
    return value if isinstance(value, bool) else None


def measured_from_sections(sections: dict[str, Section], config: RoutingSettings, window_minutes: int = 60):
    """Build the sizing model's :class:`Measured` from collected sections (what is missing stays None)."""
    from aspects_routing.scaling.sizing import Measured  # pylint: disable=import-outside-toplevel

    def data(name):
        section = sections.get(name)
        return section.data if section is not None and section.ok else None

    values: dict[str, Any] = {}
    routing = data("routing")
    if routing is not None and routing.workers is not None:
        aspects_queues = {q.queue for q in routing.queues if q.tasks}
        consuming = [w for w in routing.workers if aspects_queues & set(w.queues)]
        values["aspects_workers"] = len(consuming)
        sizes = sorted(w.concurrency for w in consuming if w.concurrency)
        values["worker_concurrency"] = sizes[len(sizes) // 2] if sizes else None
    values.update(_measured_rates(data("throughput"), data("event_bus"), config, window_minutes))
    clickhouse = data("clickhouse")
    if clickhouse is not None:
        values.update(_measured_clickhouse(clickhouse))
    empty = Measured.nothing(transport=config.transport, retention_days=config.retention_days)
    return dataclasses.replace(empty, batching_enabled=_batching_enabled(), **values)


#: The task each tracking event becomes on the Celery transport (event-tracking's AsyncRoutingBackend).
TRACKING_EVENT_TASK = "eventtracking.tasks.send_event"


def _measured_rates(throughput, event_bus, config: RoutingSettings, window_minutes: int) -> dict[str, Any]:
    """
    Peak rates and mean run time from the metrics store, as :class:`Measured` fields.

    Peak = the highest rate over the windows (1, 5, 15, 60 min and ``--window``)
    no longer than ``--window``. A rate with nothing counted in the window is
    left unmeasured (an idle hour says nothing about the load to size for).
    """
    from aspects_routing.scaling.collectors.throughput import peak_window, task_rate  # pylint: disable=import-outside-toplevel

    values: dict[str, Any] = {}
    if throughput is not None:
        peak = peak_window(throughput, window_minutes)
        if peak is not None and peak.counts.published:
            values["task_arrival_per_second"] = peak.rates.published
        runtime = throughput.window(window_minutes).runtime
        if runtime.count:
            values["mean_task_runtime_seconds"] = runtime.mean
        if config.transport == "celery":
            events = task_rate(throughput, window_minutes, TRACKING_EVENT_TASK)
            if events:
                values["events_per_second"] = events
    if event_bus is not None and config.transport == "event_bus":
        events = event_bus.peak_sent_per_second(window_minutes)
        if events:
            values["events_per_second"] = events
    return values


def _measured_clickhouse(clickhouse) -> dict[str, Any]:
    """The ClickHouse section's sizing inputs (its own properties), those it measured."""
    names = ("rows_per_day", "bytes_per_row", "storage_bytes", "superset_query_p95_seconds")
    return {name: getattr(clickhouse, name) for name in names if getattr(clickhouse, name) is not None}


def collect_measured(options: ReportOptions | None = None):
    """
    Measure what the sizing model needs and return its :class:`Measured`.

    The config generator calls :func:`collect_measured_and_failures` (``aspects_scaling_config
    --profile auto``) so that both commands size from the same numbers.
    """
    return collect_measured_and_failures(options)[0]


def collect_measured_and_failures(options: ReportOptions | None = None):
    """
    ``(measured, failures)``: the sizing model's :class:`Measured`, and one ``"<section>: <reason>"``
    per source that could not be measured (its inputs then fall back to assumed values). Every
    collector shares the ``options.timeout`` deadline, as in the report.
    """
    options = options or ReportOptions()
    config = get_config()
    app = celery_app()
    sections = run_collectors(_collectors(options, config, app), options.timeout, _secrets(config, options, app))
    failures = tuple(f"{s.name}: {s.reason}" for s in sections if s.status == UNAVAILABLE)
    return measured_from_sections({s.name: s for s in sections}, config, options.window_minutes), failures
