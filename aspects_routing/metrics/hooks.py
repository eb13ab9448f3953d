"""
Celery signal hooks that count Aspects tasks.

=========================  ===============================================
signal                     what is recorded (labels ``task``, ``queue``)
=========================  ===============================================
``before_task_publish``    published; stamps header :data:`HEADER` (time)
``task_prerun``            started; queue wait = start - max(stamp, ETA);
                           APM attributes ``aspects_routing.queue`` and
                           ``aspects_routing.queue_wait_seconds``
``task_postrun``           run time; succeeded when its state is SUCCESS
``task_failure``           failed (also sent by the worker's main process
                           for hard time limits and lost child processes)
``task_retry``             retried
=========================  ===============================================

Successes are counted from ``task_postrun`` (its ``state`` argument) rather
than from ``task_success``: every connected signal costs a Celery dispatch per
task, and success is the common case. Failures and retries, rarer, keep their
own signals, which also cover the cases where ``task_postrun`` never runs.

Only tasks the Aspects router routes are counted. Whether a task name is one is
decided once and memoized, so any other task costs a single dict lookup. The
queue is the message's routing key (the queue name with the platform's direct
exchanges). Every receiver records into the in-process buffer and returns: no
I/O, and nothing raises into Celery.

The publish timestamp travels as a message header. edx-platform publishes with
task protocol 1, where the worker keeps the message headers whole in
``request.headers``; with protocol 2 custom headers become request attributes.
Both are read.
"""

from __future__ import annotations

import time
from datetime import datetime

from celery import signals
from celery.states import SUCCESS
from edx_django_utils.monitoring import set_custom_attribute

from aspects_routing.conf import on_config_cleared
from aspects_routing.metrics import recorder
from aspects_routing.metrics.buckets import is_finite_number
from aspects_routing.metrics.names import FAILED, PUBLISHED, QUEUE_WAIT, RETRIED, RUNTIME, STARTED, SUCCEEDED

#: Message header carrying the publish time (Unix seconds, float).
HEADER = "aspects_published_at"

#: Most tasks remembered between prerun and postrun (a child killed mid-task
#: leaves its entry behind; past this size the table is emptied).
MAX_IN_FLIGHT = 10_000

_errors = recorder.RateLimitedLog()

# task name -> True when it is an Aspects task. Filled on first sight of a name.
_decisions: dict[str, bool] = {}
# task id -> (monotonic start, labels), between task_prerun and task_postrun.
_in_flight: dict[str, tuple[float, tuple]] = {}


def _forget_decisions() -> None:
    _decisions.clear()


on_config_cleared(_forget_decisions)


def _decide(name) -> bool:
    from aspects_routing.routing.router import route_task  # pylint: disable=import-outside-toplevel

    routed = bool(isinstance(name, str) and route_task.is_routed(name))
    _decisions[name] = routed
    return routed


def _is_aspects(name) -> bool:
    # One dict lookup once the name has been seen (inlined in the publish hook).
    routed = _decisions.get(name)
    return _decide(name) if routed is None else routed


def _labels(name: str, queue) -> tuple:
    # Sorted by label name, as the buffer expects.
    return (("queue", queue or ""), ("task", name))


def _request_queue(request) -> str:
    info = getattr(request, "delivery_info", None) or {}
    return info.get("routing_key") or info.get("queue") or ""


def published_at(request) -> float | None:
    """The publish time stamped by :func:`on_before_task_publish`, from a protocol 1 or 2 request."""
    value = getattr(request, HEADER, None)  # protocol 2: custom headers are request attributes
    if value is None:
        headers = getattr(request, "headers", None)  # protocol 1: message headers kept whole
        if isinstance(headers, dict):
            value = headers.get(HEADER)
    return float(value) if is_finite_number(value) else None


def _eta_timestamp(request) -> float | None:
    eta = getattr(request, "eta", None)
    if not eta:
        return None
    if isinstance(eta, datetime):
        return eta.timestamp()
    try:
        return datetime.fromisoformat(str(eta)).timestamp()
    except ValueError:
        return None


def on_before_task_publish(sender=None, headers=None, routing_key=None, **kwargs):
    """Count a publish and stamp the publish time (``sender`` is the task name)."""
    try:
        routed = _decisions.get(sender)
        if routed is None:
            routed = _decide(sender)
        if not routed:
            return
        now = time.time()
        if headers is not None:
            headers[HEADER] = now
        recorder.add(now, PUBLISHED, _labels(sender, routing_key))
    except Exception:  # pylint: disable=broad-except
        _errors.warning("aspects-routing could not count the publish of %s", sender)


def on_task_prerun(task_id=None, task=None, **kwargs):
    """Count a start, record the queue wait and tell the APM."""
    try:
        name = task.name
        if not _is_aspects(name):
            return
        now = time.time()
        request = task.request
        queue = _request_queue(request)
        labels = _labels(name, queue)
        recorder.add(now, STARTED, labels)
        wait = None
        published = published_at(request)
        if published is not None:
            eta = _eta_timestamp(request)
            wait = max(0.0, now - (max(published, eta) if eta else published))
            recorder.observe(now, QUEUE_WAIT, labels, wait)
        if len(_in_flight) >= MAX_IN_FLIGHT:
            _in_flight.clear()
        _in_flight[task_id] = (time.monotonic(), labels)
        _set_apm_attributes(queue, wait)
    except Exception:  # pylint: disable=broad-except
        _errors.warning("aspects-routing could not count the start of a task")


def _set_apm_attributes(queue: str, wait: float | None) -> None:
    set_custom_attribute("aspects_routing.queue", queue)
    if wait is not None:
        set_custom_attribute("aspects_routing.queue_wait_seconds", round(wait, 6))


def on_task_postrun(task_id=None, task=None, state=None, **kwargs):
    """Record the run time of a task started by :func:`on_task_prerun`; count a success."""
    try:
        started = _in_flight.pop(task_id, None)
        if started is None:
            return
        begin, labels = started
        now = time.time()
        recorder.observe(now, RUNTIME, labels, time.monotonic() - begin)
        if state == SUCCESS:
            recorder.add(now, SUCCEEDED, labels)
    except Exception:  # pylint: disable=broad-except
        _errors.warning("aspects-routing could not record a run time")


def _outcome(metric: str, task, task_id) -> None:
    name = getattr(task, "name", None)
    if not _is_aspects(name):
        return
    started = _in_flight.get(task_id)
    if started is not None:
        labels = started[1]
    else:
        # Not started in this process: the worker's main process reporting a
        # lost child or a hard time limit (the request is pushed for it).
        labels = _labels(name, _request_queue(getattr(task, "request", None)))
    recorder.add(time.time(), metric, labels)


def on_task_failure(sender=None, task_id=None, **kwargs):
    try:
        _outcome(FAILED, sender, task_id)
    except Exception:  # pylint: disable=broad-except
        _errors.warning("aspects-routing could not count a failure")


def on_task_retry(sender=None, request=None, **kwargs):
    try:
        _outcome(RETRIED, sender, getattr(request, "id", None))
    except Exception:  # pylint: disable=broad-except
        _errors.warning("aspects-routing could not count a retry")


def on_process_shutdown(**kwargs):
    """Write what this process has buffered before it exits (prefork children skip atexit)."""
    recorder.flush()


_RECEIVERS = (
    (signals.before_task_publish, on_before_task_publish),
    (signals.task_prerun, on_task_prerun),
    (signals.task_postrun, on_task_postrun),
    (signals.task_failure, on_task_failure),
    (signals.task_retry, on_task_retry),
    (signals.worker_process_shutdown, on_process_shutdown),
    (signals.worker_shutdown, on_process_shutdown),
)


def install() -> None:
    """Connect every receiver (idempotent)."""
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, weak=False, dispatch_uid=f"aspects_routing.metrics.{receiver.__name__}")


def uninstall() -> None:
    """Disconnect every receiver (benchmarks, tests)."""
    for signal, receiver in _RECEIVERS:
        signal.disconnect(receiver, dispatch_uid=f"aspects_routing.metrics.{receiver.__name__}")
