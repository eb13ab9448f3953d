"""
Producer-side metrics of the event-bus transport.

* ``aspects_event_bus_events_sent_total`` ``{event, topic}``: tracking events the producer wrote
  to the bus;
* ``aspects_event_bus_send_failures_total`` ``{event, topic, reason}``: sends that did not reach
  the bus. ``reason`` is ``producer_error`` (the producer raised and swallowed the
  error) or ``no_producer`` (``EVENT_BUS_PRODUCER`` did not load, openedx-events
  fell back to a producer that drops everything);
* ``aspects_event_bus_events_consumed_total`` ``{event}``: tracking events a ``consume_events``
  process received from the bus.

How failures are seen: edx-event-bus-redis's producer catches every error and
passes it to ``record_producing_error(error, context)``, which logs it with
``logger.exception`` on ``edx_event_bus_redis.internal.producer``. A
:class:`logging.Filter` on that logger (it never suppresses the record, but cuts the
message of a tracking event's failure down to the event's name and id: the library
logs the whole event at ERROR) reads the
``ProducingContext`` from the frame of ``record_producing_error`` in the record's
traceback: it names the signal, the topic and the ``tracking_log`` object. Sends
are counted by a receiver of ``TRACKING_EVENT_EMITTED`` connected *after*
openedx-events' producer handler, so by the time it runs the send has succeeded or
the filter has marked that very ``tracking_log`` object as failed (same thread).

All of this is on the request path: it counts and returns; no I/O, never raises.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from openedx_events.event_bus import NoEventBusProducer, get_producer
from openedx_events.tooling import SIGNAL_PROCESSED_FROM_EVENT_BUS

from aspects_routing.metrics import recorder
from aspects_routing.transport.event_bus_settings import TRACKING_EVENT_TYPE, connect_producer_handler

log = logging.getLogger(__name__)

SENT = "aspects_event_bus_events_sent_total"
FAILED = "aspects_event_bus_send_failures_total"
CONSUMED = "aspects_event_bus_events_consumed_total"

#: Loggers of the producers whose swallowed errors are counted.
PRODUCER_LOGGERS = ("edx_event_bus_redis.internal.producer",)

DISPATCH_UID = "aspects_routing.transport.producer_metrics"
_failed = threading.local()  # .marks: set of (id(tracking_log), topic) that failed in this thread


def _count(name: str, labels: dict, amount: int = 1) -> None:
    recorder.count(name, labels, amount)  # no I/O, never raises


def _producing_context(record: logging.LogRecord):
    """The ``context`` argument of ``record_producing_error`` in the record's traceback, if any."""
    exc_info = record.exc_info
    if not exc_info or exc_info[2] is None:
        return None
    tb = exc_info[2]
    while tb is not None:
        context = tb.tb_frame.f_locals.get("context")
        if context is not None and hasattr(context, "signal") and hasattr(context, "event_data"):
            return context
        tb = tb.tb_next
    return None


def _cause_name(error) -> str:
    """``TimeoutError`` for ``EventProductionException(TimeoutError(...))``: the library wraps the real error."""
    if error is None:
        return "error"
    cause = error.args[0] if error.args and isinstance(error.args[0], BaseException) else error
    return f"{type(cause).__module__}.{type(cause).__name__}".removeprefix("builtins.")


class ProducerFailureFilter(logging.Filter):
    """Counts the send failures a producer logs; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            if record.levelno >= logging.ERROR:
                self._count(record)
        except Exception:  # pylint: disable=broad-except
            pass
        return True

    @staticmethod
    def _count(record: logging.LogRecord) -> None:
        context = _producing_context(record)
        if context is None:
            if record.exc_info:
                _count(FAILED, {"event": "unknown", "topic": "unknown", "reason": "producer_error"})
            return
        if getattr(context.signal, "event_type", None) != TRACKING_EVENT_TYPE:
            return
        tracking_log = (context.event_data or {}).get("tracking_log")
        topic = context.initial_topic or "unknown"
        name = getattr(tracking_log, "name", "unknown")
        _count(FAILED, {"event": name, "topic": topic, "reason": "producer_error"})
        # The library's message ends with repr(context): the whole event (user, course,
        # URLs, answers) at ERROR on every failure. Its name and id identify it.
        error = record.exc_info[1] if record.exc_info else None
        record.msg = "Error delivering message to Redis event bus: %s; tracking event %s (id %s) to topic %s not sent"
        record.args = (
            _cause_name(error),
            name,
            getattr(context.event_metadata, "id", "unknown"),
            topic,
        )
        # The traceback (through redis-py's socket code) says no more than the error's
        # name, and formatting it on every failed event costs the request more time.
        record.exc_info = record.exc_text = None
        marks = getattr(_failed, "marks", None)
        if marks is None:
            marks = _failed.marks = set()
        marks.add((id(tracking_log), topic))


_topics_cache: tuple = (object(), ())  # (the EVENT_BUS_PRODUCER_CONFIG object, its enabled topics)


def _enabled_topics(settings) -> tuple[str, ...]:
    """Topics the tracking event is produced to; recomputed only when the setting is replaced."""
    global _topics_cache  # pylint: disable=global-statement
    config = getattr(settings, "EVENT_BUS_PRODUCER_CONFIG", None)
    cached_config, cached_topics = _topics_cache  # one tuple: threads never see half an update
    if cached_config is config:
        return cached_topics
    per_type = (config or {}).get(TRACKING_EVENT_TYPE) or {}
    topics = tuple(topic for topic, conf in per_type.items() if isinstance(conf, dict) and conf.get("enabled") is True)
    _topics_cache = (config, topics)
    return topics


def count_tracking_event(sender, signal=None, **kwargs):  # pylint: disable=unused-argument
    """Receiver of ``TRACKING_EVENT_EMITTED``: count what was sent, failed, or consumed (hot path: once per event)."""
    try:
        tracking_log = kwargs.get("tracking_log")
        name = getattr(tracking_log, "name", None) or "unknown"
        if kwargs.get(SIGNAL_PROCESSED_FROM_EVENT_BUS):
            _count(CONSUMED, {"event": name})
            return
        topics = _enabled_topics(settings)
        if not topics:
            return
        # Cached by openedx-events (lru_cache): the producer handler built it just before.
        no_producer = isinstance(get_producer(), NoEventBusProducer)
        marks = getattr(_failed, "marks", None)
        now = time.time()
        for topic in topics:
            if no_producer:
                _count(FAILED, {"event": name, "topic": topic, "reason": "no_producer"})
            elif marks and (id(tracking_log), topic) in marks:
                marks.discard((id(tracking_log), topic))
            else:
                recorder.add(now, SENT, (("event", name), ("topic", topic)))  # labels sorted by name
    except Exception:  # pylint: disable=broad-except
        pass


def install() -> None:
    """Attach the failure filter and the counting receiver; idempotent."""
    from openedx_events.analytics.signals import TRACKING_EVENT_EMITTED  # pylint: disable=import-outside-toplevel

    for name in PRODUCER_LOGGERS:
        producer_log = logging.getLogger(name)
        if not any(isinstance(f, ProducerFailureFilter) for f in producer_log.filters):
            producer_log.addFilter(ProducerFailureFilter())
    # The producer handler first, so this receiver runs after the send.
    connect_producer_handler()
    TRACKING_EVENT_EMITTED.connect(count_tracking_event, dispatch_uid=DISPATCH_UID)
