"""
The embedded demo (``make demo`` runs ``python -m demo``), end to end in a
subprocess, exactly as an operator runs it: its own redis-server, a migrated LMS
database, chDB, a real worker, tracking events that become xAPI statements at the
LRS, the full report and the configs. And the demo failing when the pipeline
loses statements without a failed task.
"""

import json
import re
import subprocess
import sys

import pytest

from aspects_routing.scaling.render import SECTION_TITLES
from aspects_routing.scaling.report import SECTIONS
from tests.conftest import ROOT, subprocess_env

BURST = 600  # demo.run's default


def run_demo(out, *args):
    env = subprocess_env()
    env.pop("REDIS_URL", None)  # the demo starts its own Redis; it must not need one
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return subprocess.run(
        [sys.executable, "-m", "demo", "--dir", str(out), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False,
    )


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = run_demo(out)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    text = result.stdout

    # Every section of the report, each measured (the event bus is not in use with the Celery transport).
    for name in SECTIONS:
        assert SECTION_TITLES[name].upper() in text, name
    assert "SIZING MODEL" in text and "RECOMMENDATIONS" in text
    document = json.loads((out / "report.json").read_text())
    statuses = {name: document[name]["status"] for name in SECTIONS}
    assert statuses == {
        "routing": "ok", "throughput": "ok", "queues": "ok", "event_bus": "skipped", "clickhouse": "ok",
        "services": "ok",
    }, {name: document[name]["reason"] for name in SECTIONS}

    # The real pipeline: each tracking event was one send_event task, which event-routing-backends
    # turned into one statement and one dispatch task; every statement reached the LRS.
    hour = next(w for w in document["throughput"]["data"]["windows"] if w["minutes"] == 60)
    assert hour["counts"]["published"] == hour["counts"]["succeeded"] == 2 * BURST
    assert hour["counts"]["failed"] == 0
    tasks = {t["task"]: t["counts"]["succeeded"] for t in hour["per_task"]}
    assert tasks["eventtracking.tasks.send_event"] == BURST
    dispatched = sum(n for task, n in tasks.items() if task.startswith("event_routing_backends.tasks.dispatch_event"))
    assert dispatched == BURST, tasks
    assert f"LRS received {BURST} xAPI statements for {BURST} tracking events; {BURST} written" in text
    [queue] = [q for q in document["routing"]["data"]["queues"] if q["queue"] == "edx.lms.core.aspects"]
    assert len(queue["workers"]) == 1
    # A month of seeded events plus the statements the LRS received.
    storage = document["clickhouse"]["data"]["storage"]["value"]
    assert storage["rows"] == 30 * 20_000 + BURST
    assert document["services"]["data"]["services"][0]["reachable"] is True

    # No error path: not one traceback in the worker's or the LMS's log.
    worker_log = (out / "worker.log").read_text()
    assert "Traceback" not in worker_log and "Traceback" not in (out / "lms.log").read_text()
    assert "Task eventtracking.tasks.send_event[" in worker_log

    # Files next to the report; where they are, how big, and how to remove them is printed.
    for name in ("report.txt", "report.json", "report.md", "worker.log", "lms.log", "lms.sqlite3"):
        assert (out / name).is_file(), name
    assert (out / "chdb").is_dir()
    configs = sorted(p.relative_to(out / "configs").as_posix() for p in (out / "configs").rglob("*") if p.is_file())
    assert "k8s/clickhouse/installation.yaml" in configs, configs
    assert f"The demo left its data in {out}" in text
    assert re.search(rf"Celery worker log +{re.escape(str(out / 'worker.log'))} \(\d+(\.\d)? (B|KB|MB)\)", text)
    assert f"in all; remove it with: rm -rf {out}" in text
    assert "Unable to load model" in text  # explained once
    assert (out / "report.txt").read_text() in text


@pytest.mark.slow
def test_demo_fails_on_statements_lost_inside_tasks(tmp_path):
    """Events of a course the LMS does not know: every task succeeds, the LRS count shows the loss."""
    out = tmp_path / "demo"
    result = run_demo(out, "--burst", "40", "--unknown-course-events", "5", "--days", "1", "--events-per-day", "100")
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-4000:]
    text = result.stdout
    assert "LRS received 40 xAPI statements for 45 tracking events" in text
    assert "DEMO FAILED: 5 of 45 tracking events never reached the LRS although 0 task(s) failed" in text
    assert re.search(r"DEMO FAILED: \d+ traceback\(s\) in .*worker\.log", text)
    document = json.loads((out / "report.json").read_text())
    hour = next(w for w in document["throughput"]["data"]["windows"] if w["minutes"] == 60)
    assert hour["counts"]["failed"] == 0  # what the task metrics cannot see
