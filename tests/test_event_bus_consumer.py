"""
Event-bus transport, consumer side: the real ``consume_events`` (openedx-events +
edx-event-bus-redis) in a subprocess transforms tracking events with
event-routing-backends and posts the xAPI statements to an LRS served by this
test; stopping and restarting it with the documented command loses nothing, and
restarting it without ``check_backlog`` loses the backlog.

The consumer and the emitting processes share a SQLite file (users and the
``RouterConfiguration``), migrated by Django's own ``migrate``.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from aspects_routing.metrics.event_bus_lag import RISK_UNSAFE_START, read_event_bus_lag
from aspects_routing.transport import consumer_command
from aspects_routing.transport.consumer import claim_threshold
from tests.conftest import ROOT, Worker, subprocess_env
from tests.test_event_bus import STREAM, emit

pytestmark = pytest.mark.slow

SETTINGS = "tests.settings.tutor_event_bus"
GROUP = "event_routing_backends"


class LRS:
    """A minimal xAPI LRS: records every statement PUT or POSTed to ``/statements``."""

    def __init__(self):
        self.statements = []
        self.changed = threading.Condition()
        # hold(): the request carrying the statement about ``_hold`` waits in the handler
        # until release(); meanwhile the consumer is inside its POST, holding the entry.
        self._hold: str | None = None
        self._held = threading.Event()
        self._release = threading.Event()
        self._keep_held = True
        lrs = self

        class Handler(BaseHTTPRequestHandler):
            def _store(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                statement = json.loads(body)
                statements = statement if isinstance(statement, list) else [statement]
                if lrs._hold is not None and lrs._hold in [s["object"]["id"] for s in statements]:
                    lrs._held.set()
                    lrs._release.wait(120)
                    if not lrs._keep_held:  # the sender died: its POST never completed
                        return None
                with lrs.changed:
                    lrs.statements.extend(statements)
                    lrs.changed.notify_all()
                return statement

            def do_PUT(self):  # noqa: N802  (http.server's naming)
                if self._store() is None:
                    self.send_error(503)
                    return
                self.send_response(204)
                self.end_headers()

            def do_POST(self):  # noqa: N802
                statement = self._store()
                if statement is None:
                    self.send_error(503)
                    return
                ids = json.dumps([s.get("id") for s in (statement if isinstance(statement, list) else [statement])])
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(ids.encode())

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def objects(self) -> list[str]:
        with self.changed:
            return [s["object"]["id"] for s in self.statements]

    def wait_for(self, url: str, timeout: float = 90) -> list[str]:
        """Block until the statement about ``url`` arrived; return every object id received so far."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while url not in [s["object"]["id"] for s in self.statements]:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no statement about {url} reached the LRS; got {self.objects()}")
                self.changed.wait(left)
        return self.objects()

    def hold(self, url: str) -> None:
        """Make the request carrying the statement about ``url`` wait until :meth:`release`."""
        self._hold, self._keep_held = url, True
        self._held.clear()
        self._release.clear()

    def wait_held(self, timeout: float = 90) -> None:
        if not self._held.wait(timeout):
            raise AssertionError(f"no request about {self._hold} reached the LRS; got {self.objects()}")

    def release(self, keep: bool) -> None:
        """Let the held request finish; ``keep=False``: as if its sender died, the statement is not stored."""
        self._keep_held = keep
        self._hold = None
        self._release.set()

    def close(self):
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


SETUP = """
import django, sys
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection
from event_routing_backends.models import RouterConfiguration

# edx-platform runs on MySQL, whose default collation compares case-insensitively;
# event-routing-backends relies on it (routers are stored as "xAPI" and looked up
# as "xapi"). SQLite compares bytes, so give that one column MySQL's behaviour.
table = RouterConfiguration._meta.db_table
with connection.cursor() as cursor:
    sql = cursor.execute("SELECT sql FROM sqlite_master WHERE name = %s", [table]).fetchone()[0]
    cursor.execute(f'ALTER TABLE "{table}" RENAME TO "{table}_binary"')
    cursor.execute(sql.replace('"backend_name" varchar(50) NOT NULL', '"backend_name" varchar(50) NOT NULL COLLATE NOCASE'))
    cursor.execute(f'INSERT INTO "{table}" SELECT * FROM "{table}_binary"')
    cursor.execute(f'DROP TABLE "{table}_binary"')

get_user_model().objects.create(id=1, username="learner", email="learner@example.com")
RouterConfiguration.objects.create(
    backend_name=RouterConfiguration.XAPI_BACKEND, enabled=True, route_url=sys.argv[1]
)
"""


@pytest.fixture
def lrs():
    server = LRS()
    yield server
    server.close()


@pytest.fixture
def lms_db(tmp_path, lrs):
    """A migrated SQLite file with one learner and an xAPI router pointing at the test LRS."""
    path = tmp_path / "lms.sqlite3"
    env = subprocess_env(DJANGO_SETTINGS_MODULE=SETTINGS, ASPECTS_TEST_DB=path)
    run = {"cwd": ROOT, "env": env, "check": True, "timeout": 180, "capture_output": True}
    subprocess.run([sys.executable, "-m", "django", "migrate", "--noinput"], **run)
    subprocess.run([sys.executable, "-c", SETUP, lrs.url], **run)
    return path


class Consumer(Worker):
    """A real ``consume_events`` process (stopped and logged like the conftest's Celery worker)."""

    def __init__(self, argv, db, log_path):  # pylint: disable=super-init-not-called
        self.log_path = log_path
        self._log = open(log_path, "wb")  # pylint: disable=consider-using-with
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            argv,
            cwd=ROOT,
            env=subprocess_env(DJANGO_SETTINGS_MODULE=SETTINGS, ASPECTS_TEST_DB=db),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@pytest.fixture
def start_consumer(tmp_path, lms_db, redis_client):
    """``start_consumer(argv)``: run it and wait until it polls its group."""
    consumers = []

    def start(argv):
        _wait(lambda: not _polling(redis_client), "the previous consumer to disconnect")
        consumer = Consumer(argv, lms_db, tmp_path / f"consumer-{len(consumers)}.log")
        consumers.append(consumer)
        try:
            # Once a client blocks in XREADGROUP, the consumer has created (or moved)
            # its group: from then on, what is produced is for it. (A consumer shows
            # in XINFO CONSUMERS only after its first delivery, so that cannot be used.)
            _wait(lambda: _polling(redis_client), "the consumer to poll", consumer)
        except RuntimeError:
            consumer.stop()
            raise
        return consumer

    yield start
    for consumer in consumers:
        consumer.stop()


def _polling(client) -> bool:
    return any(c.get("cmd") == "xreadgroup" for c in client.client_list())


def _wait(condition, what: str, consumer=None, timeout: float = 90):
    deadline = time.monotonic() + timeout
    while not condition():
        if (consumer and consumer.proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}:\n{consumer.log() if consumer else ''}")
        time.sleep(0.1)


def documented(name: str) -> list[str]:
    """The package's consumer command, run through this test LMS's manage.py equivalent."""
    return consumer_command(consumer_name=name, manage=(sys.executable, "-m", "django"))


def urls(prefix: str, n: int) -> list[str]:
    return [f"http://example.com/{prefix}/{i}" for i in range(n)]


def lag(settings):
    settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus"}
    return read_event_bus_lag(timeout=5)


def settled(settings, consumer=None):
    """
    Wait until the group has acknowledged every entry it was delivered.

    edx-event-bus-redis acknowledges an entry (``XACK``, in a ``finally``) only
    after its receivers ran, i.e. after the statement reached the LRS: a test that
    reads the group as soon as the LRS has the statement races that ``XACK`` and
    sees one entry pending (the old flake ``(0, 1, (), ()) == (0, 0, (), ())``).
    """
    _wait(lambda: lag(settings).group(GROUP).pending == 0, "the consumer to acknowledge what it processed", consumer)


def test_statements_reach_the_lrs_and_a_restart_loses_nothing(lrs, start_consumer, settings):
    first = start_consumer(documented("consumer-a"))
    emit(urls("live", 2), DJANGO_SETTINGS_MODULE=SETTINGS)
    assert lrs.wait_for(urls("live", 2)[-1]) == urls("live", 2)
    settled(settings, first)  # stopped before its XACK, the last entry would stay pending on consumer-a
    first.stop()

    # Produced while no consumer runs: waiting in the stream, counted as lag.
    backlog = urls("while-down", 5)
    emit(backlog, DJANGO_SETTINGS_MODULE=SETTINGS)
    measured = lag(settings)
    group = measured.group(GROUP)
    assert (measured.length, group.lag, group.pending) == (7, 5, 0)
    assert [c.name for c in group.consumers] == ["consumer-a"]

    second = start_consumer(documented("consumer-b"))
    assert lrs.wait_for(backlog[-1]) == urls("live", 2) + backlog
    settled(settings, second)
    group = lag(settings).group(GROUP)
    assert (group.lag, group.pending, group.unsafe_starts, group.skip_risks) == (0, 0, (), ())


def test_consumers_stopped_while_holding_an_entry_lose_nothing(lrs, start_consumer, settings, redis_client):
    """
    Ten rounds: a consumer started with the generated arguments under a new name is
    stopped while it holds an entry (inside the POST of its statement), by SIGTERM
    (rollouts, KEDA scale-in) or SIGKILL (the grace period ran out, a node died)
    in turn. Every statement reaches the LRS.

    SIGTERM: the plugin's handler lets the consumer finish and acknowledge the
    entry, then exit 0. SIGKILL: the entry stays pending on the dead name until a
    consumer *starts* after it has been idle for ``claim_msgs_older_than`` (the
    package claims only at start); the next round's consumer is started once that
    is true, as a replacement pod starts after the old one is gone.
    """
    threshold = claim_threshold().idle_ms
    rounds = 10
    sent = urls("held", 3 * rounds)
    emit(sent, DJANGO_SETTINGS_MODULE=SETTINGS)  # all in the stream; each round's consumer gets to the next three
    for number in range(rounds):
        name, sig = f"consumer-{number}", (signal.SIGTERM, signal.SIGKILL)[number % 2]
        held = sent[3 * number + 1]
        lrs.hold(held)
        consumer = start_consumer(documented(name))
        lrs.wait_held()
        os.kill(consumer.proc.pid, sig)
        if sig == signal.SIGTERM:
            lrs.release(keep=True)  # the POST completes; the consumer acknowledges the entry and exits
            assert consumer.proc.wait(timeout=60) == 0, consumer.log()
            assert "SIGTERM: finishing stream entry" in consumer.log()
            assert redis_client.xpending_range(STREAM, GROUP, "-", "+", 10, consumername=name) == []
        else:
            assert consumer.proc.wait(timeout=60) == -signal.SIGKILL
            lrs.release(keep=False)  # the statement about ``held`` never reached the LRS
            pending = redis_client.xpending_range(STREAM, GROUP, "-", "+", 10, consumername=name)
            assert len(pending) == 1  # left on a name that will never come back
            _wait(
                lambda: redis_client.xpending_range(STREAM, GROUP, "-", "+", 10, consumername=name, idle=threshold),
                f"the entry held by {name} to be idle for {threshold} ms",
            )
            # Seen: the lag reader names the consumer holding it past the threshold.
            stalled = lag(settings).group(GROUP).stalled_consumers
            assert [(c.name, c.stalled) for c in stalled] == [(name, 1)]
    last = start_consumer(documented("consumer-last"))
    lrs.wait_for(sent[-1])
    settled(settings, last)
    received = lrs.objects()
    assert sorted(set(received)) == sorted(sent)  # N of N; a resent statement would be deduplicated by Ralph
    assert lag(settings).group(GROUP).pending == 0


def test_a_restart_without_check_backlog_skips_the_backlog(lrs, start_consumer, settings):
    start_consumer(documented("consumer-a")).stop()
    backlog = urls("while-down", 4)
    emit(backlog, DJANGO_SETTINGS_MODULE=SETTINGS)
    assert lag(settings).group(GROUP).lag == 4

    unsafe = documented("consumer-b")
    unsafe[-1] = json.dumps({"consumer_name": "consumer-b"})  # what the openedx-events docs show: no check_backlog
    start_consumer(unsafe)
    marker = urls("after-restart", 1)
    emit(marker, DJANGO_SETTINGS_MODULE=SETTINGS)
    # The consumer reads the stream in order: had the backlog been delivered, it would be here before the marker.
    assert lrs.wait_for(marker[0]) == marker

    group = lag(settings).group(GROUP)
    assert RISK_UNSAFE_START in group.skip_risks
    assert [(s.consumer, s.skipped) for s in group.unsafe_starts] == [("consumer-b", 4)]
    assert group.skipped == 4


def test_celery_tasks_queued_before_the_switch_are_still_delivered(lrs, lms_db, start_worker, redis_client):
    """
    Switching TRANSPORT to "event_bus" with send_event tasks still queued: a worker
    running the new settings delivers them (its rebuilt tracker's event_transformer
    hands them to the SyncEventsRouter), so the switch loses nothing.
    """
    queued = urls("queued-before-switch", 3)
    emit(queued, DJANGO_SETTINGS_MODULE="tests.settings.tutor_order")  # the Celery transport
    assert redis_client.llen("edx.lms.core.aspects") == 3
    worker = start_worker("--pool=solo", DJANGO_SETTINGS_MODULE=SETTINGS, ASPECTS_TEST_DB=lms_db)
    for url in queued:
        lrs.wait_for(url)
    assert sorted(lrs.objects()) == sorted(queued)
    assert redis_client.llen("edx.lms.core.aspects") == 0
    # Sent from inside send_event (sync router), not through a second Celery task.
    log = worker.log()
    assert log.count("Task eventtracking.tasks.send_event[") >= 3
    assert "Task event_routing_backends.tasks.dispatch_event" not in log
