"""
The process-wide recorder: one :class:`~aspects_routing.metrics.buffer.Buffer`,
one background flusher thread, and the store they write to.

* :func:`count` / :func:`observe` record into the buffer (no I/O, never raise)
  and start the flusher on first use in a process.
* The flusher wakes every ``METRICS_FLUSH_SECONDS`` (default 5 s), drains the
  buffer and writes it to the store; :func:`flush` does the same at once
  (tests, process exit, Celery worker shutdown).
* After ``fork()`` (Celery prefork children, gunicorn/uwsgi workers) the child
  starts with an empty buffer and starts its own flusher on first use: the
  parent's pending counts stay the parent's, so nothing is counted twice.
* A failed write loses that batch; the loss is counted and published as
  ``aspects_metrics_dropped_total`` by the next successful flush, and logged
  at most once a minute. A write that failed on our side may still have been
  applied by Redis (a timeout while the store was slow): each batch carries an
  id, and the next flush *settles* it (:meth:`RedisStore.settle`) before it
  counts anything as dropped, so an event is either published or dropped, never
  both.
* The flusher never dies of an error in its loop; if its thread ends anyway, the
  next count in the process starts a new one.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid

from aspects_routing.metrics.buckets import minute_of
from aspects_routing.metrics.buffer import Buffer, Labels
from aspects_routing.metrics.store import MemoryStore, RedisStore

log = logging.getLogger(__name__)

BUFFER = Buffer()
#: The store used when no Redis is configured (figures of this process only).
MEMORY_STORE = MemoryStore()


class RateLimitedLog:
    """Log a warning at most once per ``period`` seconds (per instance)."""

    def __init__(self, period: float = 60.0):
        self.period = period
        self._last = None

    def warning(self, msg: str, *args) -> bool:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.period:
            return False
        self._last = now
        try:
            log.warning(msg, *args)
        except Exception:  # pylint: disable=broad-except
            pass
        return True


_store_errors = RateLimitedLog()
_record_errors = RateLimitedLog()


class _State:
    """Per-process flusher state; replaced wholesale in a forked child."""

    def __init__(self):
        self.started = False
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.wake = threading.Event()
        self.stopping = False
        self.thread: threading.Thread | None = None
        self.stores: dict[tuple[str, str], RedisStore] = {}
        # Batches whose write failed on our side: (store, batch id, events + losses it carried).
        self.unsettled: list[tuple[object, str, int]] = []
        self.restarts = 0


_state = _State()


def _labels(labels) -> Labels:
    if not labels:
        return ()
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def count(name: str, labels: dict[str, str] | None = None, amount: int = 1) -> None:
    """
    Add ``amount`` to the counter ``name`` with ``labels``; no I/O, never raises.

    The counter is summed over every process through the store and exposed at
    ``/aspects-routing/metrics`` as a Prometheus counter of that name (a name
    should end in ``_total``).
    """
    try:
        if not _state.started:
            ensure_started()
        BUFFER.add(minute_of(time.time()), name, _labels(labels), amount)
    except Exception:  # pylint: disable=broad-except
        _record_errors.warning("aspects-routing could not count %s", name)


def add(now: float, name: str, labels: Labels, amount: int = 1) -> None:
    """:func:`count` for the Celery hooks: labels already a sorted tuple, time already read."""
    if not _state.started:
        ensure_started()
    BUFFER.add(int(now // 60), name, labels, amount)  # minute_of(), inlined: hot path


def observe(now: float, name: str, labels: Labels, value: float) -> None:
    """Record ``value`` seconds in histogram ``name``; labels a sorted tuple."""
    if not _state.started:
        ensure_started()
    BUFFER.observe(int(now // 60), name, labels, value)


def current_store():
    """The store named by the settings: :class:`RedisStore` or :data:`MEMORY_STORE`."""
    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

    config = get_config()
    if not config.metrics_redis_url:
        return MEMORY_STORE
    key = (config.metrics_redis_url, config.metrics_key_prefix)
    store = _state.stores.get(key)
    if store is None:
        store = _state.stores[key] = RedisStore(*key)
    return store


#: Failed writes kept for settling; beyond this (a long outage), the oldest count as dropped.
MAX_UNSETTLED = 1000


def _settle(state: _State) -> None:
    """Count as dropped the failed writes that were not applied (and now never will be)."""
    left, unreachable = [], set()
    for store, batch_id, amount in state.unsettled:
        if id(store) in unreachable:  # one timeout per store and flush, not one per batch
            left.append((store, batch_id, amount))
            continue
        try:
            if not store.settle(batch_id):
                BUFFER.lost(amount)
        except Exception:  # pylint: disable=broad-except
            unreachable.add(id(store))
            left.append((store, batch_id, amount))  # still unreachable: at the next flush
    state.unsettled[:] = left


def flush() -> bool:
    """Write everything buffered to the store now; True on success. Never raises."""
    state = _state
    with state.flush_lock:
        return _flush(state)


def _flush(state: _State) -> bool:
    if state.unsettled:
        _settle(state)
    batch = BUFFER.drain()
    if batch.empty:
        return True
    store = None
    batch_id = uuid.uuid4().hex
    try:
        from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

        config = get_config()
        if not config.metrics_enabled:
            return True
        store = current_store()
        store.write(batch, minute_of(time.time()), config.metrics_retention_minutes, batch_id)
        return True
    except Exception as exc:  # pylint: disable=broad-except
        if isinstance(store, RedisStore):
            state.unsettled.append((store, batch_id, batch.events + batch.dropped))
            while len(state.unsettled) > MAX_UNSETTLED:
                BUFFER.lost(state.unsettled.pop(0)[2])
        else:
            BUFFER.lost(batch.events + batch.dropped)
        _store_errors.warning(
            "aspects-routing could not write metrics to the store (%s): %s; "
            "%d events lost so far are counted in aspects_metrics_dropped_total.",
            _describe_store(),
            exc.__class__.__name__,
            BUFFER.dropped + sum(amount for _store, _id, amount in state.unsettled),
        )
        return False


def _describe_store() -> str:
    try:
        return current_store().description
    except Exception:  # pylint: disable=broad-except
        return "unknown store"


def _interval() -> float:
    try:
        from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

        return get_config().metrics_flush_seconds
    except Exception:  # pylint: disable=broad-except
        return 5.0


def _run(state: _State) -> None:
    try:
        while not state.stopping:
            try:
                state.wake.wait(_interval())
                state.wake.clear()
                flush()
            except Exception:  # pylint: disable=broad-except
                # Never die of one bad round (a bad interval, a store bug): wait and go on.
                _record_errors.warning("aspects-routing metrics flusher: an error in its loop, continuing")
                state.wake.wait(5.0)
    finally:
        # Whatever ended the thread, the next count starts a new one (unless stopping).
        state.started = False


def ensure_started() -> None:
    """Start this process's flusher thread (idempotent; cheap after the first call)."""
    state = _state
    if state.started:
        return
    with state.lock:
        if state.started or state.stopping:
            return
        if state.thread is not None:
            state.restarts += 1
        thread = threading.Thread(target=_run, args=(state,), name="aspects-metrics-flusher", daemon=True)
        state.started = True
        state.thread = thread
        thread.start()


def stop() -> None:
    """Stop the flusher and write what is left (process exit)."""
    state = _state
    state.stopping = True
    state.wake.set()
    flush()


def _after_fork_in_child() -> None:
    global _state  # pylint: disable=global-statement
    BUFFER.reset()
    _state = _State()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(stop)
