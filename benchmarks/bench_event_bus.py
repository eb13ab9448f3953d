"""
Event-bus benchmark (issue 4): LMS-side cost of one tracking event, event bus vs Celery.

Both paths run the real packages in a test LMS process, against the same real
Redis, and emit the same Aspects tracking event through ``eventtracking.tracker.emit``:

* Celery (``TRANSPORT`` "celery", event-routing-backends' default):
  ``AsyncRoutingBackend`` runs the whitelist and publishes
  ``eventtracking.tasks.send_event`` (``.delay``) to the Redis broker;
* event bus (``TRANSPORT`` "event_bus"): ``EventBusRoutingBackend`` sends
  ``TRACKING_EVENT_EMITTED``; openedx-events' handler has edx-event-bus-redis
  serialize it (Avro) and ``XADD`` it to the stream.

The aspects-routing hooks of each path are on (task metrics on the Celery
publish, producer counters on the bus), as in production. Each path runs in its
own process: warm-up, then ROUNDS rounds of EVENTS emits; the median round gives
the per-event cost. The script checks that every event really reached Redis.

Run: PYTHONPATH=. python benchmarks/bench_event_bus.py  (starts a private
redis-server unless REDIS_URL is set; flushes DB 0 of it).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.redis_server  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

import redis  # noqa: E402  pylint: disable=wrong-import-position

REDIS_URL = os.environ["REDIS_URL"]
WARMUP = 300
EVENTS = 2000
ROUNDS = 5

EMIT = """
import json, statistics, sys, time, django
django.setup()
from eventtracking import tracker
warmup, events, rounds = map(int, sys.argv[1:4])
context = {
    "user_id": 1, "username": "learner", "course_id": "course-v1:Org+Course+Run", "org_id": "Org",
    "path": "/event", "ip": "10.0.0.1", "agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
    "host": "lms.example.com", "session": "0123456789abcdef0123456789abcdef",
}
data = {"target_url": "https://lms.example.com/courses/course-v1:Org+Course+Run/courseware/1",
        "current_url": "https://lms.example.com/courses/course-v1:Org+Course+Run/courseware/0"}
t = tracker.get_tracker()
with t.context("bench", context):
    for _ in range(warmup):
        t.emit("edx.ui.lms.link_clicked", data)
    per_event = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(events):
            t.emit("edx.ui.lms.link_clicked", data)
        per_event.append((time.perf_counter() - start) / events)
print(json.dumps({"median": statistics.median(per_event), "rounds": per_event}))
"""

PATHS = {
    "celery": "tests.settings.tutor_order",
    "event_bus": "tests.settings.tutor_event_bus",
}


def run(path: str) -> dict:
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE=PATHS[path], PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", EMIT, str(WARMUP), str(EVENTS), str(ROUNDS)],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    total = WARMUP + EVENTS * ROUNDS
    if path == "celery":
        landed = client.llen("edx.lms.core.aspects")  # tutor_order routes send_event there
    else:
        # EVENT_BUS_TOPIC_PREFIX "test" + topic "analytics". Entries added, not XLEN: the producer
        # trims the stream to about EVENT_BUS_REDIS_STREAM_MAX_LEN (10,000) entries.
        landed = client.xinfo_stream("test-analytics")["entries-added"]
    assert landed == total, f"{path}: {landed} of {total} events reached Redis"
    result["landed"] = landed
    client.flushdb()
    return result


def main():
    results = {path: run(path) for path in PATHS}  # the private redis-server stops at exit
    print(f"LMS-side cost per tracking event, {EVENTS} events x {ROUNDS} rounds (median round), same Redis:")
    for path, result in results.items():
        rounds = ", ".join(f"{r * 1e6:.0f}" for r in result["rounds"])
        print(f"  {path:9s}: {result['median'] * 1e6:8.1f} us/event  (rounds: {rounds} us; "
              f"{result['landed']} events reached Redis)")
    ratio = results["celery"]["median"] / results["event_bus"]["median"]
    print(f"  event bus is {ratio:.2f}x cheaper than the Celery path (celery / event_bus; target >= 2x)")


if __name__ == "__main__":
    main()
