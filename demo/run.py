"""
The embedded demo: ``python -m demo [--dir DIR]`` (``make demo``).

With no external services it

1. starts a private ``redis-server`` on a free port (Celery broker and metrics store);
2. creates an embedded chDB database with the Aspects xAPI table
   (:mod:`aspects_routing.testing.xapi`) and seeds a month of synthetic events
   (daily and weekly rhythm, several courses);
3. starts a real Celery worker on the Aspects queue, and a stand-in for Ralph
   (:mod:`demo.lrs`) that the xAPI statements are sent to;
4. pushes a burst of real Aspects tasks -- ``eventtracking.tasks.send_event`` for
   tracking events and ``event_routing_backends.tasks.dispatch_event`` for xAPI
   statements -- through the worker, and writes the statements Ralph's stand-in
   received to the xAPI table, as Ralph's ClickHouse backend does;
5. prints the full ``aspects_scaling_report``, writes it in every format, and
   writes the sized configs (``aspects_scaling_config --services all``) next to it;
6. stops its processes and prints where it left its data.

The LMS is the test LMS (``demo/settings.py`` over ``tests/settings``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "edx.lms.core.aspects"
WORKER_NAME = "aspects-demo@%h"
#: Tracking events the burst emits, in rough proportion to a course's traffic.
TRACKING_EVENTS = (
    ("play_video", 30),
    ("pause_video", 20),
    ("problem_check", 20),
    ("edx.ui.lms.sequence.next_selected", 15),
    ("edx.course.enrollment.activated", 5),
    ("edx.grades.subsection.grade_calculated", 10),
)


class Step:
    """Prints each step with the seconds elapsed since the demo started."""

    def __init__(self):
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:6.1f}s] {message}", flush=True)


def stop_process(proc: subprocess.Popen, timeout: float = 20) -> None:
    """SIGTERM (a worker's warm shutdown), then SIGKILL if it does not exit in ``timeout`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` with its files under ``datadir``."""

    def __init__(self, datadir: Path):
        binary = shutil.which("redis-server")
        if not binary:
            raise SystemExit("The demo needs the redis-server binary (apt-get install redis-server).")
        datadir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--dir", str(datadir), "--logfile", str(datadir / "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait()

    def _wait(self, timeout: float = 30) -> None:
        import redis  # pylint: disable=import-outside-toplevel

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                redis.Redis.from_url(self.url, socket_timeout=1).ping()
                return
            except redis.RedisError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"redis-server exited with {self.proc.returncode}")
                time.sleep(0.1)
        raise SystemExit(f"redis-server did not answer on {self.url} within {timeout:g} s")

    def stop(self) -> None:
        """Stop the server."""
        stop_process(self.proc, timeout=10)


class CeleryWorker:
    """A real ``celery worker`` of the demo LMS consuming the Aspects queue only."""

    def __init__(self, env: dict, log_path: Path, concurrency: int = 2):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "celery", "--app=tests.celery_app", "worker", "--loglevel=info",
             "-Q", QUEUE, f"--concurrency={concurrency}", "-n", WORKER_NAME],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60) -> None:
        """Block until the worker logs that it is ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if b" ready." in self.log_path.read_bytes():
                return
            if self.proc.poll() is not None:
                raise SystemExit(f"the Celery worker exited early; see {self.log_path}")
            time.sleep(0.2)
        raise SystemExit(f"the Celery worker was not ready after {timeout:g} s; see {self.log_path}")

    def stop(self) -> None:
        """Warm shutdown, then close the log."""
        stop_process(self.proc)
        self._log.close()


def tracking_event(rng: random.Random, now: datetime) -> dict:
    """A tracking-log event as the LMS emits it."""
    names = [name for name, _w in TRACKING_EVENTS]
    name = rng.choices(names, weights=[w for _n, w in TRACKING_EVENTS])[0]
    from aspects_routing.testing.xapi import COURSES  # pylint: disable=import-outside-toplevel

    course = rng.choices([key for key, _w in COURSES], weights=[w for _k, w in COURSES])[0]
    return {
        "name": name,
        "event_type": name,
        "event_source": "server",
        "time": now.isoformat(),
        "context": {"course_id": course, "user_id": rng.randint(1, 5000), "org_id": course.split(":")[1].split("+")[0]},
        "event": {"id": f"block-v1:{course[10:]}+type@video+block@{rng.randint(1, 200)}"},
    }


def lrs_statements(client, count: int, now: datetime) -> list[dict]:
    """
    ``count`` of the seeded xAPI statements, re-stamped ``now`` with fresh ids.

    tincan (which event-routing-backends sends with) accepts only RFC 4122 UUIDs,
    so the statement id and registration get new ``uuid4`` values.
    """
    rows = client.query(
        "SELECT event FROM xapi.xapi_events_all ORDER BY emission_time DESC LIMIT {n:UInt32}", parameters={"n": count}
    ).result_rows
    statements = []
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for (raw,) in rows:
        statement = json.loads(raw)
        statement["id"] = str(uuid.uuid4())
        statement.setdefault("context", {})["registration"] = str(uuid.uuid4())
        statement["timestamp"] = stamp
        statements.append(statement)
    return statements


def store_statements(client, statements: list[dict]) -> int:
    """Write statements to the xAPI table the way Ralph's ClickHouse backend does (id, timestamp, JSON)."""
    rows = [
        (uuid.UUID(s["id"]), datetime.fromisoformat(s["timestamp"]), json.dumps(s, separators=(",", ":")))
        for s in statements
    ]
    if rows:
        client.insert("xapi_events_all", rows, database="xapi", column_names=["event_id", "emission_time", "event"])
    return len(rows)


def wait_drained(redis_url: str, published: int, timeout: float) -> bool:
    """True once the queue is empty and the metrics store counts every published task as finished."""
    import redis  # pylint: disable=import-outside-toplevel

    from aspects_routing.metrics import api  # pylint: disable=import-outside-toplevel

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if client.llen(QUEUE) == 0:
                report = api.collect(windows=(60,))
                if report.available and report.window(60).counts.finished >= published:
                    return True
            time.sleep(0.5)
        return False
    finally:
        client.close()


def parse_args(argv=None) -> argparse.Namespace:
    """The demo's options."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--dir", help="Where to leave the data (default: a new directory under the system temp dir).")
    parser.add_argument("--days", type=int, default=30, help="Days of xAPI events to seed (default 30).")
    parser.add_argument("--events-per-day", type=int, default=20_000, help="Seeded xAPI events per day (default 20000).")
    parser.add_argument("--burst", type=int, default=1500, help="Tracking events (send_event tasks) in the burst.")
    parser.add_argument("--statements", type=int, default=300, help="xAPI statements (dispatch_event tasks) in the burst.")
    args = parser.parse_args(argv)
    for name in ("days", "events_per_day", "burst", "statements"):
        if getattr(args, name) < (1 if name in ("days", "events_per_day") else 0):
            parser.error(f"--{name.replace('_', '-')} must be a positive number")
    return args


def main(argv=None) -> int:  # pylint: disable=too-many-locals,too-many-statements
    """Run the demo; return the process exit status."""
    args = parse_args(argv)
    step = Step()
    out = Path(args.dir).resolve() if args.dir else Path(tempfile.mkdtemp(prefix="aspects-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    if (out / "chdb").exists():
        raise SystemExit(f"{out / 'chdb'} exists: the demo seeds a fresh database; pass a new --dir.")
    dsn = f"chdb://{out / 'chdb'}"

    redis_server = RedisServer(out / "redis")
    step(f"redis-server started on {redis_server.url} (broker and metrics store)")
    # Imported late: the LRS stand-in is ours, but nothing Django-related may load before the environment is set.
    from demo.lrs import LrsStandIn  # pylint: disable=import-outside-toplevel

    lrs = LrsStandIn()
    step(f"Ralph stand-in (xAPI statements endpoint) listening on {lrs.url}")
    env = {
        "REDIS_URL": redis_server.url,
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "ASPECTS_DEMO_CLICKHOUSE_DSN": dsn,
        "ASPECTS_DEMO_RALPH_URL": lrs.url,
    }
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # The LMS's own log lines (e.g. platform-plugin-aspects saying edx-platform's models are
    # missing from the test LMS) go to a file, so the terminal shows the demo and the report.
    logging.basicConfig(filename=out / "lms.log", level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker = None
    try:
        import django  # pylint: disable=import-outside-toplevel

        django.setup()
        # pylint: disable=import-outside-toplevel
        import clickhouse_connect
        from event_routing_backends.tasks import dispatch_event
        from eventtracking.tasks import send_event

        from aspects_routing.metrics import flush
        from aspects_routing.scaling.configgen.service import ConfigOptions, plan, summary, write_files
        from aspects_routing.scaling.render import render
        from aspects_routing.scaling.report import ReportOptions, build_report
        from aspects_routing.testing.xapi import seed_xapi_events

        client = clickhouse_connect.get_client(dsn=dsn)
        seed = seed_xapi_events(client, days=args.days, events_per_day=args.events_per_day)
        step(f"chDB {dsn}: Aspects xAPI table seeded with {seed.rows:,} events over {args.days} days "
             f"in {seed.seconds:.1f} s")

        worker_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        worker = CeleryWorker(worker_env, out / "worker.log")
        worker.wait_ready()
        step(f"Celery worker {WORKER_NAME.replace('%h', socket.gethostname())} ready, consuming {QUEUE} "
             f"(log: {out / 'worker.log'})")

        now = datetime.now(timezone.utc)
        rng = random.Random(7)
        statements = lrs_statements(client, args.statements, now)
        for _ in range(args.burst):
            send_event.delay("event_transformer", tracking_event(rng, now))
        host = {"url": f"{lrs.url}/xAPI/", "version": "1.0.3"}
        for statement in statements:
            dispatch_event.delay(statement["verb"]["display"]["en"], statement, "XAPI_LRS", host)
        flush()
        published = args.burst + len(statements)
        step(f"burst published: {args.burst} send_event + {len(statements)} dispatch_event tasks on {QUEUE}")

        if wait_drained(redis_server.url, published, timeout=90):
            step("worker drained the burst")
        else:
            step("the burst did not drain within 90 s; the report shows the backlog")
        stored = store_statements(client, lrs.take())
        step(f"Ralph stand-in received {lrs.received} statements; {stored} written to xapi.xapi_events_all")

        report = build_report(ReportOptions(timeout=30))
        step(f"scaling report built in {report.elapsed_seconds:.1f} s: status {report.status}")
        print()
        print(render(report, "text"), flush=True)
        for fmt, suffix in (("text", "txt"), ("json", "json"), ("markdown", "md")):
            (out / f"report.{suffix}").write_text(render(report, fmt), encoding="utf-8")

        configs = out / "configs"
        result = plan(ConfigOptions(service="all", format="both", output=str(configs), force=True), source=report.measured)
        write_files(result.files, str(configs), force=True)
        print(summary(result, f"written under {configs}"), flush=True)
        step(f"{len(result.files)} config files written under {configs}")
    finally:
        if worker is not None:
            worker.stop()
        lrs.stop()
        redis_server.stop()

    print()
    print("The demo left its data in", out)
    print(f"  chDB database (xapi.xapi_events_all)  {out / 'chdb'}")
    print(f"  scaling report                         {out / 'report.txt'}, report.json, report.md")
    print(f"  sized configs                          {out / 'configs'}")
    print(f"  Celery worker log, demo LMS log        {out / 'worker.log'}, {out / 'lms.log'}")
    print(f"  redis-server files (server stopped)    {out / 'redis'}")
    step("done")
    return 0
