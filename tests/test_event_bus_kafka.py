"""
Kafka lag: the real confluent_kafka client against librdkafka's built-in mock cluster.

A Kafka broker cannot run on this machine: Kafka's releases come from Apache's
servers, which it cannot reach. librdkafka (inside confluent_kafka's wheel) ships
a mock cluster (``test.mock.num.brokers``) that serves the Kafka protocol on a
local TCP port: topics, partitions, consumer groups, committed offsets and
watermarks. It stands in for the broker only; the client, the protocol and
aspects-routing's code under test are the real ones.

Topic and group are named as edx-event-bus-kafka names them:
``f"{EVENT_BUS_TOPIC_PREFIX}-{topic}"`` (the prefix is "test" in the test
settings) and the consumer group as given to ``consume_events``.
"""

import io
import json
import logging
import re
import time

import confluent_kafka
import pytest
from django.core.management import call_command

from aspects_routing.metrics.event_bus_lag import read_event_bus_lag

TOPIC = "test-analytics"
GROUP = "event_routing_backends"


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def kafka():
    """A mock cluster, alive as long as the producer that created it; yields (producer, bootstrap servers)."""
    lines = _Lines()
    log = logging.getLogger("tests.kafka_mock")
    log.addHandler(lines)
    log.setLevel(logging.DEBUG)
    producer = confluent_kafka.Producer({"test.mock.num.brokers": 1, "logger": log})
    servers = None
    deadline = time.monotonic() + 10
    while servers is None and time.monotonic() < deadline:
        producer.poll(0.1)  # delivers librdkafka's log lines, among them the mock cluster's address
        found = re.search(r"replaced with (\S+)", " ".join(lines.lines))
        servers = found.group(1) if found else None
    assert servers, f"librdkafka did not report the mock cluster's address: {lines.lines}"
    yield producer, servers
    producer.flush(5)
    log.removeHandler(lines)


def consume(servers, count):
    """Consume ``count`` messages as ``GROUP`` and commit them, as edx-event-bus-kafka's consumer does."""
    consumer = confluent_kafka.Consumer(
        {"bootstrap.servers": servers, "group.id": GROUP, "enable.auto.commit": False,
         "auto.offset.reset": "earliest",
         # The mock's coordinator waits out the last member's session before a rejoin: keep it short.
         "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}
    )
    consumer.subscribe([TOPIC])
    got, deadline = 0, time.monotonic() + 30
    try:
        while got < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            got += 1
            consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()
    assert got == count


@pytest.fixture
def kafka_settings(settings, kafka):
    _producer, servers = kafka
    settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus"}
    settings.EVENT_BUS_PRODUCER = "edx_event_bus_kafka.create_producer"
    settings.EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS = servers
    return settings


def test_kafka_lag_matches_produced_and_consumed(kafka, kafka_settings):  # pylint: disable=unused-argument
    producer, servers = kafka
    for n in range(7):
        producer.produce(TOPIC, key=b"edx.ui.lms.link_clicked", value=b"event %d" % n)
    assert producer.flush(10) == 0
    consume(servers, 3)

    lag = read_event_bus_lag(timeout=5)
    assert (lag.backend, lag.measured, lag.reason, lag.stream, lag.length) == ("kafka", True, None, TOPIC, 7)
    (group,) = lag.groups
    assert (group.name, group.lag, group.pending) == (GROUP, 4, None)  # Kafka has no "pending" count

    consume(servers, 4)
    assert read_event_bus_lag(timeout=5).groups[0].lag == 0


def test_kafka_lag_on_the_endpoint_and_in_the_report(kafka, kafka_settings, client):
    # pylint: disable=import-outside-toplevel
    from prometheus_client.parser import text_string_to_metric_families

    from aspects_routing.metrics.event_bus_lag import EventBusLagCollector
    from aspects_routing.metrics.exposition import register_collector, unregister_collector

    producer, servers = kafka
    for n in range(5):
        producer.produce(TOPIC, value=b"event %d" % n)
    assert producer.flush(10) == 0
    consume(servers, 2)

    token = "t" * 32
    kafka_settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus", "METRICS_TOKEN": token}
    register_collector(EventBusLagCollector)
    try:
        response = client.get("/aspects-routing/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    finally:
        unregister_collector(EventBusLagCollector)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }
    assert samples[("aspects_event_bus_stream_length", (("stream", TOPIC),))] == 5
    assert samples[("aspects_event_bus_lag", (("group", GROUP), ("stream", TOPIC)))] == 3
    assert not [key for key in samples if key[0] == "aspects_event_bus_pending"]

    out = io.StringIO()
    call_command("aspects_scaling_report", "--format", "json", "--no-clickhouse", "--timeout", "10", stdout=out)
    bus = json.loads(out.getvalue())["event_bus"]
    assert bus["status"] == "ok"
    lag = bus["data"]["lag"]
    assert (lag["backend"], lag["measured"], lag["length"], lag["location"]) == ("kafka", True, 5, servers)
    assert [(g["name"], g["lag"], g["pending"]) for g in lag["groups"]] == [(GROUP, 3, None)]
    out = io.StringIO()
    call_command("aspects_scaling_report", "--no-clickhouse", "--timeout", "10", stdout=out)
    (row,) = [line.split() for line in out.getvalue().splitlines() if line.split()[:1] == [GROUP]]
    assert row[1:3] == ["3", "n/a"]  # lag, pending


def test_kafka_credentials_never_reach_the_output(kafka, kafka_settings):  # pylint: disable=unused-argument
    """With an API key and secret the client talks SASL_SSL, which the mock does not: not measured, nothing leaked."""
    kafka_settings.EVENT_BUS_KAFKA_API_KEY = "aspects-key"
    kafka_settings.EVENT_BUS_KAFKA_API_SECRET = "s3cret-kafka"
    lag = read_event_bus_lag(timeout=2)
    assert lag.backend == "kafka" and not lag.measured, lag
    assert "s3cret-kafka" not in repr(lag)
    out = io.StringIO()
    call_command("aspects_scaling_report", "--format", "text", "--no-clickhouse", "--timeout", "5", stdout=out)
    assert "s3cret-kafka" not in out.getvalue()
