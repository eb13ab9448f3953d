"""
Event-bus benchmark (issue 4): LMS-side cost of one tracking event, event bus vs Celery.

Both paths run the real packages in one test LMS process (settings
``tests.settings.tutor_event_bus``, see :mod:`benchmarks.tracking_emit`),
against the same real Redis, and emit the same Aspects tracking event through
event-tracking's ``Tracker.emit``: the Celery path (``AsyncRoutingBackend`` ->
``send_event.delay``) and the event bus (``EventBusRoutingBackend`` -> XADD).

Three processes, one per scenario:

1. logging at WARNING: no handler formats an INFO line;
2. logging at INFO, Open edX's level, records formatted to /dev/null: both paths
   as aspects-routing runs them (per-event INFO lines dropped), and both again
   with ``LOG_EACH_TRACKING_EVENT`` (lines kept);
   in 1 and 2, also the ``floor`` (not a product path: one ``json.dumps`` and one
   XADD per event, the least any path writing each event to Redis could cost);
3. what-if, at INFO: two upstream changes to openedx-events patched into the
   process (``benchmarks/what_if_upstream.py``), to size what they would save.

Within a process, rounds alternate between the paths so that all see the same
machine load (other processes share the 2 cores); each round's wall time and
process CPU time per event are recorded, and the medians are printed with the
ratio to the Celery path of the same logging. Each process checks that every
event it emitted reached Redis. Wall-clock ratios on this machine drift by
about +-20 % between runs; ``bench_event_bus_cpu.py`` counts instructions instead.

Run: PYTHONPATH=. python benchmarks/bench_event_bus.py  (about a minute; starts
a private redis-server unless REDIS_URL is set, and flushes that database).
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

from benchmarks.tracking_emit import FLOOR_STREAM  # noqa: E402  pylint: disable=wrong-import-position

REDIS_URL = os.environ["REDIS_URL"]
WARMUP = 300
EVENTS = 1000
ROUNDS = 10

BENCH = """
import json, os, sys, time, redis
from benchmarks.tracking_emit import emit, keep_per_event_lines, prepare

warmup, events, rounds = map(int, sys.argv[1:4])
level, what_if = sys.argv[4], sys.argv[5] == "what-if"
trackers = prepare(level, what_if)
if what_if:
    del trackers["floor"]  # the what-if patches do not touch it
if level == "INFO" and not what_if:
    # The same trackers with LOG_EACH_TRACKING_EVENT: their per-event INFO lines kept.
    trackers["celery_logged"], trackers["event_bus_logged"] = trackers["celery"], trackers["event_bus"]
results = {path: {"wall": [], "cpu": [], "commands": 0, "emitted": 0} for path in trackers}
stats = redis.Redis.from_url(os.environ["REDIS_URL"])


def redis_calls():
    return sum(v["calls"] for v in stats.info("commandstats").values())


for path, t in trackers.items():
    keep_per_event_lines(path.endswith("_logged"))
    emit(t, warmup)
    results[path]["emitted"] += warmup
for _ in range(rounds):
    for path, t in trackers.items():
        keep_per_event_lines(path.endswith("_logged"))
        calls = redis_calls()
        wall, cpu = time.perf_counter(), time.process_time()
        emit(t, events)
        results[path]["wall"].append((time.perf_counter() - wall) / events)
        results[path]["cpu"].append((time.process_time() - cpu) / events)
        # Minus the INFO call itself; the metrics flush thread may add a few.
        results[path]["commands"] += redis_calls() - calls - 1
        results[path]["emitted"] += events
print(json.dumps(results))
"""


SCENARIOS = (
    ("WARNING", "", "logging at WARNING (no INFO line is formatted by a handler)"),
    ("INFO", "", "logging at INFO, Open edX's default level"),
    ("INFO", "what-if", "what-if, logging at INFO: two upstream fixes patched in (benchmarks/what_if_upstream.py)"),
)
LABELS = {
    "celery": "Celery path",
    "event_bus": "event bus",
    "celery_logged": "Celery path, LOG_EACH_TRACKING_EVENT",
    "event_bus_logged": "event bus, LOG_EACH_TRACKING_EVENT",
    "floor": "floor: json.dumps + one XADD",
}
BASELINE = {"celery": "celery", "event_bus": "celery", "celery_logged": "celery_logged",
            "event_bus_logged": "celery_logged", "floor": "celery"}


def run(level, what_if):
    """One benchmark process; returns its per-path results, after checking that every event reached Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings.tutor_event_bus", PYTHONPATH=str(ROOT))
    out = subprocess.run(
        [sys.executable, "-c", BENCH, str(WARMUP), str(EVENTS), str(ROUNDS), level, what_if or "-"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout
    results = json.loads(out.strip().splitlines()[-1])
    # tutor_order routes send_event to edx.lms.core.aspects. The stream is "test-analytics"
    # (EVENT_BUS_TOPIC_PREFIX "test"); entries added, not XLEN: the producer trims the
    # stream to about EVENT_BUS_REDIS_STREAM_MAX_LEN (10,000) entries.
    landed = {"celery": client.llen("edx.lms.core.aspects"),
              "event bus": client.xinfo_stream("test-analytics")["entries-added"]}
    emitted = {"celery": sum(r["emitted"] for path, r in results.items() if path.startswith("celery")),
               "event bus": sum(r["emitted"] for path, r in results.items() if path.startswith("event_bus"))}
    if "floor" in results:
        landed["floor"] = client.xinfo_stream(FLOOR_STREAM)["entries-added"]
        emitted["floor"] = results["floor"]["emitted"]
    client.flushdb()
    assert landed == emitted, f"events that reached Redis {landed} != events emitted {emitted}"
    return results


def main():
    print(f"LMS-side cost per tracking event: {ROUNDS} alternating rounds of {EVENTS} events per path "
          f"after {WARMUP} warm-up events, same Redis; medians of the rounds. Target: event bus >= 2x cheaper.")
    for level, what_if, title in SCENARIOS:
        results = run(level, what_if)
        median = {path: {k: statistics.median(r[k]) for k in ("wall", "cpu")} for path, r in results.items()}
        print(f"{title}:")
        for path, m in median.items():
            commands = results[path]["commands"] / (EVENTS * ROUNDS)
            base = median[BASELINE[path]]
            ratio = "" if path.startswith("celery") else (
                f"  {base['wall'] / m['wall']:.2f}x cheaper wall, {base['cpu'] / m['cpu']:.2f}x CPU"
            )
            print(f"  {LABELS[path]:38s} wall {m['wall'] * 1e6:6.1f} us, CPU {m['cpu'] * 1e6:6.1f} us, "
                  f"{commands:.2f} Redis commands/event{ratio}")


if __name__ == "__main__":
    main()
