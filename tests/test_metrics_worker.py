"""
Task metrics end to end: real Aspects tasks published by this process, run by a
real ``celery worker`` (prefork, 2 children) in another, read back through the
Python API here and through ``/aspects-routing/metrics`` served by a third.

The worker runs with ``METRICS_FLUSH_SECONDS=0.2``; its last figures are written
when it shuts down (``worker_process_shutdown``), so the tests stop it before
asserting exact counts. This process writes with :func:`flush`.

``eventtracking.tasks.send_event`` needs a tracking backend of the given name or
it retries with a 30 s countdown; the worker is given a real
``AsyncRoutingBackend`` named ``aspects_test`` with no nested backends (through
ENV_TOKENS, as an operator's YAML would), so the task runs to success. ``dump_data_to_clickhouse`` is given a sink that does not
exist, so it fails (no retry). ``tests.tasks.platform_task`` is made an Aspects
task with ``EXTRA_TASKS`` to have a task with a known sleep;
``tests.tasks.explicit_platform_task`` stays a platform task.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from eventtracking.tasks import send_event
from platform_plugin_aspects.tasks import dump_data_to_clickhouse
from prometheus_client.parser import text_string_to_metric_families

from aspects_routing.metrics import api, flush
from aspects_routing.metrics.buckets import BOUNDS
from aspects_routing.metrics.names import DROPPED, FAILED, PUBLISHED, STARTED, SUCCEEDED
from aspects_routing.metrics.store import RedisStore
from tests.conftest import ROOT, subprocess_env, wait_for
from tests.tasks import explicit_platform_task, platform_task

pytestmark = pytest.mark.slow

QUEUE = "edx.lms.core.aspects"
SEND = "eventtracking.tasks.send_event"
DUMP = "platform_plugin_aspects.tasks.dump_data_to_clickhouse"
SLEEPY = "tests.tasks.platform_task"
OTHER = "tests.tasks.explicit_platform_task"
TOKEN = "metrics-token-for-the-integration-tests"
SLEEP = 0.6  # run time lands in the (0.5, 1.0] bucket
# As Aspects configures the LMS: an AsyncRoutingBackend (importing it registers send_event in the worker).
TRACKING_BACKENDS = {
    "aspects_test": {
        "ENGINE": "eventtracking.backends.async_routing.AsyncRoutingBackend",
        "OPTIONS": {"backend_name": "aspects_test"},
    }
}


def routing(store_url, **extra):
    return {
        "QUEUE": QUEUE,
        "EXTRA_TASKS": [SLEEPY],
        "METRICS_REDIS_URL": store_url,
        "METRICS_TOKEN": TOKEN,
        **extra,
    }


def env_tokens(store_url, **extra):
    tokens = {"ASPECTS_ROUTING": routing(store_url, **extra), "EVENT_TRACKING_BACKENDS": TRACKING_BACKENDS}
    return {"ASPECTS_TEST_ENV_TOKENS": json.dumps(tokens)}


STORE_DOWN = "could not write metrics to the store"


def wait_until(condition, what, timeout=120.0):
    """Poll ``condition`` until true (a deadline against hangs, not a timing assertion)."""
    assert wait_for(condition, timeout=timeout, interval=0.1), f"timed out waiting for {what}"


def store_total(store_url, name, task=None):
    figures = RedisStore(store_url, "aspects_routing").totals()
    return sum(v for (n, labels), v in figures.counters.items() if n == name and (task is None or ("task", task) in labels))


def stop_gracefully(worker):
    """
    SIGTERM to the worker's main process only, as Kubernetes and Docker send it:
    a warm shutdown, after which every pool child writes its last figures
    (``worker_process_shutdown``). The fixture's ``stop()`` signals the whole
    process group, which kills prefork children outright.
    """
    os.kill(worker.proc.pid, signal.SIGTERM)
    worker.proc.wait(timeout=60)


ENDPOINT = """
import os, sys
import django
django.setup()
from django.test import Client
response = Client().get("/aspects-routing/metrics", HTTP_AUTHORIZATION=os.environ["METRICS_AUTH"])
sys.stdout.write(f"{response.status_code}\\n{response.content.decode()}")
"""


def scrape_in_another_process(store_url, auth):
    """GET the endpoint in a fresh LMS process; returns (status, {(name, labels): value})."""
    out = subprocess.run(
        [sys.executable, "-c", ENDPOINT],
        cwd=ROOT,
        env=subprocess_env(METRICS_AUTH=auth, **env_tokens(store_url)),
        capture_output=True,
        check=True,
        timeout=120,
        text=True,
    ).stdout
    status, _, body = out.partition("\n")
    samples = {}
    if status == "200":
        for family in text_string_to_metric_families(body):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return int(status), body, samples


def labels(task, **more):
    return tuple(sorted({"task": task, "queue": QUEUE, **more}.items()))


def test_known_mix_counted_exactly_across_three_processes(settings, redis_url, redis_client, start_worker):
    store_url = redis_url
    settings.ASPECTS_ROUTING = routing(store_url)
    flush()
    redis_client.flushdb()

    for i in range(300):
        send_event.delay("aspects_test", {"name": f"edx.test.event.{i}"})
    for i in range(50):
        dump_data_to_clickhouse.delay("platform_plugin_aspects.sinks", "NoSuchSink", i)
    for _ in range(10):
        platform_task.delay(SLEEP)
    for _ in range(5):
        explicit_platform_task.delay()
    assert flush()
    last_publish = time.time()

    worker = start_worker("--pool=prefork", "--concurrency=2", **env_tokens(store_url, METRICS_FLUSH_SECONDS=0.2))
    worker_ready = time.time()
    wait_until(lambda: store_total(store_url, STARTED) == 360, "360 Aspects tasks started")
    wait_until(lambda: store_total(store_url, SUCCEEDED) + store_total(store_url, FAILED) == 360, "360 finished")
    wait_until(lambda: worker.log().count("explicit_platform_task[") >= 10, "the platform tasks to run")  # received + succeeded
    stop_gracefully(worker)

    status, body, samples = scrape_in_another_process(store_url, f"Bearer {TOKEN}")
    assert status == 200, body

    expected = {SEND: (300, 300, 0), DUMP: (50, 0, 50), SLEEPY: (10, 10, 0)}
    for task, (published, succeeded, failed) in expected.items():
        series = labels(task)
        assert samples[("aspects_tasks_published_total", series)] == published
        assert samples[("aspects_tasks_started_total", series)] == published
        assert samples.get(("aspects_tasks_succeeded_total", series), 0) == succeeded
        assert samples.get(("aspects_tasks_failed_total", series), 0) == failed
        assert samples.get(("aspects_tasks_retried_total", series), 0) == 0
        for histogram in ("aspects_task_queue_wait_seconds", "aspects_task_runtime_seconds"):
            assert samples[(f"{histogram}_count", series)] == published
            assert samples[(f"{histogram}_bucket", labels(task, le="+Inf"))] == published

    # Known sleep: every run of the sleepy task is in (0.5, 1.0].
    runtime = "aspects_task_runtime_seconds_bucket"
    assert samples[(runtime, labels(SLEEPY, le="0.5"))] == 0
    assert samples[(runtime, labels(SLEEPY, le="1.0"))] == 10
    # Nothing started before the worker was ready: every queue wait is at least that gap.
    gap = worker_ready - last_publish
    floor = max((b for b in BOUNDS if b < gap), default=None)
    assert floor is not None, f"worker became ready only {gap:.3f}s after the last publish"
    for task in expected:
        assert samples[("aspects_task_queue_wait_seconds_bucket", labels(task, le=repr(floor)))] == 0

    # The platform task ran but left no series; the queue is drained.
    assert "explicit_platform_task" in worker.log()
    assert not [key for key in samples if ("task", OTHER) in key[1]]
    assert samples[("aspects_queue_depth", (("queue", QUEUE),))] == 0
    assert samples.get(("aspects_metrics_dropped_total", ()), 0) == 0

    # The Python API agrees, and says where the figures come from.
    report = api.collect()
    assert report.available and report.source == store_url
    assert report.totals == api.Counts(published=360, started=360, succeeded=310, failed=50, retried=0)
    hour = report.window(60)
    assert hour.counts == report.totals
    assert hour.counts.published == hour.counts.started == hour.counts.succeeded + hour.counts.failed
    assert hour.runtime.count == hour.queue_wait.count == 360
    (sleepy,) = [t for t in hour.per_task if t.task == SLEEPY]
    assert 0.5 < sleepy.runtime.p50 <= 1.0 and 0.5 < sleepy.runtime.p99 <= 1.0
    assert sleepy.runtime.mean >= SLEEP
    assert sum(report.finished_per_minute) == 360


def test_unauthenticated_and_wrong_token_scrapes_get_no_data(settings, redis_url, redis_client):
    settings.ASPECTS_ROUTING = routing(redis_url)
    flush()
    send_event.delay("aspects_test", {"name": "edx.test.event"})
    assert flush()
    assert store_total(redis_url, PUBLISHED) == 1
    for auth in ("", "Bearer not-the-token", f"Basic {TOKEN}"):
        status, body, _ = scrape_in_another_process(redis_url, auth)
        assert status == 401
        assert "aspects_" not in body


def test_killing_the_metrics_store_mid_run(settings, redis_client, start_worker, spare_redis):
    executor = spare_redis()  # the metrics store: a private redis-server, apart from the broker
    store_url = f"redis://127.0.0.1:{executor.port}/0"
    settings.ASPECTS_ROUTING = routing(store_url)
    flush()
    redis.Redis.from_url(store_url).flushdb()
    worker = start_worker("--pool=prefork", "--concurrency=2", **env_tokens(store_url, METRICS_FLUSH_SECONDS=0.2))

    def succeeded():
        return worker.log().count(f"Task {SEND}[") // 2  # one "received" and one "succeeded" line each

    for i in range(40):
        send_event.delay("aspects_test", {"name": f"before.{i}"})
    assert flush()
    wait_until(lambda: store_total(store_url, STARTED) == 40, "the first 40 tasks counted")

    # The metrics store dies (SIGKILL: nothing saved); the broker is another Redis and lives on.
    executor.stop(stop_signal=signal.SIGKILL, expected_returncode=-signal.SIGKILL)
    for i in range(40):
        send_event.delay("aspects_test", {"name": f"during.{i}"})  # publishing goes on, nothing raises
    assert flush() is False
    wait_until(lambda: succeeded() == 80, "the 40 tasks published during the outage to run")
    # The outage must be seen by the worker before the store comes back: its flushers
    # write every 0.2 s, and on a loaded machine the last task can finish before any
    # of them ran, so the store would be back before a write failed (the old flake on
    # the log assertion below). Wait for the failure itself, not for time to pass.
    wait_until(lambda: STORE_DOWN in worker.log(), "a pool child to fail a write to the dead store")

    executor.start()  # back, empty
    for i in range(20):
        send_event.delay("aspects_test", {"name": f"after.{i}"})
    assert flush()
    wait_until(lambda: succeeded() == 100, "the last 20 tasks to run")
    stop_gracefully(worker)

    log = worker.log()
    assert "aspects_routing/metrics" not in log  # no traceback from the metrics path
    assert STORE_DOWN in log  # logged (once a minute at most)
    assert log.count("succeeded in") == 100 and log.count("raised unexpected") == 0
    # This process's 40 lost publishes are reported after the store returns; the
    # worker's losses (up to 4 events per task it ran during the outage) too.
    dropped = store_total(store_url, DROPPED)
    assert 40 <= dropped <= 40 + 4 * 40
    assert store_total(store_url, PUBLISHED) == 20
    assert 20 <= store_total(store_url, STARTED) <= 60
