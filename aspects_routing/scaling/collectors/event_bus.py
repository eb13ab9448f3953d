"""
Event bus (when ``ASPECTS_ROUTING["TRANSPORT"]`` is ``"event_bus"``): the lag of
the Aspects topic (:func:`aspects_routing.metrics.event_bus_lag.read_event_bus_lag`:
stream length, per-group lag, pending, consumers, skip-on-restart risks) and the
producer side from the metrics store (tracking events sent to the bus and send
failures per second).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from aspects_routing.metrics import recorder
from aspects_routing.metrics.buckets import window_minutes, window_seconds
from aspects_routing.metrics.event_bus_lag import EventBusLag, read_event_bus_lag
from aspects_routing.scaling.collectors.base import Skipped, Unavailable
from aspects_routing.scaling.collectors.throughput import PEAK_MIN_MINUTES
from aspects_routing.transport.producer_metrics import FAILED, SENT

#: Window of the producer rates (the report's ``--window`` bounds it).
PRODUCER_MINUTES = (1, 5, 15, 60)


@dataclass(frozen=True)
class ProducerRate:
    """Tracking events the LMS sent to the bus over one window."""

    minutes: int
    sent: int
    failed: int
    sent_per_second: float
    failed_per_second: float


@dataclass(frozen=True)
class EventBusReport:
    """The Aspects topic on the bus, and what the producers put on it."""

    consumer_group: str  # the group consume_events uses for the xAPI transform
    lag: EventBusLag
    producer: tuple[ProducerRate, ...]  # empty when the metrics store could not be read
    producer_error: str | None

    @property
    def group_lag(self):
        """The configured consumer group's lag (None when the group does not exist yet)."""
        return self.lag.group(self.consumer_group)

    def peak_sent_per_second(self, window_minutes_: int) -> float | None:
        """Highest send rate over the producer windows of PEAK_MIN_MINUTES up to ``window_minutes_``."""
        shortest = min(PEAK_MIN_MINUTES, window_minutes_)
        rates = [p.sent_per_second for p in self.producer if shortest <= p.minutes <= window_minutes_]
        return max(rates) if rates else None


def producer_rates(windows=PRODUCER_MINUTES, now: float | None = None, store=None) -> tuple[ProducerRate, ...]:
    """Events sent to the bus and send failures per window, from the shared metrics store."""
    now = time.time() if now is None else now
    store = store or recorder.current_store()
    by_minute = store.minutes(window_minutes(now, max(windows)))
    rates = []
    for minutes in windows:
        sent = failed = 0
        for minute in window_minutes(now, minutes):
            figures = by_minute.get(minute)
            if figures is None:
                continue
            for (name, _labels), value in figures.counters.items():
                if name == SENT:
                    sent += value
                elif name == FAILED:
                    failed += value
        seconds = window_seconds(now, minutes)
        rates.append(ProducerRate(minutes, int(sent), int(failed), sent / seconds, failed / seconds))
    return tuple(rates)


def collect_event_bus(config, *, timeout: float, window_minutes_: int = 60) -> EventBusReport:
    """The event-bus section, or :class:`Skipped` when tracking events do not travel over the bus."""
    if config.transport != "event_bus":
        raise Skipped(f"not in use: ASPECTS_ROUTING['TRANSPORT'] is {config.transport!r}")
    lag = read_event_bus_lag(timeout)
    if not lag.measured:
        raise Unavailable(lag.reason or "the event bus could not be read")
    producer, error = (), None
    if recorder.current_store() is recorder.MEMORY_STORE:
        error = "metrics are only kept in this process (no shared metrics store)"
    else:
        try:
            producer = producer_rates(tuple(m for m in PRODUCER_MINUTES if m <= max(window_minutes_, 1)) or (1,))
        except Exception as exc:  # pylint: disable=broad-except
            error = f"metrics store could not be read: {type(exc).__name__}"
    return EventBusReport(config.event_bus_consumer_group, lag, producer, error)
