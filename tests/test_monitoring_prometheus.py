"""
The monitoring pack on a real Prometheus scraping the real endpoint while a real worker drains tasks.

* the test LMS serves ``/aspects-routing/metrics`` from ``runserver`` (a subprocess, on the
  test settings, with the event-bus transport so the bus gauges are exported, and a chDB
  xAPI table seeded in another subprocess so the ClickHouse gauges are too);
* Debian's ``prometheus`` runs in its own temporary directory on a free port, scraping
  every second with the generated scrape entry (the token read from a file) and
  evaluating the generated rules (windows shortened so the test needs no minutes);
* this process publishes Aspects tasks (successes, failures, retries); a real
  ``celery worker`` drains them;
* every dashboard target is queried through Prometheus's HTTP API until it returns data;
* the worker is stopped and more tasks are published: ``AspectsQueueNoConsumer`` and
  ``AspectsQueueBacklogGrowing`` go pending.

Waits poll a condition with a deadline; nothing sleeps for a fixed time.
Set ``ASPECTS_MONITORING_DUMP=<file.json>`` to save the overview's series (``docs/render_monitoring.py``
draws the README's picture from it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import redis
from eventtracking.tasks import send_event
from platform_plugin_aspects.tasks import dump_data_to_clickhouse
from port_for import get_port

from aspects_routing.metrics import flush
from aspects_routing.metrics.names import FAILED, STARTED, SUCCEEDED
from aspects_routing.metrics.store import RedisStore
from aspects_routing.scaling.configgen import monitoring as mon
from tests.conftest import ROOT, stop_process_group, subprocess_env, wait_for
from tests.tiers import require_binary

pytestmark = pytest.mark.slow

QUEUE = "edx.lms.core.aspects"
TOKEN = "prometheus-scrapes-with-this-token"
SEND = "eventtracking.tasks.send_event"
OPTIONS = mon.MonitoringOptions(rate_window="30s", trend_window="1m", scrape_interval="1s")
TRACKING_BACKENDS = {
    "aspects_test": {
        "ENGINE": "eventtracking.backends.async_routing.AsyncRoutingBackend",
        "OPTIONS": {"backend_name": "aspects_test"},
    }
}
SEED = """
import sys
from datetime import datetime, timedelta, timezone
import clickhouse_connect
from aspects_routing.testing.xapi import seed_xapi_events
client = clickhouse_connect.get_client(interface="chdb", path=sys.argv[1])
micros = client.query("SELECT toUnixTimestamp64Micro(now64(6))").result_rows[0][0]
now = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(microseconds=micros)
seed_xapi_events(client, days=4, events_per_day=3000, end=now - timedelta(minutes=5), seed=15)
client.close()
"""


def _tokens(store_url, **routing):
    return {
        "ASPECTS_ROUTING": {"QUEUE": QUEUE, "METRICS_REDIS_URL": store_url, "METRICS_TOKEN": TOKEN, **routing},
        "EVENT_TRACKING_BACKENDS": TRACKING_BACKENDS,
    }


def _store_total(store_url, name):
    figures = RedisStore(store_url, "aspects_routing").totals()
    return sum(v for (n, _labels), v in figures.counters.items() if n == name)


def _get(url, headers=None, timeout=5.0):
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (local test servers)
        return response.status, response.read().decode()


def _answers(url, headers=None) -> bool:
    try:
        return _get(url, headers)[0] == 200
    except (OSError, urllib.error.URLError):
        return False


class Process:
    """A subprocess with its output in a file, stopped with its process group."""

    def __init__(self, args, log_path, **kwargs):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            args, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_until(self, condition, what, timeout=120.0):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{what}: the process exited:\n{self.log()[-4000:]}")
            return condition()

        assert wait_for(ready, timeout=timeout, interval=0.2), f"timed out waiting for {what}:\n{self.log()[-4000:]}"

    def stop(self):
        stop_process_group(self.proc, timeout=30)
        self._log.close()


@pytest.fixture
def processes():
    started = []

    def start(*args, **kwargs):
        process = Process(*args, **kwargs)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


class PrometheusAPI:
    def __init__(self, base):
        self.base = base

    def query(self, expr):
        status, body = _get(f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        data = json.loads(body)
        assert status == 200 and data["status"] == "success", body
        return data["data"]["result"]

    def query_range(self, expr, start, end, step=1):
        params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
        return json.loads(_get(f"{self.base}/api/v1/query_range?{params}")[1])["data"]["result"]

    def alerts(self):
        return json.loads(_get(f"{self.base}/api/v1/alerts")[1])["data"]["alerts"]

    def target_health(self):
        targets = json.loads(_get(f"{self.base}/api/v1/targets")[1])["data"]["activeTargets"]
        return [(t["health"], t.get("lastError", "")) for t in targets]


def _write_prometheus_config(tmp_path, app_port):
    import yaml  # pylint: disable=import-outside-toplevel

    token_file = tmp_path / "metrics-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    scrape = mon.scrape_config(OPTIONS, f"127.0.0.1:{app_port}")
    assert scrape["authorization"] == {"type": "Bearer", "credentials_file": mon.TOKEN_FILE}
    scrape["authorization"]["credentials_file"] = str(token_file)  # where this test keeps the token file
    groups = mon.rule_groups(OPTIONS, mon.EVENT_BUS_STALLED, mon.EVENT_BUS_UP)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [scrape],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return tmp_path / "prometheus.yml"


def _targets():
    """``(dashboard, panel, expr)`` of every dashboard target, with ``$task`` set to a task that ran."""
    found = []
    for board in (mon.overview_dashboard(OPTIONS, mon.EVENT_BUS_STALLED), mon.task_dashboard(OPTIONS)):
        for title, expr in mon.panel_queries(board):
            found.append((board["uid"], title, expr.replace("$task", SEND)))
    return found


def test_real_prometheus_scrapes_the_endpoint_and_the_rules_work(  # pylint: disable=too-many-locals,too-many-statements
    settings, redis_url, redis_client, start_worker, processes, tmp_path
):
    prometheus = require_binary("prometheus", "apt-get install prometheus (Debian's package)")

    # ClickHouse: Aspects' xAPI table in chDB, seeded by another process (one chDB path per process).
    chdb_path = tmp_path / "chdb"
    subprocess.run([sys.executable, "-c", SEED, str(chdb_path)], cwd=ROOT, env=subprocess_env(), check=True,
                   timeout=300, capture_output=True)

    # The event bus: the Aspects stream with the xAPI consumer group behind by three entries, and
    # two delivered to a consumer that is gone (never acknowledged: they stall).
    stream = "test-analytics"
    redis_client.xadd(stream, {"event_data": b"x"})
    redis_client.xgroup_create(stream, "event_routing_backends", id="0")
    for i in range(4):
        redis_client.xadd(stream, {"event_data": str(i).encode()})
    redis_client.xreadgroup("event_routing_backends", "lms-pod-gone", {stream: ">"}, count=2)

    # The metrics endpoint, served by the test LMS.
    app_port = get_port(None)
    server_tokens = _tokens(redis_url, TRANSPORT="event_bus", METRICS_CLICKHOUSE_SECONDS=1)
    server_tokens["EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG"] = {"url": f"chdb://{chdb_path}"}
    server = processes(
        # --skip-checks: the event-bus transport's checks want Aspects' tracking backends, which this
        # LMS (it only serves metrics here) does not need; test_event_bus_checks covers them.
        [sys.executable, "-m", "django", "runserver", f"127.0.0.1:{app_port}", "--noreload", "--skip-checks"],
        tmp_path / "runserver.log", cwd=ROOT, env=subprocess_env(ASPECTS_TEST_ENV_TOKENS=json.dumps(server_tokens)),
    )
    endpoint = f"http://127.0.0.1:{app_port}/aspects-routing/metrics"
    server.wait_until(lambda: _answers(endpoint, {"Authorization": f"Bearer {TOKEN}"}), "the metrics endpoint")

    # Prometheus, scraping it every second with the generated entry.
    prom_port = get_port(None)
    config = _write_prometheus_config(tmp_path, app_port)
    server_process = processes(
        [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
        tmp_path / "prometheus.log", cwd=tmp_path,
    )
    api = PrometheusAPI(f"http://127.0.0.1:{prom_port}")
    server_process.wait_until(lambda: _answers(f"{api.base}/-/ready"), "Prometheus to be ready")
    server_process.wait_until(
        lambda: [h for h, _ in api.target_health()] == ["up"], "Prometheus to scrape the endpoint with the token"
    )

    # Work: successes, failures (no such sink) and retries (no such tracking backend).
    settings.ASPECTS_ROUTING = _tokens(redis_url)["ASPECTS_ROUTING"]
    flush()
    started_at = time.time()
    for i in range(200):
        send_event.delay("aspects_test", {"name": f"edx.test.event.{i}"})
    for i in range(20):
        dump_data_to_clickhouse.delay("platform_plugin_aspects.sinks", "NoSuchSink", i)
    for i in range(5):
        send_event.delay("no_such_backend", {"name": f"edx.test.retry.{i}"})
    assert flush()
    worker_tokens = json.dumps(_tokens(redis_url, METRICS_FLUSH_SECONDS=0.2))
    worker = start_worker("--pool=prefork", "--concurrency=2", "-Q", QUEUE, ASPECTS_TEST_ENV_TOKENS=worker_tokens)
    assert wait_for(lambda: _store_total(redis_url, SUCCEEDED) + _store_total(redis_url, FAILED) >= 220, 180), \
        worker.log()[-3000:]

    # Every dashboard target returns data through Prometheus's API.
    pending = {(uid, title, expr) for uid, title, expr in _targets()}

    def all_answered():
        for target in list(pending):
            if api.query(target[2]):
                pending.discard(target)
        return not pending

    assert wait_for(all_answered, timeout=180, interval=0.5), f"targets without data: {sorted(pending)}"

    # The figures are the real ones: ClickHouse measured, the bus lag as built, the store read.
    assert float(api.query(f"min({mon.EVENT_BUS_UP})")[0]["value"][1]) == 1
    assert float(api.query("min(aspects_clickhouse_up)")[0]["value"][1]) == 1
    assert float(api.query("min(aspects_metrics_store_up)")[0]["value"][1]) == 1
    lag = api.query('stream_group:aspects_event_bus_lag:max{group="event_routing_backends"}')
    assert float(lag[0]["value"][1]) == 3
    assert float(api.query("table:aspects_xapi_lag_seconds:max")[0]["value"][1]) >= 5 * 60
    failed = api.query(f'sum(task_queue:aspects_tasks_failed:rate30s{{queue="{QUEUE}"}})')
    assert failed and float(failed[0]["value"][1]) >= 0

    docs = os.environ.get("ASPECTS_MONITORING_DUMP")
    if docs:
        _docs_load(60)  # a minute of varying load, drained by the worker

    # No consumer: stop the worker, then publish; the backlog grows while nothing starts.
    os.kill(worker.proc.pid, signal.SIGTERM)
    worker.proc.wait(timeout=60)
    started_total = _store_total(redis_url, STARTED)
    for i in range(30):
        send_event.delay("aspects_test", {"name": f"edx.test.backlog.{i}"})
    assert flush()
    depth = f'queue:aspects_queue_depth:max{{queue="{QUEUE}"}}'
    assert wait_for(lambda: (r := api.query(depth)) and float(r[0]["value"][1]) >= 30, 60)
    first_depth = float(api.query(depth)[0]["value"][1])
    for i in range(30):
        send_event.delay("aspects_test", {"name": f"edx.test.backlog.more.{i}"})
    assert flush()

    def alert_states():
        return {
            (a["labels"]["alertname"], a["labels"].get("queue") or a["labels"].get("group")): a["state"]
            for a in api.alerts()
        }

    wanted = {
        ("AspectsQueueNoConsumer", QUEUE),
        ("AspectsQueueBacklogGrowing", QUEUE),
        # The two entries held by the gone consumer, once older than claim_msgs_older_than.
        ("AspectsEventBusEntriesStalled", "event_routing_backends"),
    }
    assert wait_for(lambda: wanted <= set(alert_states()), timeout=180, interval=0.5), alert_states()
    states = alert_states()
    assert {states[key] for key in wanted} == {"pending"}  # each has a `for` of minutes
    stalled = api.query(f'max({mon.EVENT_BUS_STALLED}{{group="event_routing_backends"}})')
    assert float(stalled[0]["value"][1]) == 2
    assert float(api.query(depth)[0]["value"][1]) > first_depth
    assert _store_total(redis_url, STARTED) == started_total  # really nothing consumed meanwhile
    assert "Traceback" not in server.log()

    if docs:
        # The picture's last act: a worker comes back and drains the backlog under load.
        start_worker("--pool=prefork", "--concurrency=2", "-Q", QUEUE, ASPECTS_TEST_ENV_TOKENS=worker_tokens)
        _docs_load(40)
        assert wait_for(lambda: float(api.query(depth)[0]["value"][1]) == 0, 120)
        _docs_load(20)
        _dump_series(api, started_at, docs)


def _docs_load(seconds):
    """
    Publish ``send_event`` at a rate swinging between 5 and 45 tasks/s (and a failing task per 20) for ``seconds``.

    Paced load generation, not a wait for a condition: it runs only with ASPECTS_MONITORING_DUMP set.
    """
    import math  # pylint: disable=import-outside-toplevel
    import threading  # pylint: disable=import-outside-toplevel

    tick = threading.Event()
    begin = last = time.monotonic()
    due = 0.0  # tasks owed so far: the integral of the rate
    sent = 0
    while (now := time.monotonic()) - begin < seconds:
        due += (25 + 20 * math.sin((now - begin) / 8)) * (now - last)
        last = now
        while sent < due:
            send_event.delay("aspects_test", {"name": f"edx.docs.{sent}"})
            sent += 1
            if sent % 20 == 0:
                dump_data_to_clickhouse.delay("platform_plugin_aspects.sinks", "NoSuchSink", sent)
        flush()
        tick.wait(0.25)


def _dump_series(api, start, path):
    """The overview's series since ``start`` (for the README's picture)."""
    n = mon.Names(OPTIONS.rate_window)
    queries = {
        "published": f"sum({n.queue_rate('aspects_tasks_published_total')})",
        "finished": f"sum({n.queue_finished})",
        "failed": f"sum({n.queue_rate('aspects_tasks_failed_total')})",
        "wait_p95": f"max({n.queue_quantile('aspects_task_queue_wait_seconds', 95)})",
        "runtime_p95": f"max({n.queue_quantile('aspects_task_runtime_seconds', 95)})",
        "depth": f"max({n.depth})",
        "bus_lag": f"max({n.bus_lag})",
        "xapi_lag": f"max({n.xapi_lag})",
    }
    end = time.time()
    data = {name: api.query_range(expr, start, end) for name, expr in queries.items()}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"queries": queries, "start": start, "end": end, "series": data}, handle)
