"""
What the task metrics cost: ratios against a baseline measured in the same run.

Run from the repository root (about two minutes on 2 cores)::

    PYTHONPATH=. python benchmarks/bench_metrics.py [--tasks 1500] [--rounds 3]

It starts a private redis-server (broker and metrics store, as the default
``METRICS_REDIS_URL`` = broker), then measures:

1. **Per-task cost of the hooks.** The ``before_task_publish`` hook alone
   (Celery's signal dispatch included) for an Aspects task and for another
   task; the worker-side hooks through ``send_event.apply()`` (Celery's tracer
   and signals, in process); and the added time per ``send_event.delay()`` on
   the real broker with the hooks installed vs not (alternating batches; medians).
2. **Publish + consume throughput.** A real ``celery worker`` (prefork, 2
   children, as Tutor's lms-worker) is started; this process publishes
   ``--tasks`` real ``eventtracking.tasks.send_event`` tasks; the clock stops
   when the worker has logged every one as succeeded.
3. **Consume throughput.** The same, with the queue filled before the worker
   starts (the clock starts when it is ready): the worker side alone.

   Three set-ups, each round in a rotated order, each run with a fresh worker:

   * ``off``: METRICS_ENABLED False everywhere (baseline);
   * ``metrics``: aspects-routing metrics on (publisher and worker);
   * ``events``: metrics off, Celery task events on as event-based exporters
     require (``worker -E`` and ``task_send_sent_event`` on the publisher).

Printed figures are medians over the rounds. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUEUE = "edx.lms.core.aspects"
TRACKING_BACKENDS = {
    "aspects_test": {
        "ENGINE": "eventtracking.backends.async_routing.AsyncRoutingBackend",
        "OPTIONS": {"backend_name": "aspects_test"},
    }
}


def start_redis():
    # Imported here: importing tests.redis_server at module level would start a
    # server as a side effect whenever REDIS_URL is unset.
    from tests.redis_server import start_private_redis  # pylint: disable=import-outside-toplevel

    return start_private_redis("aspects-bench-redis-")


def env_tokens(metrics: bool) -> str:
    return json.dumps(
        {
            "ASPECTS_ROUTING": {"QUEUE": QUEUE, "METRICS_ENABLED": metrics},
            "EVENT_TRACKING_BACKENDS": TRACKING_BACKENDS,
        }
    )


class Worker:
    """A real worker subprocess; counts 'succeeded' lines in its log incrementally."""

    def __init__(self, metrics: bool, events: bool, log_dir: Path, index: int):
        self.log_path = log_dir / f"worker{index}.log"
        self._log = open(self.log_path, "wb")  # pylint: disable=consider-using-with
        env = dict(os.environ, ASPECTS_TEST_ENV_TOKENS=env_tokens(metrics), PYTHONPATH=str(ROOT))
        args = [sys.executable, "-m", "celery", "--app=tests.celery_app", "worker", "--loglevel=info"]
        args += ["--pool=prefork", "--concurrency=2", "--without-mingle", "--without-gossip"]
        if events:
            args.append("-E")
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._offset = 0
        self.succeeded = 0

    def _read_new(self) -> str:
        with open(self.log_path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        # Only whole lines.
        cut = data.rfind(b"\n") + 1
        self._offset += cut
        return data[:cut].decode("utf-8", "replace")

    def wait_ready(self, timeout=90):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log_path.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(self.log_path.read_text(errors="replace"))
            time.sleep(0.1)
        raise RuntimeError("worker not ready")

    def wait_succeeded(self, expected: int, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.succeeded += self._read_new().count(" succeeded in ")
            if self.succeeded >= expected:
                return
            time.sleep(0.02)
        raise RuntimeError(f"only {self.succeeded}/{expected} tasks succeeded")

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


def set_publisher(metrics: bool, events: bool):
    from celery import current_app  # pylint: disable=import-outside-toplevel

    from aspects_routing.metrics import hooks  # pylint: disable=import-outside-toplevel

    if metrics:
        hooks.install()
    else:
        hooks.uninstall()
    current_app.conf.task_send_sent_event = events


def publish(count: int, tag: str) -> float:
    from eventtracking.tasks import send_event  # pylint: disable=import-outside-toplevel

    start = time.perf_counter()
    for i in range(count):
        send_event.delay("aspects_test", {"name": f"bench.{tag}.{i}"})
    return time.perf_counter() - start


def hook_cost(calls: int = 200_000) -> dict[str, float]:
    """Microseconds per ``before_task_publish`` dispatch, with and without the hooks."""
    from celery import signals  # pylint: disable=import-outside-toplevel

    from aspects_routing.metrics import hooks, recorder  # pylint: disable=import-outside-toplevel

    def dispatch(name):
        send = signals.before_task_publish.send
        start = time.perf_counter()
        for _ in range(calls):
            send(sender=name, body=None, exchange="", routing_key=QUEUE, headers={}, properties={}, declare=[])
        return (time.perf_counter() - start) / calls * 1e6

    results = {}
    hooks.uninstall()
    results["no hooks"] = min(dispatch("eventtracking.tasks.send_event") for _ in range(3))
    hooks.install()
    results["aspects task"] = min(dispatch("eventtracking.tasks.send_event") for _ in range(3))
    results["other task"] = min(dispatch("tests.tasks.platform_task") for _ in range(3))
    recorder.BUFFER.drain()  # these were not real publishes
    return results


def worker_hook_cost(calls: int = 20_000, rounds: int = 5) -> tuple[float, float]:
    """
    Median microseconds per ``send_event.apply()`` with the hooks off and on.

    ``apply()`` runs the task through Celery's tracer in this process, with the
    same ``task_prerun`` / ``task_postrun`` / ``task_success`` signals a worker
    sends: the worker-side cost of the hooks without a broker's noise.
    """
    from eventtracking.tasks import send_event  # pylint: disable=import-outside-toplevel

    from aspects_routing.metrics import hooks, recorder  # pylint: disable=import-outside-toplevel

    def run():
        start = time.perf_counter()
        for _ in range(calls):
            send_event.apply(("aspects_test", {"name": "bench"}))
        return (time.perf_counter() - start) / calls * 1e6

    off, on = [], []
    for _ in range(rounds):
        hooks.uninstall()
        off.append(run())
        hooks.install()
        on.append(run())
    recorder.BUFFER.drain()  # not real task runs
    return statistics.median(off), statistics.median(on)


def publish_cost(batch: int = 1000, rounds: int = 5) -> tuple[float, float]:
    """Median microseconds per real ``delay()`` with metrics off and on (alternating)."""
    off, on = [], []
    for index in range(rounds):
        for metrics, into in ((False, off), (True, on)):
            set_publisher(metrics=metrics, events=False)
            into.append(publish(batch, f"pub{index}") / batch * 1e6)
    return statistics.median(off), statistics.median(on)


SETUPS = {"off": (False, False), "metrics": (True, False), "events": (False, True)}
_RUN_NUMBERS = itertools.count()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(name: str, tasks: int, mode: str, log_dir: Path, client) -> tuple[float, float, float]:
    """
    One run of one set-up: (tasks per second, worker CPU seconds, publisher CPU seconds).

    ``mode`` is "publish+consume" (worker ready, then publish) or "consume"
    (queue filled first). Worker CPU is its whole process tree (main process and
    pool children, reaped), startup included; publisher CPU is this process's.
    """
    metrics, events = SETUPS[name]
    client.delete(QUEUE)
    set_publisher(metrics, events)
    publisher_cpu = 0.0
    if mode == "consume":
        publish(tasks, name)
    cpu_before = _children_cpu()
    worker = Worker(metrics, events, log_dir, next(_RUN_NUMBERS))
    try:
        worker.wait_ready()
        start = time.perf_counter()
        if mode == "publish+consume":
            cpu = time.process_time()
            publish(tasks, name)
            publisher_cpu = time.process_time() - cpu
        worker.wait_succeeded(tasks)
        elapsed = time.perf_counter() - start
    finally:
        worker.stop()
    return tasks / max(elapsed, 1e-9), _children_cpu() - cpu_before, publisher_cpu


def throughput(tasks: int, rounds: int, log_dir: Path, broker_url: str, mode: str) -> dict[str, dict[str, float]]:
    """
    Medians per set-up over ``rounds`` rounds (each round in a rotated order, so
    no set-up always goes first): wall-clock tasks/s, and CPU microseconds per
    task on the worker (net of an idle worker's start and stop) and publisher.
    """
    import redis  # pylint: disable=import-outside-toplevel

    client = redis.Redis.from_url(broker_url)
    names = list(SETUPS)
    idle = {name: run_once(name, 0, mode, log_dir, client)[1] for name in names}
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    for round_no in range(rounds):
        order = names[round_no % len(names):] + names[: round_no % len(names)]
        for name in order:
            rate, worker_cpu, publisher_cpu = run_once(name, tasks, mode, log_dir, client)
            runs[name].append((rate, (worker_cpu - idle[name]) / tasks * 1e6, publisher_cpu / tasks * 1e6))
            print(
                f"  round {round_no + 1} {name:8s} {rate:6.0f} tasks/s  worker CPU {runs[name][-1][1]:7.0f} us/task"
                + (f"  publisher CPU {runs[name][-1][2]:5.0f} us/task" if mode == "publish+consume" else ""),
                flush=True,
            )
    return {
        name: {
            "rate": statistics.median(r[0] for r in values),
            "worker_cpu": statistics.median(r[1] for r in values),
            "publisher_cpu": statistics.median(r[2] for r in values),
        }
        for name, values in runs.items()
    }


def print_ratios(medians: dict[str, dict[str, float]]) -> None:
    for name, value in medians.items():
        print(
            f"  median {name:8s} {value['rate']:6.0f} tasks/s  worker CPU {value['worker_cpu']:7.0f} us/task"
            f"  publisher CPU {value['publisher_cpu']:5.0f} us/task"
        )

    def cpu(name):
        return medians[name]["worker_cpu"] + medians[name]["publisher_cpu"]

    for label, a, b in (("metrics on / off", "metrics", "off"), ("task events on / off", "events", "off"),
                        ("metrics on / task events", "metrics", "events")):
        print(
            f"  {label:25s} wall-clock throughput {medians[a]['rate'] / medians[b]['rate']:.3f}"
            f"   CPU-bound throughput (CPU per task {b} / {a}) {cpu(b) / cpu(a):.3f}"
        )
    print("  (targets: metrics on / off >= 0.97; metrics on / task events > 1)")


def profiled_share(broker_url: str, tasks: int = 3000) -> tuple[float, float]:
    """
    A solo worker under cProfile consumes ``tasks`` queued tasks with metrics on:
    (seconds inside aspects-routing's Celery hooks, seconds of the worker's
    profiled work). Deterministic call counts make this steadier than
    wall-clock ratios on a shared machine; cProfile inflates many small calls,
    so the share is an upper bound of the hooks' real cost.
    """
    import pstats  # pylint: disable=import-outside-toplevel

    import redis  # pylint: disable=import-outside-toplevel

    client = redis.Redis.from_url(broker_url)
    client.delete(QUEUE)
    set_publisher(True, False)
    publish(tasks, "profile")
    out = Path(tempfile.mkdtemp(prefix="aspects-profile-")) / "worker.prof"
    env = dict(os.environ, ASPECTS_TEST_ENV_TOKENS=env_tokens(True), PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "celery", "--app=tests.celery_app", "worker",
         "--pool=solo", "--loglevel=warning", "--without-mingle", "--without-gossip", "-Q", QUEUE],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while client.llen(QUEUE) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1)  # the prefetched tail
    proc.send_signal(signal.SIGINT)  # cProfile writes its file on a clean exit
    proc.wait(timeout=60)
    stats = pstats.Stats(str(out)).stats  # {(file, line, name): (cc, nc, tt, ct, callers)}
    hooks = sum(
        value[3] for (path, _line, name), value in stats.items()
        if path.endswith("aspects_routing/metrics/hooks.py") and name.startswith("on_task_")
    )
    # The worker's work on messages: its event loop (kombu's hub), less the time
    # blocked waiting for the broker; startup (Django setup, imports) is left out.
    loop = max(value[3] for (path, _line, name), value in stats.items()
               if path.endswith("kombu/asynchronous/hub.py") and name == "create_loop")
    waiting = sum(value[2] for (_path, _line, name), value in stats.items() if name in (
        "<method 'poll' of 'select.epoll' objects>", "<method 'recv' of '_socket.socket' objects>"))
    shutil.rmtree(out.parent, ignore_errors=True)
    return hooks, loop - waiting


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--tasks", type=int, default=1500, help="tasks per throughput run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the three set-ups")
    parser.add_argument("--sections", default="1234", help="which numbered sections to run (default: all)")
    options = parser.parse_args()

    executor, broker_url = start_redis()
    os.environ["REDIS_URL"] = broker_url  # read by tests.settings for BROKER_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings.edx_order")
    os.environ["ASPECTS_TEST_ENV_TOKENS"] = env_tokens(True)
    sys.path.insert(0, str(ROOT))
    log_dir = Path(tempfile.mkdtemp(prefix="aspects-bench-"))
    try:
        import django  # pylint: disable=import-outside-toplevel

        django.setup()
        from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

        print(f"broker and metrics store: {broker_url} (metrics store {get_config().metrics_redis_url})")

        if "1" in options.sections:
            print("\n1. Per-task cost of the hooks")
            costs = hook_cost()
            print(f"  before_task_publish dispatch, no hooks:        {costs['no hooks']:.2f} us")
            print(f"  ... with hooks, Aspects task:                  {costs['aspects task']:.2f} us "
                  f"(+{costs['aspects task'] - costs['no hooks']:.2f} us)")
            print(f"  ... with hooks, non-Aspects task:              {costs['other task']:.2f} us "
                  f"(+{costs['other task'] - costs['no hooks']:.2f} us)")
            off, on = worker_hook_cost()
            print(f"  send_event.apply() (worker-side signals), metrics off/on: {off:.1f} us / {on:.1f} us "
                  f"(added {on - off:+.1f} us per task, median of 5 x 20000)")
            off, on = publish_cost()
            print(f"  send_event.delay() on Redis, metrics off/on:   {off:.1f} us / {on:.1f} us "
                  f"(added {on - off:+.1f} us per task, median of 5 x 1000)")

        for number, mode in ((2, "publish+consume"), (3, "consume")):
            if str(number) not in options.sections:
                continue
            what = "worker started, then tasks published" if mode == "publish+consume" else "queue filled first"
            print(f"\n{number}. {mode} throughput ({options.tasks} send_event tasks, {what}; prefork, 2 children)")
            print_ratios(throughput(options.tasks, options.rounds, log_dir, broker_url, mode))

        if "4" in options.sections:
            print("\n4. Share of a solo worker's profiled message handling spent in the metrics hooks "
                  "(3000 send_event tasks)")
            hooks, work = profiled_share(broker_url)
            print(f"  hooks {hooks:.3f} s of {work:.3f} s of work -> {hooks / work:.1%}; "
                  f"throughput bound metrics on / off >= {1 - hooks / work:.3f} (target >= 0.97)")
    finally:
        executor.stop()
        shutil.rmtree(log_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
