"""
The scaling report's routing section against a real Redis broker and real
Celery workers: who consumes the Aspects queue, and the exit status when
nobody does.
"""

import io
import json

import pytest
from django.core.management import CommandError, call_command

from aspects_routing.conf import ASPECTS_TASKS
from aspects_routing.scaling.render import render
from aspects_routing.scaling.report import ReportOptions, build_report, measured_from_sections

ASPECTS_QUEUE = "edx.lms.core.aspects"  # tests.settings.edx_order
ASPECTS_TASK_NAMES = set(ASPECTS_TASKS)


def run_report(*flags):
    """Run the command; return (stdout, exit status)."""
    out = io.StringIO()
    try:
        call_command("aspects_scaling_report", "--no-clickhouse", "--timeout", "10", *flags, stdout=out)
        return out.getvalue(), 0
    except CommandError as exc:
        if "--fail-on" not in str(exc):
            raise
        return out.getvalue(), exc.returncode


def routing_recs(document):
    return [r for r in document["recommendations"] if r["area"] == "routing"]


@pytest.mark.slow
def test_no_worker_at_all_is_critical_and_exits_2(redis_client):
    text, status = run_report("--format", "json", "--fail-on", "critical")
    document = json.loads(text)
    assert status == 2
    assert document["status"] == "critical"
    routing = document["routing"]["data"]
    assert {t["task"] for t in routing["tasks"]} == ASPECTS_TASK_NAMES
    assert {t["queue"] for t in routing["tasks"]} == {ASPECTS_QUEUE}
    assert routing["workers"] == []
    [aspects] = [q for q in routing["queues"] if q["queue"] == ASPECTS_QUEUE]
    assert aspects["workers"] == []
    [critical] = routing_recs(document)
    assert critical["severity"] == "critical"
    assert ASPECTS_QUEUE in critical["title"]
    assert any(c["value"].endswith(f"-Q {ASPECTS_QUEUE}") for c in critical["changes"])


@pytest.mark.slow
def test_worker_on_other_queues_only_is_critical(redis_client, start_worker):
    # A worker that consumes only the platform's queues: the Aspects queue has no consumer.
    start_worker("-Q", "edx.lms.core.default,edx.lms.core.high", "--concurrency=1", "--pool=solo", "-n", "platform@%h")
    text, status = run_report("--format", "text", "--fail-on", "critical")
    assert status == 2
    assert "platform@" in text
    assert "NONE (critical)" in text
    # Warning is a lower bar than critical: the same report fails it with the critical code too.
    _text, status = run_report("--fail-on", "warning")
    assert status == 2


@pytest.mark.slow
def test_worker_on_aspects_queue_clears_the_finding_and_gives_concurrency(redis_client, start_worker):
    start_worker("-Q", ASPECTS_QUEUE, "--concurrency=3", "--pool=prefork", "-n", "aspects@%h")
    report = build_report(ReportOptions(timeout=10, clickhouse=False))
    routing = report.data("routing")
    [aspects] = [q for q in routing.queues if q.queue == ASPECTS_QUEUE]
    assert len(aspects.workers) == 1 and aspects.workers[0].startswith("aspects@")
    assert routing.unconsumed_queues == ()
    assert routing.concurrency_for(ASPECTS_QUEUE) == 3
    assert not [r for r in report.recommendations if r.area == "routing"]
    assert report.status != "critical"

    measured = measured_from_sections({s.name: s for s in report.sections}, _config())
    assert measured.aspects_workers == 1
    assert measured.worker_concurrency == 3
    # The sizing model ran on it and says so.
    assert report.sizing.input("worker_concurrency").value == 3
    assert report.sizing.input("worker_concurrency").source == "measured"


def _config():
    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

    return get_config()


def test_without_fail_on_the_exit_status_is_0(redis_client):
    text, status = run_report("--format", "markdown")
    assert status == 0
    assert text.startswith("# Aspects scaling report")
    assert "**status**: CRITICAL" in text


@pytest.mark.parametrize(
    "flags, flag",
    [
        (["--window", "0"], "--window"),
        (["--window", "100000"], "--window"),
        (["--timeout", "-1"], "--timeout"),
        (["--clickhouse-dsn", "mysql://x@y/z"], "--clickhouse-dsn"),
        # No host can be found: the password is not echoed, the flag and the fix are.
        (["--clickhouse-dsn", "http://admin:Hunter#2secret"], "--clickhouse-dsn: is not a usable URL"),
        (["--clickhouse-dsn", "http://admin:pw@ch:99999/xapi"], "--clickhouse-dsn: is not a usable URL"),
    ],
)
def test_bad_flags_are_command_errors_naming_the_flag(flags, flag):
    with pytest.raises(CommandError) as caught:
        call_command("aspects_scaling_report", *flags, stdout=io.StringIO())
    assert flag in str(caught.value)
    assert "Hunter" not in str(caught.value) and "secret" not in str(caught.value)


def test_dsn_and_no_clickhouse_together_is_an_error():
    with pytest.raises(CommandError, match="--clickhouse-dsn and --no-clickhouse"):
        call_command(
            "aspects_scaling_report", "--no-clickhouse", "--clickhouse-dsn", "chdb:///tmp/x", stdout=io.StringIO()
        )


def test_unknown_format_is_rejected():
    with pytest.raises(CommandError, match="--format"):
        call_command("aspects_scaling_report", "--format", "yaml", stdout=io.StringIO())


def test_a_router_that_raises_makes_the_routing_section_unavailable(redis_client, celery_app):
    """The platform's router is operator code: if it raises, the report still renders."""
    def broken_router(name, args, kwargs, options, task=None, **kw):
        raise RuntimeError("router bug")

    def use_routes(routes):
        celery_app.conf.task_routes = routes
        celery_app.amqp.flush_routes()
        # app.amqp.router is cached with the route table it was built from: rebuild it too.
        celery_app.amqp.router = celery_app.amqp.Router()

    routes = celery_app.conf.task_routes
    use_routes((broken_router,))
    try:
        report = build_report(ReportOptions(timeout=10, clickhouse=False))
    finally:
        use_routes(routes)
    routing = report.section("routing")
    assert routing.status == "unavailable" and routing.reason == "RuntimeError: router bug"
    assert report.section("queues").ok  # depths of the configured queues still come through
    assert "unavailable: RuntimeError: router bug" in render(report, "text")
