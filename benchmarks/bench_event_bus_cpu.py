"""
Event-bus benchmark in instructions: LMS-side CPU work per tracking event, event
bus vs Celery path, counted by callgrind, so the machine's noise does not enter.

Each variant is one test LMS process (:mod:`benchmarks.tracking_emit`) run under
``valgrind --tool=callgrind --collect-atstart=no --toggle-collect=functools_reduce``:
it warms up, then emits the events inside ``functools.reduce``, and only that
loop is counted. The figure is user-space instructions of the LMS process per
event: the interpreter, the packages on the path, redis-py, aspects-routing's
hooks. The kernel's socket work (one send and one receive per event on both
paths) and Redis itself are not in it, and instructions are not time (cache
misses, syscalls): read it beside ``bench_event_bus.py``'s wall clock. Logging
is at INFO, Open edX's level, with records formatted to /dev/null. The ``floor``
variant is the least a path writing each event to Redis could cost (see
:mod:`benchmarks.tracking_emit`): the Celery path's cost over it is the most any
transport could save.

Run: PYTHONPATH=. python benchmarks/bench_event_bus_cpu.py  (about two minutes on 2
cores; needs valgrind; starts a private redis-server unless REDIS_URL is set,
and flushes that database).
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.redis_server  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

import redis  # noqa: E402  pylint: disable=wrong-import-position

from benchmarks.tracking_emit import FLOOR_STREAM  # noqa: E402  pylint: disable=wrong-import-position

REDIS_URL = os.environ["REDIS_URL"]
WARMUP = 100
EVENTS = 300
#: (label, path, per-event lines kept, variant of benchmarks.tracking_emit, baseline label)
VARIANTS = (
    ("Celery path", "celery", False, "plain", None),
    ("event bus", "event_bus", False, "plain", "Celery path"),
    ("Celery path, LOG_EACH_TRACKING_EVENT", "celery", True, "plain", None),
    ("event bus, LOG_EACH_TRACKING_EVENT", "event_bus", True, "plain", "Celery path, LOG_EACH_TRACKING_EVENT"),
    ("event bus, no aspects-routing receiver", "event_bus", False, "no-receiver", "Celery path"),
    ("what-if Celery path", "celery", False, "what-if", None),
    ("what-if event bus (upstream fixes)", "event_bus", False, "what-if", "what-if Celery path"),
    ("floor: json.dumps + one XADD", "floor", False, "plain", "Celery path"),
)


def count(workdir: str, path: str, keep: bool, variant: str) -> float:
    """Instructions per event of one variant."""
    out = os.path.join(workdir, f"callgrind.{path}.{keep}.{variant}.out")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings.tutor_event_bus", PYTHONPATH=str(ROOT),
               PYTHONHASHSEED="0")
    subprocess.run(
        ["valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=functools_reduce",
         f"--callgrind-out-file={out}", sys.executable, "-m", "benchmarks.tracking_emit",
         path, str(WARMUP), str(EVENTS), "keep" if keep else "drop", variant],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )
    with open(out, encoding="utf-8") as f:
        total = int(re.search(r"^summary: (\d+)", f.read(), re.M).group(1))
    return total / EVENTS


def main():
    if not shutil.which("valgrind"):
        print("bench_event_bus_cpu.py: not measured, valgrind is not installed (Debian: apt-get install valgrind).")
        return
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    with tempfile.TemporaryDirectory() as workdir, ThreadPoolExecutor(max_workers=2) as pool:
        futures = {label: pool.submit(count, workdir, path, keep, variant)
                   for label, path, keep, variant, _base in VARIANTS}
        per_event = {label: future.result() for label, future in futures.items()}
    emitted = {path: sum(WARMUP + EVENTS for _l, p, *_rest in VARIANTS if p == path)
               for path in ("celery", "event_bus", "floor")}
    landed = {"celery": client.llen("edx.lms.core.aspects"),
              "event_bus": client.xinfo_stream("test-analytics")["entries-added"],
              "floor": client.xinfo_stream(FLOOR_STREAM)["entries-added"]}
    client.flushdb()
    assert landed == emitted, f"events that reached Redis {landed} != events emitted {emitted}"

    print(f"LMS-side user-space instructions per tracking event (callgrind, {EVENTS} events per variant "
          f"after {WARMUP} warm-up, logging at INFO). Target: event bus >= 2x cheaper.")
    for label, _path, _keep, _variant, base in VARIANTS:
        ratio = f"  {per_event[base] / per_event[label]:.2f}x fewer" if base else ""
        print(f"  {label:38s} {per_event[label] / 1e6:6.3f} M instructions/event{ratio}")


if __name__ == "__main__":
    main()
