"""
The embedded demo (``make demo`` runs ``python -m demo``), end to end in a
subprocess, exactly as an operator runs it: its own redis-server, chDB, a real
worker, the full report and the configs.
"""

import json
import subprocess
import sys

import pytest

from aspects_routing.scaling.render import SECTION_TITLES
from aspects_routing.scaling.report import SECTIONS
from tests.conftest import ROOT, subprocess_env


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    env = subprocess_env()
    env.pop("REDIS_URL", None)  # the demo starts its own Redis; it must not need one
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "demo", "--dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-4000:]
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

    # The burst went through the real worker, and the report counted all of it.
    burst, statements = 1500, 300  # demo.run defaults
    hour = next(w for w in document["throughput"]["data"]["windows"] if w["minutes"] == 60)
    assert hour["counts"]["published"] == hour["counts"]["succeeded"] == burst + statements
    tasks = {t["task"]: t["counts"]["succeeded"] for t in hour["per_task"]}
    assert tasks == {"eventtracking.tasks.send_event": burst, "event_routing_backends.tasks.dispatch_event": statements}
    [queue] = [q for q in document["routing"]["data"]["queues"] if q["queue"] == "edx.lms.core.aspects"]
    assert len(queue["workers"]) == 1
    # A month of seeded events plus the statements Ralph's stand-in wrote.
    storage = document["clickhouse"]["data"]["storage"]["value"]
    assert storage["rows"] == 30 * 20_000 + statements
    assert document["services"]["data"]["services"][0]["reachable"] is True

    # Files next to the report, and where they are is printed.
    for name in ("report.txt", "report.json", "report.md", "worker.log", "lms.log"):
        assert (out / name).is_file(), name
    assert (out / "chdb").is_dir()
    configs = sorted(p.relative_to(out / "configs").as_posix() for p in (out / "configs").rglob("*") if p.is_file())
    assert "k8s/workers/deployment.yaml" in configs and "k8s/clickhouse/installation.yaml" in configs
    assert any(c.startswith("k8s/ralph/") for c in configs) and any(c.startswith("k8s/superset/") for c in configs)
    assert f"The demo left its data in {out}" in text
    assert (out / "report.txt").read_text() in text
