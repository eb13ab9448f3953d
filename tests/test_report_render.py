"""
Unit tests of the report's pure parts: the collector runner's deadline and
error handling, drain times, findings, and the three renderers (JSON schema,
aligned text, markdown).
"""

import json
import math
import threading
from datetime import datetime, timezone

import pytest

from aspects_routing.metrics.api import Counts, Latency, MetricsReport, Rates, TaskStats, WindowStats
from aspects_routing.scaling import recommendations as rec
from aspects_routing.scaling.collectors.base import Skipped, Unavailable, redact_url, url_secrets
from aspects_routing.scaling.collectors.routing import QueueConsumers, RoutingReport, TaskRoute, WorkerInfo
from aspects_routing.scaling.collectors.throughput import BacklogReport, QueueBacklog, drain_seconds
from aspects_routing.scaling.render import as_dict, fmt, render, sparkline
from aspects_routing.scaling.report import SECTIONS, Report, Section, run_collectors
from aspects_routing.scaling.sizing import Measured, size

# ---------------------------------------------------------------- runner


def test_run_collectors_deadline_errors_skips_and_scrubbing():
    release = threading.Event()

    def hangs():
        release.wait(30)  # a source that never answers within the deadline

    def fails():
        raise ConnectionError("cannot reach redis://:hunter22@redis:6379/0")

    def unavailable():
        raise Unavailable("store hunter22 unreachable")

    def skipped():
        raise Skipped("not configured")

    try:
        sections = run_collectors(
            {"a": hangs, "b": fails, "c": unavailable, "d": skipped, "e": lambda: 42},
            timeout=0.5,
            secrets=("hunter22",),
        )
    finally:
        release.set()
    by_name = {s.name: s for s in sections}
    assert [s.name for s in sections] == ["a", "b", "c", "d", "e"]
    assert by_name["a"].status == "unavailable" and "no answer within the 0.5 s" in by_name["a"].reason
    assert by_name["b"].status == "unavailable"
    assert by_name["b"].reason == "ConnectionError: cannot reach redis://:***@redis:6379/0"
    assert by_name["c"].reason == "store *** unreachable"  # an Unavailable reason is shown as is
    assert (by_name["d"].status, by_name["d"].reason) == ("skipped", "not configured")
    assert (by_name["e"].status, by_name["e"].data) == ("ok", 42)


def test_redact_url_and_secrets():
    assert redact_url("redis://user:pw-123@redis:6380/2?password=pw-123") == "redis://redis:6380/2"
    assert redact_url("http://[::1]:8123/xapi") == "http://[::1]:8123/xapi"
    assert set(url_secrets("redis://user:pw-123@redis:6380/2?password=qs-456&db=1")) == {"pw-123", "qs-456"}


# ---------------------------------------------------------------- backlog


@pytest.mark.parametrize(
    "depth, arrival, finish, expected",
    [
        (None, 1.0, 2.0, None),
        (0, 5.0, 0.0, 0.0),
        (10, 1.0, 3.0, 5.0),
        (10, 3.0, 3.0, math.inf),
        (10, 3.0, 1.0, math.inf),
        (10, None, None, None),
    ],
)
def test_drain_seconds(depth, arrival, finish, expected):
    assert drain_seconds(depth, arrival, finish) == expected


def _backlog(*queues):
    return BacklogReport(queues=tuple(queues), trend_minutes=5, rates_source="redis://x", rates_error=None)


def _queue(name, depth, arrival, finish, aspects=True):
    drain = drain_seconds(depth, arrival, finish)
    return QueueBacklog(name, aspects, depth, None, arrival, finish, arrival - finish, drain, not math.isinf(drain))


def test_backlog_findings():
    backlog = _backlog(
        _queue("never", 100, 2.0, 1.0),
        _queue("slow", 1000, 1.0, 2.0),  # 1000 s to drain
        _queue("fast", 10, 1.0, 2.0),  # 10 s
        _queue("unconsumed", 100, 1.0, 0.0),
        _queue("platform", 500, 0.0, 0.0, aspects=False),
    )
    found = rec.backlog_findings(backlog, unconsumed=("unconsumed",))
    assert [f.title for f in found] == [
        "The backlog on 'never' never drains at the measured rates",
        "The backlog on 'slow' takes 1000 s to drain",
    ]
    assert all(f.severity == "warning" for f in found)


# ---------------------------------------------------------------- throughput


def _window(minutes, per_task, wait_p95=None):
    total = Counts(
        published=sum(t.counts.published for t in per_task),
        succeeded=sum(t.counts.succeeded for t in per_task),
        failed=sum(t.counts.failed for t in per_task),
    )
    wait = Latency(count=total.finished, mean=1.0, p50=1.0, p95=wait_p95, p99=wait_p95) if wait_p95 else Latency()
    return WindowStats(minutes, minutes * 60.0, total, Rates(), wait, Latency(), tuple(per_task))


def _task(name, succeeded, failed):
    counts = Counts(published=succeeded + failed, started=succeeded + failed, succeeded=succeeded, failed=failed)
    return TaskStats(name, "q", counts, Rates(), Latency(), Latency())


def test_throughput_findings():
    window = _window(60, [_task("ok", 100, 2), _task("bad", 80, 20), _task("few", 1, 3)], wait_p95=45.0)
    metrics = MetricsReport("redis://x", True, None, 0.0, (window,), (0,) * 60, window.counts, dropped=12)
    titles = [f.title for f in rec.throughput_findings(metrics, 60, wait_target_seconds=30.0)]
    assert titles == [
        "bad fails 20 % of its runs",  # 'few' has too few failures to judge; 'ok' is under 5 %
        "Aspects tasks wait 45 s in the queue (p95)",
        "12 metric events were dropped: the rates above undercount",
    ]


def test_overall_status_and_exit_codes():
    def finding(severity):
        return rec.Recommendation(severity, "x", "t", (), "r", ())

    assert rec.overall_status([]) == "ok"
    assert rec.overall_status([finding("info")]) == "ok"
    assert rec.overall_status([finding("info"), finding("warning")]) == "warning"
    assert rec.overall_status([finding("warning"), finding("critical")]) == "critical"
    assert [rec.exit_code(s) for s in ("ok", "warning", "critical")] == [0, 1, 2]


# ---------------------------------------------------------------- renderers


def _report():
    routing = RoutingReport(
        transport="celery",
        configured_queue="edx.lms.core.aspects",
        configured_queue_source="ASPECTS_ROUTING.QUEUE",
        broker="redis://redis:6379/0",
        tasks=(TaskRoute("eventtracking.tasks.send_event", "edx.lms.core.aspects"),
               TaskRoute("event_routing_backends.tasks.dispatch_event", "edx.lms.core.aspects")),
        unmatched_patterns=(),
        queues=(QueueConsumers("edx.lms.core.aspects", ("eventtracking.tasks.send_event",), ()),),
        workers=(WorkerInfo("w1@host", ("edx.lms.core.default",), 4),),
        workers_error=None,
    )
    sections = {name: Section(name, "skipped", None, "not here", 0.0) for name in SECTIONS}
    sections["routing"] = Section("routing", "ok", routing, None, 0.2)
    sections["queues"] = Section("queues", "ok", _backlog(_queue("edx.lms.core.aspects", 7, 2.0, 0.0)), None, 0.1)
    sections["clickhouse"] = Section("clickhouse", "unavailable", None, "cannot connect | to host", 1.0)
    sizing = size(Measured.nothing())
    advice = rec.recommend(sections, sizing)
    return Report(
        generated_at=datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc),
        window_minutes=60,
        sections=tuple(sections[name] for name in SECTIONS),
        measured=Measured.nothing(),
        sizing=sizing,
        sizing_error=None,
        recommendations=advice,
        status=rec.overall_status(advice),
        elapsed_seconds=1.5,
    )


def test_json_schema():
    document = json.loads(render(_report(), "json"))
    assert list(document) == [
        "schema_version", "status", "generated_at", "window_minutes", "elapsed_seconds",
        "routing", "throughput", "queues", "event_bus", "clickhouse", "services", "sizing", "recommendations",
    ]
    assert document["status"] == "critical"
    assert document["generated_at"] == "2026-11-27T12:00:00+00:00"
    for name in SECTIONS:
        assert set(document[name]) == {"status", "reason", "elapsed_seconds", "data"}
    assert document["routing"]["data"]["queues"][0]["workers"] == []
    backlog = document["queues"]["data"]["queues"][0]
    assert (backlog["drain_seconds"], backlog["drains"]) == (None, False)  # never drains: null seconds, drains false
    assert document["clickhouse"] == {"status": "unavailable", "reason": "cannot connect | to host",
                                      "elapsed_seconds": 1.0, "data": None}
    first = document["recommendations"][0]
    assert set(first) == {"severity", "area", "title", "inputs", "reasoning", "changes"}
    assert first["severity"] == "critical" and first["area"] == "routing"
    assert set(first["inputs"][0]) == {"name", "value", "source", "unit"}
    assert set(first["changes"][0]) == {"kind", "target", "value"}
    assert document["sizing"]["data"]["profile"] in ("small", "large")
    assert as_dict(_report())["recommendations"] == document["recommendations"]


def test_text_tables_are_aligned():
    lines = render(_report(), "text").splitlines()
    header = lines.index(next(line for line in lines if line.strip().startswith("task ") and "queue" in line))
    column = lines[header].index("queue")
    rows = lines[header + 2: header + 4]
    assert all(row[column:].startswith("edx.lms.core.aspects") for row in rows)
    assert all(set(part) == {"-"} for part in lines[header + 1].split())
    assert any("never" in line for line in lines)  # the backlog's drain time
    assert any("NONE (critical)" in line for line in lines)


def test_markdown_tables_escape_cells():
    text = render(_report(), "markdown")
    assert text.startswith("# Aspects scaling report\n")
    assert "| task | queue |\n|---|---|\n" in text
    assert "cannot connect \\| to host" in text  # a pipe in a cell cannot break the table


def test_fmt_and_sparkline():
    assert fmt(None) == "-" and fmt(math.inf) == "never" and fmt(True) == "yes"
    assert fmt(0.012345) == "0.0123" and fmt(12345.6) == "12,346" and fmt(123456) == "123,456"
    assert sparkline(range(8)) == "▁▂▃▄▅▆▇█"
    assert sparkline([0, 0, 0]) == "▁▁▁"
    assert fmt(tuple(range(10))).startswith("▁")

