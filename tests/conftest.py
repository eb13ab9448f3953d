"""Shared fixtures: a real Redis, the test LMS's Celery app, real workers."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def redis_url():
    """URL of the Redis used as broker (set by tests.redis_server)."""
    return os.environ["REDIS_URL"]


@pytest.fixture
def redis_client(redis_url):
    """A client on the broker's database, emptied before and after each test."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture
def celery_app():
    """The test LMS's Celery app (built like edx-platform's)."""
    from tests.celery_app import APP  # pylint: disable=import-outside-toplevel

    return APP


def subprocess_env(**extra):
    """Environment for child processes that load the test LMS."""
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings.edx_order")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update({k: str(v) for k, v in extra.items()})
    return env


def stop_process_group(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM a child started in its own session, and its children; SIGKILL them after ``timeout`` s."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Worker:
    """A real ``celery worker`` in a subprocess, started as Tutor's lms-worker is."""

    def __init__(self, args, env, log_path):
        self.log_path = log_path
        self._log = open(log_path, "wb")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-m", "celery", "--app=tests.celery_app", "worker", "--loglevel=info", *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log(self) -> str:
        return Path(self.log_path).read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited early:\n{self.log()}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log()}")

    def stop(self):
        stop_process_group(self.proc, timeout=20)
        self._log.close()


@pytest.fixture
def start_worker(tmp_path):
    """Factory: ``start_worker(*celery_args, **env)`` returns a ready :class:`Worker`."""
    workers = []

    def start(*args, **env):
        worker = Worker(list(args), subprocess_env(**env), tmp_path / f"worker{len(workers)}.log")
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate, timeout=60, interval=0.2) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture
def spare_redis():
    """Factory: ``spare_redis(password=None)`` starts a private redis-server the test may stop; all stop after."""
    import shutil  # pylint: disable=import-outside-toplevel
    import tempfile  # pylint: disable=import-outside-toplevel

    from port_for import get_port  # pylint: disable=import-outside-toplevel
    from pytest_redis.executor import RedisExecutor  # pylint: disable=import-outside-toplevel

    started = []

    def start(password=None):
        executor = RedisExecutor(
            executable=shutil.which("redis-server"),
            databases=4,
            redis_timeout=30,
            loglevel="warning",
            host="127.0.0.1",
            port=get_port(None),
            datadir=Path(tempfile.mkdtemp(prefix="aspects-spare-redis-")),
            save="",
            appendonly="no",
            password=password,
        )
        executor.start()
        started.append(executor)
        return executor

    yield start
    for executor in started:
        if executor.running():
            executor.stop()
