"""
Event-bus benchmark (issue 4): LMS-side cost of one tracking event, event bus vs Celery.

Both paths run the real packages in one test LMS process (settings
``tests.settings.tutor_event_bus``), against the same real Redis, and emit the
same Aspects tracking event through event-tracking's ``Tracker.emit``:

* Celery: a ``DjangoTracker`` built from event-routing-backends' default
  ``event_transformer`` (``AsyncRoutingBackend``: whitelist, then
  ``eventtracking.tasks.send_event.delay`` to the Redis broker);
* event bus: the default tracker as aspects-routing rewired it
  (``EventBusRoutingBackend``: ``TRACKING_EVENT_EMITTED``, openedx-events' handler,
  edx-event-bus-redis Avro-serializes it and appends it to the stream with XADD).

The aspects-routing hooks of each path are on, as in production (task metrics on
the Celery publish, producer counters on the bus). Rounds alternate between the
two paths so that both see the same machine load (other processes share the
2 cores); each round's wall time and process CPU time per event are recorded,
and the medians are printed with their ratio. The script checks that every
event reached Redis.

Run: PYTHONPATH=. python benchmarks/bench_event_bus.py  (starts a private
redis-server unless REDIS_URL is set; flushes DB 0 of it).
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.redis_server  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

import redis  # noqa: E402  pylint: disable=wrong-import-position

REDIS_URL = os.environ["REDIS_URL"]
WARMUP = 300
EVENTS = 1000
ROUNDS = 10

BENCH = """
import json, os, statistics, sys, time, django, redis
django.setup()
from django.conf import settings
from eventtracking import tracker
from eventtracking.django.django_tracker import DjangoTracker
from event_routing_backends.utils.settings import event_tracking_backends_config

warmup, events, rounds = map(int, sys.argv[1:4])
settings.BENCH_CELERY_BACKENDS = event_tracking_backends_config(
    settings, settings.EVENT_TRACKING_BACKENDS_ALLOWED_XAPI_EVENTS, settings.EVENT_TRACKING_BACKENDS_ALLOWED_CALIPER_EVENTS
)
trackers = {"celery": DjangoTracker(backends_settings_name="BENCH_CELERY_BACKENDS"), "event_bus": tracker.get_tracker()}
assert type(trackers["celery"].backends["event_transformer"]).__name__ == "AsyncRoutingBackend"
assert type(trackers["event_bus"].backends["event_transformer"]).__name__ == "EventBusRoutingBackend"
context = {
    "user_id": 1, "username": "learner", "course_id": "course-v1:Org+Course+Run", "org_id": "Org",
    "path": "/event", "ip": "10.0.0.1", "agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
    "host": "lms.example.com", "session": "0123456789abcdef0123456789abcdef",
}
data = {"target_url": "https://lms.example.com/courses/course-v1:Org+Course+Run/courseware/1",
        "current_url": "https://lms.example.com/courses/course-v1:Org+Course+Run/courseware/0"}
results = {path: {"wall": [], "cpu": [], "commands": 0} for path in trackers}
stats = redis.Redis.from_url(os.environ["REDIS_URL"])


def redis_calls():
    return sum(v["calls"] for v in stats.info("commandstats").values())


for path, t in trackers.items():
    with t.context("bench", context):
        for _ in range(warmup):
            t.emit("edx.ui.lms.link_clicked", data)
for _ in range(rounds):
    for path, t in trackers.items():
        with t.context("bench", context):
            calls = redis_calls()
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(events):
                t.emit("edx.ui.lms.link_clicked", data)
            results[path]["wall"].append((time.perf_counter() - wall) / events)
            results[path]["cpu"].append((time.process_time() - cpu) / events)
            # Minus the INFO call itself; the metrics flush thread may add a few.
            results[path]["commands"] += redis_calls() - calls - 1
print(json.dumps(results))
"""


def main():
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings.tutor_event_bus", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", BENCH, str(WARMUP), str(EVENTS), str(ROUNDS)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout
    results = json.loads(out.strip().splitlines()[-1])
    total = WARMUP + EVENTS * ROUNDS
    # tutor_order routes send_event to edx.lms.core.aspects. The stream is "test-analytics"
    # (EVENT_BUS_TOPIC_PREFIX "test"); entries added, not XLEN: the producer trims the
    # stream to about EVENT_BUS_REDIS_STREAM_MAX_LEN (10,000) entries.
    landed = {
        "celery": client.llen("edx.lms.core.aspects"),
        "event_bus": client.xinfo_stream("test-analytics")["entries-added"],
    }
    client.flushdb()
    for path, count in landed.items():
        assert count == total, f"{path}: {count} of {total} events reached Redis"

    print(f"LMS-side cost per tracking event: {ROUNDS} alternating rounds of {EVENTS} events per path "
          f"after {WARMUP} warm-up events, same Redis; medians of the rounds:")
    median = {path: {k: statistics.median(r[k]) for k in ("wall", "cpu")} for path, r in results.items()}
    for path in ("celery", "event_bus"):
        commands = results[path]["commands"] / (EVENTS * ROUNDS)
        print(f"  {path:9s}: wall {median[path]['wall'] * 1e6:7.1f} us/event, "
              f"CPU {median[path]['cpu'] * 1e6:7.1f} us/event, {commands:.2f} Redis commands/event  "
              f"({landed[path]} events reached Redis)")
    for kind in ("wall", "cpu"):
        ratio = median["celery"][kind] / median["event_bus"][kind]
        print(f"  {kind:4s}: event bus is {ratio:.2f}x cheaper than the Celery path (target >= 2x)")


if __name__ == "__main__":
    main()
