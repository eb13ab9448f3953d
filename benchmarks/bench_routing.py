"""
Routing benchmarks (issue 2), printed as ratios measured in one run.

1. Head-of-line blocking, with a real prefork worker started as Tutor starts
   lms-worker (no -Q, CMS default queue excluded), on a real Redis broker:
   (a) 300 slow platform tasks queued, then 20 Aspects tasks: p95 queue wait of
       the Aspects tasks;
   (b) 2,000 Aspects tasks queued, then 20 platform tasks: p95 queue wait of the
       platform tasks;
   each with routing to a separate queue vs everything on the default queue.
2. Overhead: router decision cost per call, and apply_async publish throughput
   to Redis with the router installed vs not.

Run: PYTHONPATH=. python benchmarks/bench_routing.py  (starts a private
redis-server unless REDIS_URL is set; uses DB 0 of it).
"""

import json
import os
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.redis_server  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

import redis  # noqa: E402  pylint: disable=wrong-import-position

REDIS_URL = os.environ["REDIS_URL"]
SLOW_PLATFORM_SECONDS = 0.05
# Metrics off: this measures routing alone (bench_metrics.py measures the metrics).
ROUTED = {"ASPECTS_ROUTING": {"QUEUE": "edx.lms.core.aspects", "METRICS_ENABLED": False}}
UNROUTED = {"ASPECTS_ROUTING": {"TASKS": [], "METRICS_ENABLED": False}}  # the plugin routes nothing: all on the default queue

PUBLISH = """
import json, sys, time, django, redis, os
django.setup()
from eventtracking.tasks import send_event
from tests.tasks import platform_task
first, first_n, second, second_n = sys.argv[1:5]
client = redis.Redis.from_url(os.environ["REDIS_URL"])
def publish(kind, n, record):
    for _ in range(n):
        if kind == "platform":
            result = platform_task.delay(%(slow)r)
        else:
            result = send_event.delay("bench_backend", {"name": "bench"})
        if record:
            client.hset("bench:published", result.id, repr(time.time()))
publish(first, int(first_n), False)
publish(second, int(second_n), True)
""" % {"slow": SLOW_PLATFORM_SECONDS}


def env_for(tokens):
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.settings.edx_order",
        PYTHONPATH=str(ROOT),
        ASPECTS_TEST_ENV_TOKENS=json.dumps(tokens),
    )
    return env


def p95(values):
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def head_of_line(tokens, first, first_n, second, second_n):
    """Queue ``first_n`` of ``first``, then ``second_n`` of ``second``; p95 wait of the second kind."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    env = env_for(tokens)
    subprocess.run([sys.executable, "-c", PUBLISH, first, str(first_n), second, str(second_n)],
                   cwd=ROOT, env=env, check=True)
    worker = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "celery", "--app=tests.celery_app", "worker", "--loglevel=warning",
         "--exclude-queues=edx.cms.core.default", "--concurrency=2", "--include=benchmarks._start_probe"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while client.hlen("bench:started") < first_n + second_n and time.monotonic() < deadline:
            time.sleep(0.2)
        published = {k: float(v) for k, v in client.hgetall("bench:published").items()}
        started = {k: float(v) for k, v in client.hgetall("bench:started").items()}
    finally:
        worker.terminate()
        worker.wait(timeout=60)
    # The worker starts after publishing: measure waits from the first start, as
    # if everything had been queued the instant the worker came up.
    origin = min(started.values())
    waits = [started[k] - max(origin, published[k]) for k in published if k in started]
    assert len(waits) == second_n, f"only {len(waits)} of {second_n} tasks started"
    return p95(waits)


def router_cost():
    import django  # pylint: disable=import-outside-toplevel

    os.environ.update(env_for(ROUTED))
    django.setup()
    from aspects_routing.routing.router import route_task  # pylint: disable=import-outside-toplevel
    from openedx.core.lib.celery.routers import route_task as platform_route  # pylint: disable=import-outside-toplevel

    n = 200_000
    args = ((), {}, {})
    route_task("eventtracking.tasks.send_event", *args)  # warm-up (memo)
    route_task("tests.tasks.platform_task", *args)
    ours_hit = min(timeit.repeat(lambda: route_task("eventtracking.tasks.send_event", *args), number=n, repeat=5)) / n
    ours_miss = min(timeit.repeat(lambda: route_task("tests.tasks.platform_task", *args), number=n, repeat=5)) / n
    platform = min(timeit.repeat(lambda: platform_route("tests.tasks.platform_task", *args), number=n, repeat=5)) / n
    return ours_hit, ours_miss, platform


def publish_throughput(rounds=10, n=1500):
    """Aspects tasks published with the router installed vs not, rounds interleaved."""
    from aspects_routing.routing.router import route_task  # pylint: disable=import-outside-toplevel
    from tests.celery_app import APP  # pylint: disable=import-outside-toplevel
    from eventtracking.tasks import send_event  # pylint: disable=import-outside-toplevel

    client = redis.Redis.from_url(REDIS_URL)
    with_router = tuple(APP.conf.task_routes)
    without_router = tuple(r for r in with_router if r is not route_task)
    results = {"with": [], "without": []}
    for _ in range(rounds):
        for label, routes in (("with", with_router), ("without", without_router)):
            APP.conf.task_routes = routes
            APP.amqp.flush_routes()
            client.flushdb()
            start = time.perf_counter()
            for _ in range(n):
                send_event.delay("bench_backend", {"name": "bench"})
            results[label].append(n / (time.perf_counter() - start))
    APP.conf.task_routes = with_router
    APP.amqp.flush_routes()
    return statistics.median(results["with"]), statistics.median(results["without"])


def main():
    print("Head-of-line blocking (real worker, prefork x2, no -Q):")
    a_routed = head_of_line(ROUTED, "platform", 300, "aspects", 20)
    a_default = head_of_line(UNROUTED, "platform", 300, "aspects", 20)
    print(f"  (a) Aspects p95 wait behind 300 slow platform tasks: default queue {a_default:.3f} s, "
          f"routed {a_routed:.3f} s -> {a_default / a_routed:.1f}x lower with routing")
    b_routed = head_of_line(ROUTED, "aspects", 2000, "platform", 20)
    b_default = head_of_line(UNROUTED, "aspects", 2000, "platform", 20)
    print(f"  (b) platform p95 wait behind 2,000 Aspects tasks: default queue {b_default:.3f} s, "
          f"routed {b_routed:.3f} s -> {b_default / b_routed:.1f}x lower with routing")

    print("Overhead:")
    hit, miss, platform = router_cost()
    print(f"  router decision: Aspects task {hit * 1e6:.2f} us, other task {miss * 1e6:.2f} us per call "
          f"(platform's EXPLICIT_QUEUES router: {platform * 1e6:.2f} us; ratio {hit / platform:.2f}x)")
    with_rate, without_rate = publish_throughput()
    print(f"  apply_async to Redis: {with_rate:.0f}/s with the router, {without_rate:.0f}/s without "
          f"-> ratio {with_rate / without_rate:.3f}")


if __name__ == "__main__":
    main()
