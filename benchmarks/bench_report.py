"""
How long the whole ``aspects_scaling_report`` takes with every source healthy.

Sets up what the demo sets up (a private redis-server as broker and metrics
store, a seeded chDB xAPI table, a real Celery worker on the Aspects queue, the
Ralph stand-in), pushes a burst of tasks through the worker so the metrics have
data, then times, in alternation:

* the whole report (``build_report``: every collector concurrently under one
  deadline, the sizing model, the recommendations) and its text rendering;
* baselines from the same run: one Redis ``PING`` round trip, the ClickHouse
  section alone (``collect_clickhouse``) and one worker broadcast alone
  (``inspect().active_queues()`` with the report's probe timeout, which a
  broadcast waits out because it cannot know how many workers will answer).

Target (issue 5): the whole report in at most 10 s. Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_report.py [--events-per-day 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0


def _median_time(function, repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main(argv=None) -> int:  # pylint: disable=too-many-locals
    """Set up, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--events-per-day", type=int, default=100_000, help="seeded xAPI rows per day (30 days)")
    parser.add_argument("--burst", type=int, default=500, help="send_event tasks pushed through the worker first")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    # pylint: disable=import-outside-toplevel
    from demo.lrs import LrsStandIn
    from demo.run import CeleryWorker, RedisServer, wait_drained

    out = Path(tempfile.mkdtemp(prefix="aspects-bench-report-"))
    redis_server = RedisServer(out / "redis")
    lrs = LrsStandIn()
    dsn = f"chdb://{out / 'chdb'}"
    os.environ.update(
        {
            "REDIS_URL": redis_server.url,
            "DJANGO_SETTINGS_MODULE": "demo.settings",
            "ASPECTS_DEMO_CLICKHOUSE_DSN": dsn,
            "ASPECTS_DEMO_RALPH_URL": lrs.url,
        }
    )
    worker = None
    try:
        import clickhouse_connect
        import django
        import redis

        django.setup()
        from celery import current_app
        from eventtracking.tasks import send_event

        from aspects_routing.metrics import flush
        from aspects_routing.scaling.collectors.clickhouse import collect_clickhouse
        from aspects_routing.scaling.render import render
        from aspects_routing.scaling.report import ReportOptions, build_report
        from aspects_routing.testing.xapi import seed_xapi_events

        seed = seed_xapi_events(clickhouse_connect.get_client(dsn=dsn), days=30, events_per_day=args.events_per_day)
        worker = CeleryWorker({**os.environ, "PYTHONPATH": str(ROOT)}, out / "worker.log")
        worker.wait_ready()
        for number in range(args.burst):
            send_event.delay("event_transformer", {"name": "problem_check", "n": number})
        flush()
        drained = wait_drained(redis_server.url, args.burst, timeout=120)

        options = ReportOptions(timeout=30)
        ping_client = redis.Redis.from_url(redis_server.url)
        app = current_app._get_current_object()  # pylint: disable=protected-access

        report_times, ch_times, broadcast_times, ping_times = [], [], [], []
        last = None
        for _ in range(args.repeat):  # in alternation, so load changes hit every measurement alike
            start = time.perf_counter()
            last = build_report(options)
            render(last, "text")
            report_times.append(time.perf_counter() - start)
            ch_times.append(_median_time(lambda: collect_clickhouse(dsn, timeout=30), 1)[0])
            broadcast_times.append(
                _median_time(lambda: app.control.inspect(timeout=options.probe_timeout).active_queues(), 1)[0]
            )
            ping_times.append(_median_time(ping_client.ping, 50)[0])

        whole = statistics.median(report_times)
        ch_alone = statistics.median(ch_times)
        broadcast = statistics.median(broadcast_times)
        ping = statistics.median(ping_times)
        print(f"bench_report: {seed.rows:,} xAPI rows in chDB, {args.burst} tasks through a real worker "
              f"({'drained' if drained else 'NOT drained'}), {args.repeat} rounds, status {last.status}")
        print("  sections in the last round: " + ", ".join(
            f"{s.name} {s.status} {s.elapsed_seconds:.2f} s" for s in last.sections))
        print(f"  whole report + text render   median {whole:7.3f} s  (min {min(report_times):.3f}, "
              f"max {max(report_times):.3f})")
        print(f"  baseline: ClickHouse alone   median {ch_alone:7.3f} s   ratio whole/ClickHouse {whole / ch_alone:6.2f}")
        print(f"  baseline: worker broadcast   median {broadcast:7.3f} s   ratio whole/broadcast  {whole / broadcast:6.2f}")
        print(f"  baseline: Redis PING         median {ping * 1e6:7.1f} us  ratio whole/PING       {whole / ping:8.0f}")
        verdict = "met" if whole <= TARGET_SECONDS else "NOT met"
        print(f"  target whole report <= {TARGET_SECONDS:g} s: {verdict}")
        return 0 if drained and all(s.status != "unavailable" for s in last.sections) else 1
    finally:
        if worker is not None:
            worker.stop()
        lrs.stop()
        redis_server.stop()


if __name__ == "__main__":
    sys.exit(main())
