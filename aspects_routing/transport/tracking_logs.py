"""
The INFO lines written in the LMS for every tracking event on its way to Aspects.

Open edX's LMS logs at INFO, and on either transport the packages on the path
write lines for each tracking event:

* Celery (event-tracking's ``eventtracking.backends.async_routing``): 'Successfully
  processed event "<name>"' and 'Scheduled celery task for event "<name>" ...' per
  Aspects event, '[EventEmissionExit] skipping event <name>' for every other one;
* event bus: event-tracking's ``eventtracking.backends.event_bus`` "Tracking log
  <name> emitted to the event bus."; openedx-events' ``openedx_events.tooling``
  "Responses of the Open edX Event <org.openedx.analytics.tracking.event.emitted.v1>: ..."
  (the receivers' responses, several lines); edx-event-bus-redis's
  ``edx_event_bus_redis.internal.producer`` audit line "Message delivered to Redis
  event bus: ..." (``EVENT_BUS_REDIS_AUDIT_LOGGING_ENABLED``, on unless set to False;
  that toggle covers every event type, not only tracking events).

At tracking-event volume these lines are most of an LMS's log output, and the
plugin's counters (:mod:`aspects_routing.metrics`) say the same in aggregate.
Unless ``ASPECTS_ROUTING["LOG_EACH_TRACKING_EVENT"]`` is True, :class:`PerEventLogFilter`
on those loggers drops them, and only them: lines about other event types, every
WARNING and above, and a responses line in which a receiver raised or returned
anything but None all pass (Django's ``send_robust`` also logs a failing receiver
at ERROR on ``django.dispatch``). The bus path's lines are matched by their text;
if a release changes a text, its lines pass again. Dropping a line saves the
handlers' work, not the message formatting, which those packages do before
calling the logger.
"""

from __future__ import annotations

import logging
import re
from typing import NamedTuple

from aspects_routing.conf import get_config
from aspects_routing.transport.event_bus_settings import TRACKING_EVENT_TYPE


class PerEventLines(NamedTuple):
    """Which INFO records of one logger are per-event lines."""

    prefix: str  # "" = every INFO record of the logger is one
    names_event_type: bool  # the line names the openedx-events type; only tracking events are dropped


#: Logger name -> its per-tracking-event lines.
PER_EVENT_LINES = {
    "eventtracking.backends.async_routing": PerEventLines("", False),
    "eventtracking.backends.event_bus": PerEventLines("", False),
    "openedx_events.tooling": PerEventLines("Responses of the Open edX Event <", True),
    "edx_event_bus_redis.internal.producer": PerEventLines("Message delivered to Redis event bus:", True),
}
RESPONSES_LOGGER = "openedx_events.tooling"
#: The body of a responses line in which every receiver returned None:
#: ``[(<function a at 0x...>, None),\n (<function b at 0x...>, None)]``.
_ALL_NONE = re.compile(r"\[\s*(?:\(\s*[^()]+?,\s*None\s*\)\s*,?\s*)*\]\s*")


class PerEventLogFilter(logging.Filter):
    """Drops the per-tracking-event INFO lines of one logger; never raises."""

    def __init__(self, logger_name: str):
        super().__init__()
        self.lines = PER_EVENT_LINES[logger_name]
        self.responses = logger_name == RESPONSES_LOGGER

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            return not self._per_event_line(record)
        except Exception:  # pylint: disable=broad-except
            return True

    def _per_event_line(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return False
        message = record.msg
        if not isinstance(message, str) or not message.startswith(self.lines.prefix):
            return False
        if self.lines.names_event_type and TRACKING_EVENT_TYPE not in message:
            return False
        if self.responses and not _ALL_NONE.fullmatch(message.partition("\n")[2]):
            return False  # a receiver raised or answered: worth keeping
        return not get_config().log_each_tracking_event


def install() -> None:
    """Attach the filter to every logger of :data:`PER_EVENT_LINES`; idempotent."""
    for name in PER_EVENT_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, PerEventLogFilter) for f in logger.filters):
            logger.addFilter(PerEventLogFilter(name))


def uninstall() -> None:
    """Remove the filters (tests and benchmarks)."""
    for name in PER_EVENT_LINES:
        logger = logging.getLogger(name)
        for f in [f for f in logger.filters if isinstance(f, PerEventLogFilter)]:
            logger.removeFilter(f)
