"""
The scaling report's Ralph probes against the real Ralph LRS (ralph-malph 5, the
``ralph`` tier: ``make ralph-env``), run as Aspects runs it (``uvicorn ralph.api:app``).

* healthy: Ralph on its ``fs`` backend. Aspects runs Ralph on ClickHouse, but
  there is no ClickHouse server on this machine (chDB is in-process and has no
  HTTP server Ralph could reach), so the healthy case uses the backend whose
  status Ralph can check here; the heartbeat code path is the same.
* backend away: Ralph on its ClickHouse backend (Aspects' settings) pointed at a
  port nothing listens on: ``/__heartbeat__`` answers 500 ``{"database":"away"}``.
* wrong path: ``RALPH_URL`` with the xAPI path ``/xAPI/``: the report probes the
  health path at the server's root and says so.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from port_for import get_port

from aspects_routing.conf import get_config
from aspects_routing.scaling.collectors.services import collect_services
from aspects_routing.scaling.render import render
from aspects_routing.scaling.report import ReportOptions, build_report
from tests.conftest import stop_process_group
from tests.tiers import require


class RalphServer:
    """``uvicorn ralph.api:app`` from the ralph tier, with the backend chosen by ``env``."""

    def __init__(self, venv, tmp_path, **env):
        self.port = get_port(None)
        self.base = f"http://127.0.0.1:{self.port}"
        app_dir = tmp_path / f"ralph-{self.port}"
        app_dir.mkdir()
        self.log_path = tmp_path / f"ralph-{self.port}.log"
        full_env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RALPH_APP_DIR": str(app_dir), **env}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
                [str(venv / "bin/uvicorn"), "ralph.api:app", "--host", "127.0.0.1", "--port", str(self.port)],
                env=full_env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
            )
        self._wait_ready()

    def _wait_ready(self, timeout=180):
        import urllib.request  # pylint: disable=import-outside-toplevel

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ralph exited early:\n{self.log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(self.base + "/__lbheartbeat__", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"ralph not ready after {timeout}s:\n{self.log_path.read_text(errors='replace')}")

    def stop(self):
        stop_process_group(self.proc, timeout=20)


@pytest.fixture
def ralph(tmp_path):
    """Factory: ``ralph(**env)`` starts a real Ralph; all stop after the test."""
    venv = require("ralph", "bin/uvicorn")
    servers = []

    def start(**env):
        server = RalphServer(venv, tmp_path, **env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def fs_backend(tmp_path):
    data = tmp_path / "lrs-data"
    data.mkdir()
    return {"RALPH_RUNSERVER_BACKEND": "fs", "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(data)}


def clickhouse_away():
    """Aspects' Ralph settings (k8s-deployments) with ClickHouse on a port nothing listens on."""
    return {
        "RALPH_RUNSERVER_BACKEND": "clickhouse",
        "RALPH_BACKENDS__LRS__CLICKHOUSE__HOST": "127.0.0.1",
        "RALPH_BACKENDS__LRS__CLICKHOUSE__PORT": str(get_port(None)),
        "RALPH_BACKENDS__LRS__CLICKHOUSE__DATABASE": "xapi",
        "RALPH_BACKENDS__LRS__CLICKHOUSE__EVENT_TABLE_NAME": "xapi_events_all",
    }


def test_real_ralph_healthy(ralph, tmp_path, settings):
    server = ralph(**fs_backend(tmp_path))
    settings.ASPECTS_ROUTING = {"RALPH_URL": server.base}
    # Generous per-request timeouts: this 2-core machine is often loaded (a deadline, not a pace).
    [health] = collect_services(get_config(), timeout=20).services
    assert (health.state, health.status_code, health.body_status) == ("up", 200, (("database", "ok"),))
    assert health.samples == 3 and health.note is None and health.error is None


def test_real_ralph_up_with_its_clickhouse_away(ralph, redis_client, settings):
    server = ralph(**clickhouse_away())
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "RALPH_URL": server.base}
    report = build_report(ReportOptions(timeout=20, clickhouse=False))
    [health] = report.data("services").services
    assert (health.state, health.status_code, health.alive) == ("degraded", 500, True)
    assert health.body_status == (("database", "away"),)
    [finding] = [r for r in report.recommendations if r.area == "ralph" and r.severity == "critical"]
    assert finding.title == "Ralph is up, its database is not (database: away)"
    assert "database: away" in render(report, "text")


def test_real_ralph_down(ralph, tmp_path, settings):
    server = ralph(**fs_backend(tmp_path))
    server.stop()
    settings.ASPECTS_ROUTING = {"RALPH_URL": server.base}
    [health] = collect_services(get_config(), timeout=5).services
    assert (health.state, health.status_code, health.samples) == ("down", None, 0)
    assert "refused" in health.error.lower()


def test_real_ralph_configured_with_its_xapi_path(ralph, tmp_path, settings):
    server = ralph(**fs_backend(tmp_path))
    settings.ASPECTS_ROUTING = {"RALPH_URL": server.base + "/xAPI/"}
    [health] = collect_services(get_config(), timeout=20).services
    import urllib.error  # pylint: disable=import-outside-toplevel
    import urllib.request  # pylint: disable=import-outside-toplevel

    # As given, the URL answers 404 on the real Ralph; the server's health path is what is probed.
    with pytest.raises(urllib.error.HTTPError) as as_given:
        urllib.request.urlopen(server.base + "/xAPI/", timeout=20)  # pylint: disable=consider-using-with
    assert as_given.value.code == 404
    assert (health.state, health.status_code) == ("up", 200)
    assert health.url == server.base + "/__heartbeat__"
    assert "'/xAPI/'" in health.note and "/__heartbeat__" in health.note
