"""
The embedded demo: ``python -m demo [--dir DIR]`` (``make demo``).

With no external services it runs the real Aspects pipeline of an LMS:

1. starts a private ``redis-server`` on a free port (Celery broker and metrics store);
2. migrates the demo LMS's database (a SQLite file), adds learners and an xAPI
   ``RouterConfiguration`` pointing at a stand-in for Ralph (:mod:`demo.lrs`);
3. creates an embedded chDB database with the Aspects xAPI table
   (:mod:`aspects_routing.testing.xapi`) and seeds a month of synthetic events;
4. starts a real Celery worker on the Aspects queue;
5. emits a burst of tracking events through event-tracking, as the LMS does:
   each becomes an ``eventtracking.tasks.send_event`` task, which
   event-routing-backends turns into an xAPI statement and a ``dispatch_event``
   task, which posts it to the LRS -- where the statements are counted and then
   written to the xAPI table, as Ralph's ClickHouse backend does;
6. fails if a statement is missing at the LRS (a failure caught inside a task,
   which task metrics count as a success) or if any process logged a traceback;
7. prints the full ``aspects_scaling_report``, writes it in every format, and
   writes the sized configs (``aspects_scaling_config --services all``) next to it;
8. stops its processes and prints where it left its data, how big it is and how
   to remove it.

The LMS is the test LMS (``demo/settings.py`` over ``tests/settings``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shlex
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
#: Tracking events the burst emits, with their weights (rough proportions of a course's traffic).
#: Each is on event-routing-backends' xAPI list, so each becomes one statement.
TRACKING_EVENTS = (
    ("play_video", 30),
    ("pause_video", 20),
    ("edx.ui.lms.sequence.next_selected", 15),
    ("edx.ui.lms.link_clicked", 10),
    ("edx.ui.lms.outline.selected", 10),
    ("edx.course.enrollment.activated", 5),
    ("edx.grades.subsection.grade_calculated", 10),
)
TRACEBACK = b"Traceback (most recent call last)"


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


#: A course the demo LMS does not know (no course overview): event-routing-backends cannot
#: transform its events, logs the error inside the task, and the task still succeeds.
UNKNOWN_COURSE = "course-v1:OpenedX+Removed+2020"


def emit_tracking_event(tracker, rng: random.Random, learners: int, course: str | None = None) -> str:
    """Emit one tracking event through event-tracking, with the context the LMS gives it; return its name."""
    from aspects_routing.testing.xapi import COURSES  # pylint: disable=import-outside-toplevel

    name = rng.choices([n for n, _w in TRACKING_EVENTS], weights=[w for _n, w in TRACKING_EVENTS])[0]
    course = course or rng.choices([key for key, _w in COURSES], weights=[w for _k, w in COURSES])[0]
    user_id = rng.randint(1, learners)
    block = f"block-v1:{course[10:]}+type@{{}}+block@{{}}"
    video = {"id": f"video{rng.randint(1, 40)}", "currentTime": round(rng.uniform(0, 600), 1), "code": "html5",
             "duration": 600}
    data = {
        "play_video": video,
        "pause_video": video,
        "edx.ui.lms.sequence.next_selected": {"id": block.format("sequential", f"s{rng.randint(1, 12)}"),
                                              "current_tab": 1, "tab_count": 4, "target_tab": 2,
                                              "widget_placement": "top"},
        "edx.ui.lms.link_clicked": {"current_url": f"https://lms.example.com/courses/{course}/",
                                    "target_url": f"https://lms.example.com/courses/{course}/progress"},
        "edx.ui.lms.outline.selected": {"target_url": f"https://lms.example.com/courses/{course}/jump_to/x",
                                        "target_name": f"Week {rng.randint(1, 8)}", "widget_placement": "accordion"},
        "edx.course.enrollment.activated": {"course_id": course, "user_id": user_id, "mode": "audit"},
        "edx.grades.subsection.grade_calculated": {
            "block_id": block.format("sequential", f"s{rng.randint(1, 12)}"), "course_id": course,
            "user_id": str(user_id), "weighted_total_earned": 1, "weighted_total_possible": 2,
            "weighted_graded_earned": 1, "weighted_graded_possible": 2, "course_version": "v1",
            "event_transaction_id": str(uuid.uuid4()), "event_transaction_type": "edx.grades.problem.submitted",
            "first_attempted": None, "subtree_edited_timestamp": None, "visible_blocks_hash": "h",
        },
    }[name]
    context = {
        "course_id": course, "org_id": course.split(":")[1].split("+")[0], "user_id": user_id,
        "username": f"learner{user_id}", "session": uuid.uuid4().hex, "path": f"/courses/{course}/",
        "referer": f"https://lms.example.com/courses/{course}/", "event_source": "browser",
        "module": {"usage_key": block.format("video", data.get("id", "v")), "display_name": "Lecture"},
    }
    with tracker.context("demo", context):
        tracker.emit(name, data)
    return name


def store_statements(client, statements: list[dict]) -> int:
    """Write statements to the xAPI table the way Ralph's ClickHouse backend does (id, timestamp, JSON)."""
    rows = [
        (uuid.UUID(s["id"]), datetime.fromisoformat(s["timestamp"]), json.dumps(s, separators=(",", ":")))
        for s in statements
    ]
    if rows:
        client.insert("xapi_events_all", rows, database="xapi", column_names=["event_id", "emission_time", "event"])
    return len(rows)


def wait_pipeline(redis_url: str, lrs, expected: int, timeout: float) -> bool:
    """
    True once the pipeline is idle: the Aspects queue is empty, the metrics store
    counts every published task as finished, and the LRS holds ``expected``
    statements (or stopped receiving: a shortfall is reported by the caller).
    """
    import redis  # pylint: disable=import-outside-toplevel

    from aspects_routing.metrics import api  # pylint: disable=import-outside-toplevel

    client = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    idle_since, last = None, None
    try:
        while time.monotonic() < deadline:
            report = api.collect(windows=(60,))
            counts = report.window(60).counts if report.available else None
            idle = client.llen(QUEUE) == 0 and counts is not None and counts.finished >= counts.published > 0
            state = (lrs.received, counts.finished if counts else None)
            if idle and lrs.received >= expected:
                return True
            # Idle with a shortfall: done once nothing has moved for 5 s (tasks still
            # being published would show as published > finished).
            if idle and state == last:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= 5:
                    return True
            else:
                idle_since = None
            last = state
            time.sleep(0.5)
        return False
    finally:
        client.close()


def tracebacks(*logs: Path) -> dict[Path, int]:
    """Tracebacks written to each log (only logs that have any)."""
    found = {log: log.read_bytes().count(TRACEBACK) for log in logs if log.exists()}
    return {log: n for log, n in found.items() if n}


def size_of(path: Path) -> int:
    """Bytes under ``path`` (a file or a directory)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def human(size: int) -> str:
    """``size`` bytes as B, KB, MB or GB (powers of 1024)."""
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def parse_args(argv=None) -> argparse.Namespace:
    """The demo's options."""
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--dir", help="Where to leave the data (default: a new directory under the system temp dir).")
    parser.add_argument("--days", type=int, default=30, help="Days of xAPI events to seed (default 30).")
    parser.add_argument("--events-per-day", type=int, default=20_000, help="Seeded xAPI events per day (default 20000).")
    parser.add_argument("--burst", type=int, default=600,
                        help="Tracking events emitted (each one send_event and one dispatch_event task; default 600).")
    parser.add_argument("--unknown-course-events", type=int, default=0, metavar="N",
                        help="Also emit N events for a course the LMS does not know: a failure caught inside "
                        "event-routing-backends' task, which task metrics count as a success (the demo then fails).")
    args = parser.parse_args(argv)
    if args.unknown_course_events < 0:
        parser.error("--unknown-course-events must be 0 or more")
    for name in ("days", "events_per_day", "burst"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be a positive number")
    return args


def main(argv=None) -> int:  # pylint: disable=too-many-locals,too-many-statements,too-many-branches
    """Run the demo; return the process exit status (1 if the pipeline lost statements or logged tracebacks)."""
    args = parse_args(argv)
    step = Step()
    out = Path(args.dir).resolve() if args.dir else Path(tempfile.mkdtemp(prefix="aspects-demo-"))
    out.mkdir(parents=True, exist_ok=True)
    if (out / "chdb").exists() or (out / "lms.sqlite3").exists():
        raise SystemExit(f"{out} holds a previous demo's databases: the demo starts fresh; pass a new --dir.")
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
        "ASPECTS_TEST_DB": str(out / "lms.sqlite3"),
        "ASPECTS_DEMO_CLICKHOUSE_DSN": dsn,
        "ASPECTS_DEMO_RALPH_URL": lrs.url,
    }
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    # The LMS's own log lines go to a file, so the terminal shows the demo and the report.
    # Outside edx-platform, platform-plugin-aspects logs "ERROR ... Unable to load model" once
    # per edx-platform model it looks for at startup (UserProfile, CourseOverview, Tag...):
    # expected here, and said once below.
    lms_log = out / "lms.log"
    logging.basicConfig(filename=lms_log, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker = None
    failures = []
    try:
        import django  # pylint: disable=import-outside-toplevel

        django.setup()
        # pylint: disable=import-outside-toplevel
        import clickhouse_connect
        from eventtracking import tracker

        from aspects_routing.metrics import api, flush
        from aspects_routing.scaling.configgen.service import ConfigOptions, plan, summary, write_files
        from aspects_routing.scaling.render import render
        from aspects_routing.scaling.report import ReportOptions, build_report
        from aspects_routing.testing.xapi import seed_xapi_events
        from demo.lms import LEARNERS, prepare_database

        with open(lms_log, "a", encoding="utf-8") as log:
            prepare_database(f"{lrs.url}/xAPI/", log)
        step(f"LMS database migrated ({out / 'lms.sqlite3'}): {LEARNERS} learners, an xAPI router to {lrs.url}/xAPI/")

        client = clickhouse_connect.get_client(dsn=dsn)
        seed = seed_xapi_events(client, days=args.days, events_per_day=args.events_per_day)
        step(f"chDB {dsn}: Aspects xAPI table seeded with {seed.rows:,} events over {args.days} days "
             f"in {seed.seconds:.1f} s")

        worker_env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        worker = CeleryWorker(worker_env, out / "worker.log")
        worker.wait_ready()
        step(f"Celery worker {WORKER_NAME.replace('%h', socket.gethostname())} ready, consuming {QUEUE} "
             f"(log: {out / 'worker.log'})")

        rng = random.Random(7)
        emitted = [emit_tracking_event(tracker.get_tracker(), rng, LEARNERS) for _ in range(args.burst)]
        emitted += [emit_tracking_event(tracker.get_tracker(), rng, LEARNERS, UNKNOWN_COURSE)
                    for _ in range(args.unknown_course_events)]
        flush()
        step(f"burst emitted: {len(emitted)} tracking events through event-tracking "
             f"({len(set(emitted))} kinds), each a send_event task on {QUEUE}")

        if wait_pipeline(redis_server.url, lrs, expected=len(emitted), timeout=180):
            step("worker drained the burst")
        else:
            step("the burst did not drain within 180 s; the report shows the backlog")
        hour = api.collect(windows=(60,)).window(60)
        per_task = {t.task.rsplit(".", 1)[-1]: t.counts.succeeded for t in hour.per_task}
        step(f"tasks: {hour.counts.published} published, {hour.counts.succeeded} succeeded, "
             f"{hour.counts.failed} failed ({', '.join(f'{n} {k}' for k, n in sorted(per_task.items()))})")
        received = lrs.received
        stored = store_statements(client, lrs.take())
        step(f"LRS received {received} xAPI statements for {len(emitted)} tracking events; "
             f"{stored} written to xapi.xapi_events_all")
        if received < len(emitted):
            failures.append(
                f"{len(emitted) - received} of {len(emitted)} tracking events never reached the LRS although "
                f"{hour.counts.failed} task(s) failed: event-routing-backends catches and logs errors inside its "
                f"tasks, so task metrics count them as successes. See {out / 'worker.log'}."
            )

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

    logging.shutdown()
    for log, count in tracebacks(out / "worker.log", lms_log).items():
        failures.append(f"{count} traceback(s) in {log}")
    model_lines = sum(log.read_text(encoding="utf-8", errors="replace").count("Unable to load model")
                      for log in (lms_log, out / "worker.log") if log.exists())
    print()
    print("The demo left its data in", out)
    print(f"  LMS database (SQLite)                  {out / 'lms.sqlite3'}")
    print(f"  chDB database (xapi.xapi_events_all)  {out / 'chdb'}")
    print(f"  scaling report                         {out / 'report.txt'}, report.json, report.md")
    print(f"  sized configs                          {out / 'configs'}")
    print(f"  Celery worker log                      {out / 'worker.log'} ({human(size_of(out / 'worker.log'))})")
    print(f"  demo LMS log                           {lms_log} ({human(size_of(lms_log))})")
    print(f"  redis-server files (server stopped)    {out / 'redis'}")
    print(f"  {human(size_of(out))} in all; remove it with: rm -rf {shlex.quote(str(out))}")
    if model_lines:
        print(f"  (the logs hold {model_lines} 'ERROR ... Unable to load model' lines from platform-plugin-aspects: "
              "at startup it looks for edx-platform's models, which exist only in a real LMS or CMS.)")
    if failures:
        print()
        for failure in failures:
            print("DEMO FAILED:", failure)
        step("failed")
        return 1
    step("done")
    return 0
