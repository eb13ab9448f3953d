"""
The scaling report's sources, live: throughput and backlog from a real worker
and the shared metrics store, ClickHouse from a seeded chDB, and what happens
when Redis or ClickHouse is down (an "unavailable" section, never a crash).
Also: no secret reaches any output format.
"""

import io
import json
import subprocess
import sys
import time

import pytest
from django.core.management import call_command
from eventtracking import tasks as tracking_tasks
from port_for import get_port

from aspects_routing.metrics import flush
from aspects_routing.scaling.render import render, render_json, render_markdown, render_text
from aspects_routing.scaling.report import ReportOptions, build_report
from tests.conftest import ROOT, subprocess_env, wait_for

ASPECTS_QUEUE = "edx.lms.core.aspects"
SEND_EVENT = "eventtracking.tasks.send_event"


@pytest.mark.slow
def test_throughput_and_backlog_from_a_real_worker(redis_client, start_worker, settings):
    settings.ASPECTS_ROUTING = {"QUEUE": ASPECTS_QUEUE, "METRICS_FLUSH_SECONDS": 1.0}
    count = 40
    for _ in range(count):
        tracking_tasks.send_event.delay("event_transformer", {"name": "problem_check"})
    assert flush()

    # Before a worker runs: the tasks wait, and nothing finishes them.
    before = build_report(ReportOptions(timeout=10, clickhouse=False))
    backlog = before.data("queues").queue(ASPECTS_QUEUE)
    assert backlog.depth == count
    assert backlog.finish_per_second == 0
    assert backlog.drain_seconds == float("inf")
    assert "never" in render(before, "text")

    tokens = json.dumps({"ASPECTS_ROUTING": {"QUEUE": ASPECTS_QUEUE, "METRICS_FLUSH_SECONDS": 1.0}})
    start_worker("-Q", ASPECTS_QUEUE, "--concurrency=1", "--pool=solo", ASPECTS_TEST_ENV_TOKENS=tokens)
    assert wait_for(lambda: redis_client.llen(ASPECTS_QUEUE) == 0)

    def finished_all():
        metrics = build_report(ReportOptions(timeout=10, clickhouse=False)).data("throughput")
        return metrics is not None and metrics.window(60).counts.finished == count

    assert wait_for(finished_all)  # the worker flushes its counters every second

    report = build_report(ReportOptions(timeout=10, clickhouse=False))
    hour = report.data("throughput").window(60)
    assert hour.counts.published == hour.counts.started == hour.counts.succeeded == count
    [task] = hour.per_task
    assert (task.task, task.queue) == (SEND_EVENT, ASPECTS_QUEUE)
    assert task.runtime.count == count and task.queue_wait.count == count
    assert report.data("queues").queue(ASPECTS_QUEUE).depth == 0
    assert report.data("queues").queue(ASPECTS_QUEUE).drain_seconds == 0

    # The sizing model got the measured rates, not its assumptions.
    measured = report.measured
    assert measured.task_arrival_per_second > 0
    assert measured.events_per_second == measured.task_arrival_per_second  # only send_event was published
    assert measured.mean_task_runtime_seconds == pytest.approx(hour.runtime.mean)
    for name in ("task_arrival_per_second", "events_per_second", "mean_task_runtime_seconds", "aspects_workers"):
        assert report.sizing.input(name).source == "measured", name


@pytest.mark.slow
def test_metrics_redis_down_gives_unavailable_sections_not_a_crash(redis_client, settings, spare_redis):
    metrics = spare_redis()
    url = f"redis://127.0.0.1:{metrics.port}/0"
    settings.ASPECTS_ROUTING = {"QUEUE": ASPECTS_QUEUE, "METRICS_REDIS_URL": url}
    assert build_report(ReportOptions(timeout=10, clickhouse=False)).section("throughput").ok
    metrics.stop()

    report = build_report(ReportOptions(timeout=10, clickhouse=False))
    throughput = report.section("throughput")
    assert throughput.status == "unavailable"
    assert "could not be read" in throughput.reason
    # The broker is up: routing and queue depths still come through.
    assert report.section("routing").ok
    assert report.data("queues").queue(ASPECTS_QUEUE).depth == 0
    assert report.data("queues").rates_error
    text = render(report, "text")
    assert "unavailable: metrics store" in text
    assert json.loads(render(report, "json"))["throughput"]["status"] == "unavailable"


@pytest.mark.slow
def test_broker_down_the_command_still_reports_within_its_timeout():
    """A fresh process whose broker does not answer: every Redis-backed section is unavailable."""
    dead = f"redis://127.0.0.1:{get_port(None)}/0"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "django", "aspects_scaling_report", "--format", "json", "--no-clickhouse",
         "--timeout", "8"],
        cwd=ROOT,
        env=subprocess_env(REDIS_URL=dead),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["throughput"]["status"] == "unavailable"
    assert document["queues"]["status"] == "unavailable"
    routing = document["routing"]
    # One connection attempt tells the broker is down: no broadcast that waits for the deadline.
    assert routing["status"] == "ok" and routing["data"]["workers"] is None
    assert routing["data"]["broker_error"] == f"CELERY_BROKER_URL: 127.0.0.1:{dead.split(':')[2].split('/')[0]}: connection refused"
    # No task can be published or consumed: critical, not a warning.
    assert document["status"] == "critical"
    assert any(r["severity"] == "critical" and "broker cannot be reached" in r["title"]
               for r in document["recommendations"])
    assert time.monotonic() - started < 60  # the 8 s report deadline bounds it, with process start-up on top


CHDB_SCRIPT = """
import json, sys
from datetime import datetime, timezone
import django
django.setup()
import clickhouse_connect
from django.core.management import call_command
from aspects_routing.testing.xapi import seed_xapi_events

dsn = sys.argv[1]
end = datetime.now(timezone.utc).replace(microsecond=0)
seed = seed_xapi_events(clickhouse_connect.get_client(dsn=dsn), days=10, events_per_day=3000, end=end)
print(json.dumps({"rows": seed.rows, "latest": seed.latest_event.isoformat(),
                  "per_day": [[str(d), n] for d, n in seed.rows_per_day]}))
call_command("aspects_scaling_report", "--format", "json", "--clickhouse-dsn", dsn, "--timeout", "60")
"""


@pytest.mark.slow
def test_clickhouse_section_from_a_seeded_chdb(tmp_path):
    """chDB runs one engine per process: seed and report in a child process of their own."""
    dsn = f"chdb://{tmp_path / 'chdb'}"
    result = subprocess.run(
        [sys.executable, "-c", CHDB_SCRIPT, dsn], cwd=ROOT, env=subprocess_env(), capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    seed_line, report_text = result.stdout.split("\n", 1)
    seed = json.loads(seed_line)
    document = json.loads(report_text)
    section = document["clickhouse"]
    assert section["status"] == "ok", section["reason"]
    data = section["data"]
    seeded = dict(seed["per_day"])
    measured_days = {d["day"]: d["rows"] for d in data["daily"]["value"] if d["rows"]}
    assert measured_days == seeded
    assert data["storage"]["value"]["rows"] == seed["rows"]
    assert data["lag"]["value"]["latest_event"].startswith(seed["latest"].replace("+00:00", ""))
    assert 0 <= data["lag"]["value"]["lag_seconds"] < 600
    # The sizing model used ClickHouse's numbers.
    inputs = {i["name"]: i for i in document["sizing"]["data"]["inputs"]}
    complete_days = [n for d, n in seed["per_day"][:-1]]  # today is not complete
    assert inputs["rows_per_day"]["source"] == "measured"
    assert inputs["rows_per_day"]["value"] == pytest.approx(sum(complete_days) / len(complete_days))
    assert inputs["storage_bytes"]["value"] == data["storage"]["value"]["bytes_on_disk"]


def test_clickhouse_down_is_an_unavailable_section(redis_client):
    closed = get_port(None)
    report = build_report(ReportOptions(timeout=10, clickhouse_dsn=f"http://127.0.0.1:{closed}/xapi"))
    section = report.section("clickhouse")
    assert section.status == "unavailable"
    assert f"127.0.0.1:{closed}" in section.reason
    assert report.section("routing").ok
    assert any(r.area == "clickhouse" and r.severity == "warning" for r in report.recommendations)
    assert "unavailable: " in render(report, "markdown")


SECRETS = {
    "dsn": "DsnPa55word-Secret",
    "token": "MetricsToken-Secret-0123456789",
    "redis": "RedisPa55word-Secret",
}


@pytest.mark.slow
def test_no_secret_in_any_format(redis_client, settings, spare_redis):
    """Passwords in the ClickHouse DSN, the metrics Redis URL and the metrics token never appear."""
    metrics = spare_redis(password=SECRETS["redis"])
    settings.ASPECTS_ROUTING = {
        "QUEUE": ASPECTS_QUEUE,
        "METRICS_REDIS_URL": f"redis://:{SECRETS['redis']}@127.0.0.1:{metrics.port}/0",
        "METRICS_TOKEN": SECRETS["token"],
        "RALPH_URL": f"http://ralph:{SECRETS['token']}@127.0.0.1:{get_port(None)}/",
    }
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {
        "url": f"http://127.0.0.1:{get_port(None)}", "username": "ch_lms", "password": SECRETS["dsn"],
    }
    dsn = f"clickhouse://ch_lms:{SECRETS['dsn']}@127.0.0.1:{get_port(None)}/xapi?password={SECRETS['dsn']}"
    outputs = {}
    for fmt in ("text", "json", "markdown"):
        for flags in (["--clickhouse-dsn", dsn], []):  # the DSN flag, and Aspects' settings
            out = _command_output("--format", fmt, "--timeout", "10", *flags)
            outputs[(fmt, bool(flags))] = out
    # The metrics store answered with the password (so its section is really there)...
    assert json.loads(outputs[("json", True)])["throughput"]["status"] == "ok"
    # ...and the unreachable services failed with messages that could have echoed credentials.
    assert json.loads(outputs[("json", True)])["clickhouse"]["status"] == "unavailable"
    for key, out in outputs.items():
        for name, secret in SECRETS.items():
            assert secret not in out, (key, name)
    # The sections themselves hold no secret (the renderers do not scrub: nothing is there to scrub).
    report = build_report(ReportOptions(timeout=10, clickhouse_dsn=dsn))
    for raw in (render_text(report), render_json(report), render_markdown(report)):
        for name, secret in SECRETS.items():
            assert secret not in raw, name


@pytest.mark.slow
def test_a_password_in_the_metrics_url_query_never_reaches_the_output(redis_client, settings, spare_redis):
    """redis-py also takes ``?password=``; whatever shows the store's URL, the output does not show it."""
    metrics = spare_redis(password=SECRETS["redis"])
    settings.ASPECTS_ROUTING = {
        "QUEUE": ASPECTS_QUEUE,
        "METRICS_REDIS_URL": f"redis://127.0.0.1:{metrics.port}/0?password={SECRETS['redis']}",
    }
    for fmt in ("text", "json", "markdown"):
        out = _command_output("--format", fmt, "--timeout", "10", "--no-clickhouse")
        assert SECRETS["redis"] not in out, fmt
    document = json.loads(_command_output("--format", "json", "--timeout", "10", "--no-clickhouse"))
    assert document["throughput"]["status"] == "ok"  # the store answered with that password


def _command_output(*flags) -> str:
    out = io.StringIO()
    call_command("aspects_scaling_report", *flags, stdout=out)
    return out.getvalue()
