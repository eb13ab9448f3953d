"""
Where the event-bus numbers come from: stream length, consumer-group lag and the
skip-on-restart risk.

:func:`read_event_bus_lag` returns a frozen :class:`EventBusLag` for the Aspects
topic (``ASPECTS_ROUTING["EVENT_BUS_TOPIC"]``):

* Redis (``EVENT_BUS_PRODUCER`` from edx-event-bus-redis): ``XINFO STREAM`` /
  ``XINFO GROUPS`` / ``XINFO CONSUMERS`` on ``f"{EVENT_BUS_TOPIC_PREFIX}-{topic}"``
  (or ``topic`` without a prefix), as edx-event-bus-redis names it;
* Kafka: per partition, high watermark minus the group's committed offset, when
  ``confluent_kafka`` is installed; otherwise ``measured=False`` with the reason.

It never raises: a failure is returned as ``measured=False`` with the reason. The
connection URL is never part of the result (it may hold a password).
:class:`EventBusLagCollector` exports the numbers as Prometheus gauges.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from aspects_routing.redaction import UNPARSEABLE, kafka_location, parse_url
from aspects_routing.transport.consumer import UNSAFE_STARTS_KEY, claim_threshold
from aspects_routing.transport.event_bus_settings import stream_name

log = logging.getLogger(__name__)

#: ``skip_risks`` values of :class:`GroupLag`.
RISK_UNSAFE_START = "unsafe_start"
RISK_LAG_UNKNOWN = "lag_unknown"
RISK_TRIMMED = "trimmed_before_read"
RISK_NO_CONSUMER = "backlog_without_consumer"

RISK_TEXT = {
    RISK_UNSAFE_START: "a consume_events process started without check_backlog and moved the group to the "
    "stream's end, skipping the events that were waiting",
    RISK_LAG_UNKNOWN: "Redis cannot count this group's backlog (entries-read unknown): its position was moved "
    "with XGROUP SETID, which consume_events does when started without check_backlog",
    RISK_TRIMMED: "the stream was trimmed (EVENT_BUS_REDIS_STREAM_MAX_LEN) past events this group had not read",
    RISK_NO_CONSUMER: "events are waiting and the group has no consumer",
}


@dataclass(frozen=True)
class ConsumerLag:
    """One consumer of a group (``XINFO CONSUMERS``), and its entries idle past the claim threshold (``XPENDING``)."""

    name: str
    pending: int
    idle_ms: int  # since the consumer last read or claimed
    inactive_ms: int | None  # Redis >= 7.2 only
    stalled: int = 0  # of ``pending``: entries delivered longer than the group's ``stall_threshold_ms`` ago
    oldest_pending_ms: int | None = None  # idle time of its oldest stalled entry


@dataclass(frozen=True)
class UnsafeStart:
    """A ``consume_events`` start without ``check_backlog``, recorded by that process."""

    consumer: str
    started_at: float
    skipped: int | None  # the group's lag just before the start moved it; None: unknown


@dataclass(frozen=True)
class GroupLag:  # pylint: disable=too-many-instance-attributes
    """One consumer group of the stream (``XINFO GROUPS``)."""

    name: str
    lag: int | None  # entries not yet delivered to the group; None: Redis cannot tell
    pending: int | None  # delivered, not acknowledged; None on Kafka, which has no such count
    last_delivered_id: str
    entries_read: int | None
    consumers: tuple[ConsumerLag, ...]
    unsafe_starts: tuple[UnsafeStart, ...] = ()
    skip_risks: tuple[str, ...] = ()
    stall_threshold_ms: int | None = None  # the consumers' claim_msgs_older_than; None: not looked at (Kafka)

    @property
    def stalled_pending(self) -> int:
        """Entries held longer than ``stall_threshold_ms``: their consumer is gone (or stuck)."""
        return sum(c.stalled for c in self.consumers)

    @property
    def stalled_consumers(self) -> tuple[ConsumerLag, ...]:
        """Consumers holding such entries, most stalled first."""
        return tuple(sorted((c for c in self.consumers if c.stalled), key=lambda c: (-c.stalled, c.name)))

    @property
    def skipped(self) -> int | None:
        """Events known to be skipped by unsafe starts (None if a start's count is unknown)."""
        if any(start.skipped is None for start in self.unsafe_starts):
            return None
        return sum(start.skipped for start in self.unsafe_starts)


@dataclass(frozen=True)
class EventBusLag:  # pylint: disable=too-many-instance-attributes
    """The Aspects topic on the event bus, as measured now."""

    backend: str  # "redis", "kafka" or "none"
    measured: bool
    reason: str | None  # why not measured
    topic: str
    stream: str
    location: str | None = None  # host:port/db, never credentials
    length: int | None = None
    entries_added: int | None = None
    first_entry_id: str | None = None
    max_deleted_entry_id: str | None = None
    groups: tuple[GroupLag, ...] = ()

    def group(self, name: str) -> GroupLag | None:
        """The group called ``name``, if it exists."""
        return next((g for g in self.groups if g.name == name), None)


def redacted_location(url: str) -> str:
    """``scheme://host:port/db`` of a Redis URL, without user or password (:mod:`aspects_routing.redaction`)."""
    return parse_url(url, "EVENT_BUS_REDIS_CONNECTION_URL").location


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


_WALRUS_PLACEHOLDER = (0, 1)


def _id_tuple(entry_id: str) -> tuple[int, int]:
    millis, _, seq = entry_id.partition("-")
    return int(millis), int(seq or 0)


def _unsafe_starts(client, key: str) -> dict[str, list[UnsafeStart]]:
    found: dict[str, list[UnsafeStart]] = {}
    for raw in client.lrange(key, 0, -1):
        try:
            start = json.loads(raw)
            found.setdefault(start["group"], []).append(
                UnsafeStart(consumer=start.get("consumer", ""), started_at=start["started_at"], skipped=start["skipped"])
            )
        except (ValueError, KeyError, TypeError):
            continue
    return found


def group_risks(group: dict, consumers: int, first_entry_id: str | None, max_deleted: str | None, unsafe) -> tuple:
    """The skip-on-restart risks visible in one ``XINFO GROUPS`` entry (pure)."""
    risks = []
    if unsafe:
        risks.append(RISK_UNSAFE_START)
    lag = group.get("lag")
    if lag is None and group.get("entries-read") is None:
        risks.append(RISK_LAG_UNKNOWN)
    last = _text(group.get("last-delivered-id") or "0-0")
    if (
        first_entry_id
        and max_deleted
        # walrus adds and deletes entry 0-1 to create a stream: not an event.
        and _id_tuple(max_deleted) > _WALRUS_PLACEHOLDER
        and _id_tuple(max_deleted) > _id_tuple(last)
        and _id_tuple(first_entry_id) > _id_tuple(last)
    ):
        risks.append(RISK_TRIMMED)
    if consumers == 0 and lag:
        risks.append(RISK_NO_CONSUMER)
    return tuple(risks)


#: Stalled entries read per group at most (``XPENDING ... IDLE``): one round trip, bounded.
STALLED_SCAN = 1000


def stalled_by_consumer(pending_entries) -> dict[str, tuple[int, int]]:
    """``{consumer: (entries, oldest idle ms)}`` from ``XPENDING`` range entries (pure)."""
    found: dict[str, tuple[int, int]] = {}
    for entry in pending_entries:
        name = _text(entry["consumer"])
        count, oldest = found.get(name, (0, 0))
        found[name] = (count + 1, max(oldest, int(entry["time_since_delivered"])))
    return found


def read_redis_lag(
    url: str, topic: str, key_prefix: str, timeout: float = 2.0, stall_ms: int | None = None
) -> EventBusLag:
    """
    Measure ``topic``'s stream on the Redis at ``url``.

    ``stall_ms`` (default: the generated consumers' ``claim_msgs_older_than``):
    entries delivered longer ago than this and still unacknowledged are *stalled*,
    counted per consumer.
    """
    import redis  # pylint: disable=import-outside-toplevel

    if stall_ms is None:
        stall_ms = claim_threshold().idle_ms

    stream = stream_name(topic)
    address = parse_url(url, "EVENT_BUS_REDIS_CONNECTION_URL")
    location = address.location
    # address.url() raises UnusableURL (no secret in it) for a URL that cannot be parsed.
    client = redis.Redis.from_url(address.url(), socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        try:
            info = client.xinfo_stream(stream)
        except redis.ResponseError:
            # No stream yet: nothing was produced and no consumer has started.
            return EventBusLag("redis", True, None, topic, stream, location, length=0, entries_added=0)
        first = info.get("first-entry")
        first_id = _text(first[0]) if first else None
        max_deleted = _text(info.get("max-deleted-entry-id") or "0-0")
        unsafe = _unsafe_starts(client, f"{key_prefix}:{UNSAFE_STARTS_KEY}")
        groups = []
        for group in client.xinfo_groups(stream):
            name = _text(group["name"])
            stalled = (
                stalled_by_consumer(
                    client.xpending_range(stream, name, "-", "+", STALLED_SCAN, idle=stall_ms)
                )
                if int(group["pending"])
                else {}
            )
            consumers = tuple(
                ConsumerLag(
                    name=_text(c["name"]),
                    pending=int(c["pending"]),
                    idle_ms=int(c["idle"]),
                    inactive_ms=int(c["inactive"]) if c.get("inactive") is not None else None,
                    stalled=stalled.get(_text(c["name"]), (0, 0))[0],
                    oldest_pending_ms=stalled[_text(c["name"])][1] if _text(c["name"]) in stalled else None,
                )
                for c in client.xinfo_consumers(stream, name)
            )
            starts = tuple(unsafe.get(name, ()))
            groups.append(
                GroupLag(
                    name=name,
                    lag=int(group["lag"]) if group.get("lag") is not None else None,
                    pending=int(group["pending"]),
                    last_delivered_id=_text(group["last-delivered-id"]),
                    entries_read=int(group["entries-read"]) if group.get("entries-read") is not None else None,
                    consumers=consumers,
                    unsafe_starts=starts,
                    skip_risks=group_risks(group, len(consumers), first_id, max_deleted, starts),
                    stall_threshold_ms=stall_ms,
                )
            )
        return EventBusLag(
            "redis",
            True,
            None,
            topic,
            stream,
            location,
            length=int(info["length"]),
            entries_added=int(info["entries-added"]) if info.get("entries-added") is not None else None,
            first_entry_id=first_id,
            max_deleted_entry_id=max_deleted,
            groups=tuple(groups),
        )
    finally:
        client.close()


def read_kafka_lag(topic: str, group: str, timeout: float = 2.0) -> EventBusLag:
    """Consumer lag of ``group`` on ``topic`` from watermarks and committed offsets (needs confluent_kafka)."""
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    full = stream_name(topic)
    try:
        from confluent_kafka import Consumer, TopicPartition  # pylint: disable=import-outside-toplevel
    except ImportError:
        return EventBusLag("kafka", False, "not measured: confluent_kafka is not installed", topic, full)
    servers = getattr(settings, "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS", None)
    if not servers:
        return EventBusLag("kafka", False, "not measured: EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS is not set", topic, full)
    # librdkafka takes host:port pairs (credentials go in sasl.*) and prints what it cannot resolve to
    # stderr: hand it the pairs only, and route its log lines through Python logging.
    hosts = kafka_location(servers)
    if UNPARSEABLE in hosts:
        return EventBusLag("kafka", False, "not measured: EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS is not a list of "
                           "host:port", topic, full)
    conf = {"bootstrap.servers": hosts, "group.id": group, "enable.auto.commit": False,
            "logger": logging.getLogger("aspects_routing.kafka")}
    key, secret = getattr(settings, "EVENT_BUS_KAFKA_API_KEY", None), getattr(settings, "EVENT_BUS_KAFKA_API_SECRET", None)
    if key and secret:
        conf.update({"sasl.mechanism": "PLAIN", "security.protocol": "SASL_SSL", "sasl.username": key,
                     "sasl.password": secret})
    consumer = Consumer(conf)
    try:
        metadata = consumer.list_topics(full, timeout=timeout)
        partitions = [TopicPartition(full, p) for p in metadata.topics[full].partitions]
        lag = 0
        length = 0
        for committed in consumer.committed(partitions, timeout=timeout):
            low, high = consumer.get_watermark_offsets(committed, timeout=timeout)
            length += high - low
            lag += high - (committed.offset if committed.offset >= 0 else low)
        group_lag = GroupLag(name=group, lag=lag, pending=None, last_delivered_id="", entries_read=None, consumers=())
        return EventBusLag("kafka", True, None, topic, full, _kafka_location(servers), length=length,
                           groups=(group_lag,))
    finally:
        consumer.close()


def _kafka_location(servers: str) -> str:
    return kafka_location(servers)


def read_event_bus_lag(timeout: float = 2.0) -> EventBusLag:
    """The Aspects topic's length, lag and skip risks; never raises."""
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

    config = get_config()
    topic = config.event_bus_topic
    producer = str(getattr(settings, "EVENT_BUS_PRODUCER", None) or "")
    url = getattr(settings, "EVENT_BUS_REDIS_CONNECTION_URL", None)
    backend = "kafka" if "kafka" in producer else "redis" if ("redis" in producer or url) else "none"
    try:
        if backend == "kafka":
            return read_kafka_lag(topic, config.event_bus_consumer_group, timeout)
        if backend == "redis" and url:
            return read_redis_lag(url, topic, config.metrics_key_prefix, timeout)
        reason = (
            "not measured: EVENT_BUS_REDIS_CONNECTION_URL is not set"
            if backend == "redis"
            else "not measured: no event bus is configured (EVENT_BUS_PRODUCER)"
        )
        return EventBusLag(backend, False, reason, topic, stream_name(topic))
    except Exception as exc:  # pylint: disable=broad-except
        # The report and the metrics endpoint must not break on a broken or absent bus.
        return EventBusLag(backend, False, f"not measured: {type(exc).__name__}", topic, stream_name(topic))


class EventBusLagCollector:
    """
    Prometheus collector, read at each scrape (one ``XINFO`` round per group, ``timeout`` each):

    * ``aspects_event_bus_up{stream}``: 1 when the bus could be read, else 0 (and no other sample);
    * ``aspects_event_bus_stream_length{stream}``;
    * ``aspects_event_bus_lag{stream,group}`` (no sample when Redis cannot count it);
    * ``aspects_event_bus_pending{stream,group}``: delivered, not acknowledged;
    * ``aspects_event_bus_stalled_pending{stream,group}``: of those, held longer than
      the consumers' ``claim_msgs_older_than`` -- by a consumer that is gone or stuck;
    * ``aspects_event_bus_consumer_pending{stream,group,consumer}`` and
      ``aspects_event_bus_consumer_idle_seconds{...}``: only for consumers that hold
      entries (every pod name stays in the group after the pod is gone, so a series
      per consumer would grow without bound).
    """

    def __init__(self, timeout: float = 1.0, reader=read_event_bus_lag):
        self.timeout = timeout
        self.reader = reader

    def describe(self):
        """No samples at registration time (that would read the bus)."""
        return []

    def collect(self):
        """Read the bus and yield the gauge families."""
        from prometheus_client.core import GaugeMetricFamily  # pylint: disable=import-outside-toplevel

        lag = self.reader(self.timeout)
        up = GaugeMetricFamily("aspects_event_bus_up", "1 if the event bus could be read at this scrape, else 0.",
                               labels=["stream"])
        up.add_metric([lag.stream], 1 if lag.measured else 0)
        length = GaugeMetricFamily("aspects_event_bus_stream_length", "Entries in the event-bus stream.",
                                   labels=["stream"])
        lags = GaugeMetricFamily("aspects_event_bus_lag", "Entries not yet delivered to the consumer group.",
                                 labels=["stream", "group"])
        pending = GaugeMetricFamily("aspects_event_bus_pending", "Entries delivered, not yet acknowledged.",
                                    labels=["stream", "group"])
        stalled = GaugeMetricFamily(
            "aspects_event_bus_stalled_pending",
            "Entries delivered longer ago than the consumers' claim_msgs_older_than and still not acknowledged: "
            "their consumer is gone or stuck; the next consumer that starts claims them.",
            labels=["stream", "group"],
        )
        consumer_pending = GaugeMetricFamily(
            "aspects_event_bus_consumer_pending", "Entries a consumer holds (consumers holding none are left out).",
            labels=["stream", "group", "consumer"],
        )
        consumer_idle = GaugeMetricFamily(
            "aspects_event_bus_consumer_idle_seconds",
            "Seconds since a consumer holding entries last read or claimed one.",
            labels=["stream", "group", "consumer"],
        )
        if lag.measured:
            if lag.length is not None:
                length.add_metric([lag.stream], lag.length)
            for group in lag.groups:
                if group.lag is not None:
                    lags.add_metric([lag.stream, group.name], group.lag)
                if group.pending is not None:
                    pending.add_metric([lag.stream, group.name], group.pending)
                if group.stall_threshold_ms is not None:
                    stalled.add_metric([lag.stream, group.name], group.stalled_pending)
                for consumer in group.consumers:
                    if consumer.pending:
                        consumer_pending.add_metric([lag.stream, group.name, consumer.name], consumer.pending)
                        consumer_idle.add_metric([lag.stream, group.name, consumer.name], consumer.idle_ms / 1000)
        yield from (up, length, lags, pending, stalled, consumer_pending, consumer_idle)
