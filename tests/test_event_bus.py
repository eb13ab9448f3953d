"""
Event-bus transport, producer side: settings rewiring (pure), and tracking events
emitted in a real test LMS process landing in the real Redis stream.
"""

import json
import subprocess
import sys

import pytest
from django.test import override_settings
from event_routing_backends.utils.settings import event_tracking_backends_config

from aspects_routing.metrics.event_bus_lag import GroupLag, group_risks, read_event_bus_lag
from aspects_routing.metrics.recorder import current_store
from aspects_routing.transport import consumer_command
from aspects_routing.transport.consumer import claim_threshold, parse_consume_events_argv
from aspects_routing.transport.event_bus_settings import (
    CELERY_BACKEND,
    EVENT_BUS_BACKEND,
    SYNC_ROUTER,
    TRACKING_EVENT_TYPE,
    merge_producer_config,
    rewire_tracking_backends,
)
from aspects_routing.transport.producer_metrics import FAILED, SENT
from tests.broker import queued_task_names
from tests.conftest import ROOT, subprocess_env, wait_for


class _Settings:
    LMS_ROOT_URL = "http://lms"


def erb_default_backends():
    """EVENT_TRACKING_BACKENDS as event-routing-backends builds it (current releases), plus a log backend."""
    backends = event_tracking_backends_config(_Settings, ["problem_check"], ["problem_check"])
    backends["tracking_logs"] = {"ENGINE": "eventtracking.backends.logger.LoggerBackend", "OPTIONS": {}}
    return backends


def legacy_backends():
    """The per-format top-level layout of older event-routing-backends releases."""

    def one(name, processor):
        return {
            "ENGINE": CELERY_BACKEND,
            "OPTIONS": {
                "backend_name": name,
                "processors": [
                    {"ENGINE": "eventtracking.processors.whitelist.NameWhitelistProcessor",
                     "OPTIONS": {"whitelist": ["problem_check"]}},
                    {"ENGINE": processor, "OPTIONS": {}},
                ],
                "backends": {
                    name: {"ENGINE": "event_routing_backends.backends.events_router.EventsRouter",
                           "OPTIONS": {"processors": [], "backend_name": name}}
                },
            },
        }

    return {
        "xapi": one("xapi", "event_routing_backends.processors.xapi.transformer_processor.XApiProcessor"),
        "caliper": one("caliper", "event_routing_backends.processors.caliper.transformer_processor.CaliperProcessor"),
        "tracking_logs": {"ENGINE": "eventtracking.backends.logger.LoggerBackend", "OPTIONS": {}},
    }


def test_current_layout_is_rewired_to_the_event_bus():
    original = erb_default_backends()
    snapshot = json.dumps(original, default=list, sort_keys=True)
    rewired, layout, keys = rewire_tracking_backends(original)
    assert (layout, keys) == ("current", ("event_transformer",))
    top = rewired["event_transformer"]
    assert top["ENGINE"] == EVENT_BUS_BACKEND
    assert {name: b["ENGINE"] for name, b in top["OPTIONS"]["backends"].items()} == {
        "xapi": SYNC_ROUTER,
        "caliper": SYNC_ROUTER,
    }
    # Processors, whitelists and other backends are kept; the input is not modified.
    assert top["OPTIONS"]["processors"] == original["event_transformer"]["OPTIONS"]["processors"]
    assert rewired["tracking_logs"] == original["tracking_logs"]
    assert json.dumps(original, default=list, sort_keys=True) == snapshot
    # Applying it again changes nothing (ready() runs in every process, maybe twice).
    assert rewire_tracking_backends(rewired)[0] == rewired


def test_legacy_layout_becomes_one_event_bus_backend():
    rewired, layout, keys = rewire_tracking_backends(legacy_backends())
    assert (layout, keys) == ("legacy", ("event_transformer",))
    assert set(rewired) == {"event_transformer", "tracking_logs"}
    nested = rewired["event_transformer"]["OPTIONS"]["backends"]
    assert {name: b["ENGINE"] for name, b in nested.items()} == {"xapi": SYNC_ROUTER, "caliper": SYNC_ROUTER}
    # The per-format whitelist and transformer now run in the nested router, as in current releases.
    assert [p["ENGINE"].rsplit(".", 1)[1] for p in nested["xapi"]["OPTIONS"]["processors"]] == [
        "NameWhitelistProcessor",
        "XApiProcessor",
    ]


@pytest.mark.parametrize("backends", [erb_default_backends(), legacy_backends()], ids=["current", "legacy"])
def test_rewired_settings_build_a_real_tracker(backends):
    """event-tracking's own DjangoTracker instantiates the rewired settings."""
    from eventtracking.backends.event_bus import EventBusRoutingBackend  # pylint: disable=import-outside-toplevel
    from eventtracking.django.django_tracker import DjangoTracker  # pylint: disable=import-outside-toplevel
    from event_routing_backends.backends.sync_events_router import SyncEventsRouter  # pylint: disable=C0415

    rewired, _layout, _keys = rewire_tracking_backends(backends)
    with override_settings(EVENT_TRACKING_BACKENDS=rewired):
        tracker = DjangoTracker()
    backend = tracker.backends["event_transformer"]
    assert isinstance(backend, EventBusRoutingBackend)
    assert {type(b) for b in backend.backends.values()} == {SyncEventsRouter}
    # Exactly one backend emits to the bus: two would put every event on the stream twice.
    assert sum(isinstance(b, EventBusRoutingBackend) for b in tracker.backends.values()) == 1


def test_missing_backend_is_reported_not_invented():
    rewired, layout, keys = rewire_tracking_backends({"tracking_logs": {"ENGINE": "x.Logger"}})
    assert (layout, keys, rewired) == ("missing", (), {"tracking_logs": {"ENGINE": "x.Logger"}})


def test_producer_config_merge_keeps_other_producers():
    other = {"org.openedx.learning.certificate.created.v1": {"certs": {"event_key_field": "c", "enabled": False}}}
    merged = merge_producer_config(other, "analytics")
    assert merged["org.openedx.learning.certificate.created.v1"] == other["org.openedx.learning.certificate.created.v1"]
    assert merged[TRACKING_EVENT_TYPE] == {"analytics": {"event_key_field": "tracking_log.name", "enabled": True}}
    # An operator's second topic for the same signal stays; a disabled Aspects topic is enabled.
    mine = {TRACKING_EVENT_TYPE: {"other": {"event_key_field": "x", "enabled": True},
                                  "analytics": {"event_key_field": "tracking_log.name", "enabled": False}}}
    merged = merge_producer_config(mine, "analytics")
    assert merged[TRACKING_EVENT_TYPE]["other"] == {"event_key_field": "x", "enabled": True}
    assert merged[TRACKING_EVENT_TYPE]["analytics"]["enabled"] is True


def test_consumer_command_is_the_documented_safe_one():
    argv = consumer_command(consumer_name="aspects-consumer-0")
    assert argv == [
        "./manage.py", "lms", "consume_events", "-t", "analytics", "-g", "event_routing_backends",
        "--extra", '{"consumer_name":"aspects-consumer-0","check_backlog":true,"claim_msgs_older_than":2000}',
    ]
    # openedx-events' own argument parser reads it back as a safe start that claims.
    parsed = parse_consume_events_argv(argv)
    assert (parsed.topic, parsed.group) == ("analytics", "event_routing_backends")
    assert (parsed.safe, parsed.claims) == (True, True)
    unsafe = parse_consume_events_argv(argv[:-1] + ['{"consumer_name": "c"}'])
    assert (unsafe.safe, unsafe.claims) == (False, False)
    assert consumer_command(consumer_name="c", claim_idle_ms=30_000)[-1].endswith('"claim_msgs_older_than":30000}')
    with pytest.raises(ValueError, match="consumer_name"):
        consumer_command(consumer_name=" ")
    # Other command lines that mention the command are not consumers (and never raise).
    assert parse_consume_events_argv(["manage.py", "help", "consume_events"]) is None
    assert parse_consume_events_argv(["manage.py", "consume_events", "-t", "a", "-g", "b", "--extra", "{bad"]) is None


def test_claim_threshold_follows_the_processing_time():
    assumed = claim_threshold()
    assert (assumed.idle_ms, assumed.source) == (2000, "assumed: the transform plus one POST to Ralph")
    assert claim_threshold(0.05, "measured").idle_ms == 2000  # the floor
    slow = claim_threshold(0.75, "measured: 15 min")
    assert slow.idle_ms == 15_000
    assert slow.explanation == (
        "claim_msgs_older_than = max(2000 ms, 20 x 0.75 s mean processing per event, measured: 15 min) = 15000 ms"
    )
    assert claim_threshold(float("nan")).idle_ms == 2000


def test_group_risks():
    group = {"lag": None, "entries-read": None, "last-delivered-id": b"5-0"}
    assert group_risks(group, 1, "6-0", "0-1", ()) == ("lag_unknown",)
    trimmed = {"lag": 3, "entries-read": 2, "last-delivered-id": b"2-0"}
    assert group_risks(trimmed, 1, "6-0", "5-0", ()) == ("trimmed_before_read",)
    waiting = {"lag": 3, "entries-read": 2, "last-delivered-id": b"2-0"}
    assert group_risks(waiting, 0, "1-0", "0-1", ()) == ("backlog_without_consumer",)
    healthy = {"lag": 0, "entries-read": 9, "last-delivered-id": b"9-0"}
    assert group_risks(healthy, 1, "1-0", "0-1", ()) == ()
    g = GroupLag("g", 0, 0, "9-0", 9, (), unsafe_starts=())
    assert g.skipped == 0


############################## producer side, in a real LMS process ##############################

EMIT = """
import django, sys
django.setup()
from eventtracking import tracker
from aspects_routing.metrics import flush
with tracker.get_tracker().context("probe", {"user_id": 1, "username": "learner"}):
    for url in sys.argv[1:]:
        tracker.emit("edx.ui.lms.link_clicked", {"target_url": url})
    tracker.emit("edx.not.an.aspects.event", {})
flush()
"""

STREAM = "test-analytics"  # EVENT_BUS_TOPIC_PREFIX "test" in tests.settings.common
EVENT_BUS_YAML = json.dumps({"ASPECTS_ROUTING": {"QUEUE": "edx.lms.core.aspects", "TRANSPORT": "event_bus"}})


def emit(urls=("http://example.com/0", "http://example.com/1", "http://example.com/2"), **env):
    """Emit one link_clicked event per URL (and one non-Aspects event) from a fresh test LMS process."""
    subprocess.run(
        [sys.executable, "-c", EMIT, *urls], cwd=ROOT, env=subprocess_env(**env), check=True, timeout=120
    )


def stream_event_names(client):
    """Tracking event names in the stream, decoded as the real consumer decodes them."""
    # pylint: disable=import-outside-toplevel
    from edx_event_bus_redis.internal.message import RedisMessage
    from openedx_events.analytics.signals import TRACKING_EVENT_EMITTED
    from openedx_events.event_bus.avro.deserializer import deserialize_bytes_to_event_data

    names = []
    for entry in client.xrange(STREAM):
        message = RedisMessage.parse(entry, STREAM)
        assert message.event_metadata.event_type == TRACKING_EVENT_TYPE
        names.append(deserialize_bytes_to_event_data(message.event_data, TRACKING_EVENT_EMITTED)["tracking_log"].name)
    return names


def counters():
    return current_store().totals().counters


@pytest.mark.parametrize(
    "env",
    [
        {"DJANGO_SETTINGS_MODULE": "tests.settings.edx_order", "ASPECTS_TEST_ENV_TOKENS": EVENT_BUS_YAML},
        {"DJANGO_SETTINGS_MODULE": "tests.settings.tutor_event_bus"},
    ],
    ids=["edx-yaml", "tutor-appended"],
)
def test_tracking_events_go_to_the_stream_not_to_celery(redis_client, env):
    emit(**env)
    assert stream_event_names(redis_client) == ["edx.ui.lms.link_clicked"] * 3
    # No Celery message anywhere: kombu's Redis transport keeps each queue in a list.
    assert [k for k in redis_client.keys("*") if redis_client.type(k) == b"list"] == []
    sent = (SENT, (("event", "edx.ui.lms.link_clicked"), ("topic", "analytics")))
    assert counters().get(sent) == 3
    assert not [series for series in counters() if series[0] == FAILED]


def test_celery_transport_control(redis_client):
    """The same emission with the default transport: a Celery task, no stream (the assertions above can fail)."""
    emit(DJANGO_SETTINGS_MODULE="tests.settings.edx_order")
    assert not redis_client.exists(STREAM)
    assert queued_task_names(redis_client, "edx.lms.core.aspects") == ["eventtracking.tasks.send_event"] * 3


def test_send_failures_are_counted(redis_client):
    """The Redis producer swallows errors; the failures are counted per event, none as sent."""
    dead = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    emit(
        DJANGO_SETTINGS_MODULE="tests.settings.tutor_event_bus",
        ASPECTS_TEST_EVENT_BUS_URL=dead,
    )
    failed = (FAILED, (("event", "edx.ui.lms.link_clicked"), ("reason", "producer_error"), ("topic", "analytics")))
    assert counters().get(failed) == 3
    assert not [series for series in counters() if series[0] == SENT]


def test_lag_of_a_stream_nobody_consumes(redis_client, settings):
    emit(DJANGO_SETTINGS_MODULE="tests.settings.tutor_event_bus")
    settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus"}
    lag = read_event_bus_lag(timeout=2)
    assert (lag.backend, lag.measured, lag.stream, lag.length, lag.groups) == ("redis", True, STREAM, 3, ())
    assert "@" not in lag.location and lag.location.startswith("redis://127.0.0.1")


def test_lag_and_producer_counters_on_the_metrics_endpoint(redis_client, settings, client):
    """Scrape /aspects-routing/metrics: the lag gauges read the stream, the counters come from the store."""
    # pylint: disable=import-outside-toplevel
    from prometheus_client.parser import text_string_to_metric_families

    from aspects_routing.metrics.event_bus_lag import EventBusLagCollector
    from aspects_routing.metrics.exposition import register_collector, unregister_collector

    emit(DJANGO_SETTINGS_MODULE="tests.settings.tutor_event_bus")
    redis_client.xgroup_create(STREAM, "event_routing_backends", id="0")
    redis_client.xreadgroup("event_routing_backends", "c1", {STREAM: ">"}, count=1)  # one delivered, not acked
    # c1 then disappears: once its entry is older than the consumers' claim threshold, it is stalled.
    threshold = claim_threshold().idle_ms
    assert wait_for(
        lambda: redis_client.xpending_range(STREAM, "event_routing_backends", "-", "+", 1, idle=threshold), timeout=30
    )
    token = "t" * 32
    settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus", "METRICS_TOKEN": token}
    register_collector(EventBusLagCollector)  # what the startup step does when TRANSPORT is "event_bus"
    try:
        response = client.get("/aspects-routing/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    finally:
        unregister_collector(EventBusLagCollector)
    assert response.status_code == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.content.decode())
        for s in family.samples
    }
    group = (("group", "event_routing_backends"), ("stream", STREAM))
    assert samples[("aspects_event_bus_stream_length", (("stream", STREAM),))] == 3
    assert samples[("aspects_event_bus_lag", group)] == 2
    assert samples[("aspects_event_bus_pending", group)] == 1
    assert samples[("aspects_event_bus_up", (("stream", STREAM),))] == 1
    assert samples[("aspects_event_bus_stalled_pending", group)] == 1
    assert samples[("aspects_event_bus_consumer_pending", (("consumer", "c1"),) + group)] == 1
    assert samples[("aspects_event_bus_consumer_idle_seconds", (("consumer", "c1"),) + group)] >= threshold / 1000
    sent = ("aspects_event_bus_events_sent_total", (("event", "edx.ui.lms.link_clicked"), ("topic", "analytics")))
    assert samples[sent] == 3


def _tracking_log(name):
    from datetime import datetime, timezone  # pylint: disable=import-outside-toplevel

    from openedx_events.analytics.data import TrackingLogData  # pylint: disable=import-outside-toplevel

    return TrackingLogData(name=name, timestamp=datetime.now(timezone.utc), data="{}", context="{}")


def test_receiver_counts_consumed_events_and_a_producer_that_did_not_load(redis_client, settings):
    """The counting receiver, called as Django calls it, in this process."""
    # pylint: disable=import-outside-toplevel
    from openedx_events.tooling import SIGNAL_PROCESSED_FROM_EVENT_BUS

    from aspects_routing.metrics import flush
    from aspects_routing.transport.producer_metrics import CONSUMED, count_tracking_event

    settings.EVENT_BUS_PRODUCER_CONFIG = merge_producer_config({}, "analytics")
    # openedx-events drops its cached producer on setting_changed; this path does not import.
    settings.EVENT_BUS_PRODUCER = "no.such.module.create_producer"
    with pytest.warns(UserWarning, match="EVENT_BUS_PRODUCER"):
        count_tracking_event(None, tracking_log=_tracking_log("problem_check"), **{SIGNAL_PROCESSED_FROM_EVENT_BUS: False})
    count_tracking_event(None, tracking_log=_tracking_log("problem_check"), **{SIGNAL_PROCESSED_FROM_EVENT_BUS: True})
    assert flush()
    found = counters()
    assert found[(FAILED, (("event", "problem_check"), ("reason", "no_producer"), ("topic", "analytics")))] == 1
    assert found[(CONSUMED, (("event", "problem_check"),))] == 1
    assert not [series for series in found if series[0] == SENT]


def test_lag_is_not_measured_without_a_reachable_bus(settings, monkeypatch):
    settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus"}
    settings.EVENT_BUS_REDIS_CONNECTION_URL = "redis://:s3cret@127.0.0.1:1/0"  # nothing listens on port 1
    lag = read_event_bus_lag(timeout=1)
    assert (lag.backend, lag.measured, lag.reason) == ("redis", False, "not measured: ConnectionError")
    assert "s3cret" not in repr(lag)
    settings.EVENT_BUS_PRODUCER = "edx_event_bus_kafka.create_producer"
    lag = read_event_bus_lag(timeout=1)
    assert (lag.backend, lag.measured) == ("kafka", False)
    assert lag.reason == "not measured: EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS is not set"
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # as if it were not installed: import fails
    lag = read_event_bus_lag(timeout=1)
    assert (lag.backend, lag.measured, lag.reason) == ("kafka", False, "not measured: confluent_kafka is not installed")


def test_redacted_location():
    from aspects_routing.metrics.event_bus_lag import redacted_location  # pylint: disable=import-outside-toplevel

    assert redacted_location("rediss://user:s3cret@redis.example.com:6380/2") == "rediss://redis.example.com:6380/2"
    assert redacted_location("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


############################## per-event INFO lines, both transports ##############################

EMIT_LOGGED = """
import logging, sys, django
django.setup()
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s|%(levelname)s|%(message)s", force=True)
from eventtracking import tracker
from openedx_events.analytics.signals import TRACKING_EVENT_EMITTED
if "--failing-receiver" in sys.argv:
    def broken(sender, **kwargs):
        raise RuntimeError("receiver broke")
    TRACKING_EVENT_EMITTED.connect(broken, weak=False)
with tracker.get_tracker().context("probe", {"user_id": 1, "username": "learner"}):
    for n in range(3):
        tracker.emit("edx.ui.lms.link_clicked", {"target_url": f"http://example.com/{n}"})
    tracker.emit("edx.not.an.aspects.event", {})
"""


def emit_logged(routing, *args, **env):
    """Emit three Aspects events and another from a fresh test LMS logging at INFO; return its log."""
    tokens = json.dumps({"ASPECTS_ROUTING": {"QUEUE": "edx.lms.core.aspects", **routing}})
    return subprocess.run(
        [sys.executable, "-c", EMIT_LOGGED, *args],
        cwd=ROOT,
        env=subprocess_env(DJANGO_SETTINGS_MODULE="tests.settings.edx_order", ASPECTS_TEST_ENV_TOKENS=tokens, **env),
        check=True,
        timeout=120,
        capture_output=True,
        text=True,
    ).stdout


def per_event_lines(output):
    """{logger: number of its per-tracking-event INFO lines} in a log."""
    from aspects_routing.transport.tracking_logs import PER_EVENT_LINES  # pylint: disable=import-outside-toplevel

    found = {}
    for line in output.splitlines():
        name, _sep, rest = line.partition("|")
        if name in PER_EVENT_LINES and rest.startswith("INFO|" + PER_EVENT_LINES[name].prefix):
            found[name] = found.get(name, 0) + 1
    return found


@pytest.mark.parametrize(
    "transport, lines",
    [
        # Two lines per Aspects event, one for the other event.
        ("celery", {"eventtracking.backends.async_routing": 7}),
        (
            "event_bus",
            {
                "eventtracking.backends.event_bus": 3,
                "openedx_events.tooling": 3,
                "edx_event_bus_redis.internal.producer": 3,
            },
        ),
    ],
)
def test_per_event_info_lines_are_dropped_unless_asked_for(redis_client, transport, lines):
    # Asked for: the real packages write these lines (so the filter has something to drop).
    assert per_event_lines(emit_logged({"TRANSPORT": transport, "LOG_EACH_TRACKING_EVENT": True})) == lines
    redis_client.flushdb()
    # Default: none of them, and the events still leave the LMS.
    assert per_event_lines(emit_logged({"TRANSPORT": transport})) == {}
    if transport == "celery":
        assert queued_task_names(redis_client, "edx.lms.core.aspects") == ["eventtracking.tasks.send_event"] * 3
    else:
        assert stream_event_names(redis_client) == ["edx.ui.lms.link_clicked"] * 3


def test_failures_are_never_dropped(redis_client):  # pylint: disable=unused-argument
    """A receiver's failure and a producer's error still reach the log by default."""
    output = emit_logged(
        {"TRANSPORT": "event_bus"}, "--failing-receiver", ASPECTS_TEST_EVENT_BUS_URL="redis://127.0.0.1:1/0"
    )
    responses = [line for line in output.split("\nopenedx_events.tooling|") if line.startswith("INFO|Responses")]
    assert len(responses) == 3 and all("RuntimeError('receiver broke')" in r for r in responses)
    assert output.count("edx_event_bus_redis.internal.producer|ERROR|") == 3
    assert output.count("django.dispatch|ERROR|Error calling broken") == 3


def test_filter_leaves_other_records_alone(settings):
    import logging  # pylint: disable=import-outside-toplevel

    from aspects_routing.transport.tracking_logs import PerEventLogFilter  # pylint: disable=import-outside-toplevel

    def record(level, msg):
        return logging.LogRecord("openedx_events.tooling", level, __file__, 1, msg, None, None)

    tracking = f"Responses of the Open edX Event <{TRACKING_EVENT_TYPE}>: \n[(<function a at 0x1>, None)]"
    tooling = PerEventLogFilter("openedx_events.tooling")
    assert not tooling.filter(record(logging.INFO, tracking))
    other = tracking.replace(TRACKING_EVENT_TYPE, "org.openedx.content_authoring.course.catalog_info.changed.v1")
    assert tooling.filter(record(logging.INFO, other))
    assert tooling.filter(record(logging.WARNING, tracking))
    assert tooling.filter(record(logging.INFO, 42))
    assert tooling.filter(record(logging.INFO, tracking.replace(", None)]", ", None),\n (<function b at 0x2>, 'ok')]")))
    settings.ASPECTS_ROUTING = {"LOG_EACH_TRACKING_EVENT": True}
    assert tooling.filter(record(logging.INFO, tracking))


def test_stalled_entries_are_reported_per_consumer_with_the_fix(redis_client, settings):
    """An entry held past the claim threshold by a consumer that is gone: the lag reader and the report name it."""
    # pylint: disable=import-outside-toplevel
    from aspects_routing.scaling.collectors.event_bus import EventBusReport
    from aspects_routing.scaling.recommendations import event_bus_findings

    for i in range(3):
        redis_client.xadd(STREAM, {"n": i})
    redis_client.xgroup_create(STREAM, "event_routing_backends", id="0")
    redis_client.xreadgroup("event_routing_backends", "pod-gone", {STREAM: ">"}, count=2)
    redis_client.xreadgroup("event_routing_backends", "pod-alive", {STREAM: ">"}, count=1)
    settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus"}
    assert wait_for(lambda: read_event_bus_lag(timeout=2).group("event_routing_backends").stalled_pending == 3)
    redis_client.xack(STREAM, "event_routing_backends", redis_client.xpending_range(
        STREAM, "event_routing_backends", "-", "+", 1, consumername="pod-alive")[0]["message_id"])
    group = read_event_bus_lag(timeout=2).group("event_routing_backends")
    by_name = {c.name: c for c in group.consumers}
    assert (by_name["pod-gone"].pending, by_name["pod-gone"].stalled) == (2, 2)
    assert by_name["pod-gone"].oldest_pending_ms >= claim_threshold().idle_ms
    assert (by_name["pod-alive"].pending, by_name["pod-alive"].stalled) == (0, 0)
    assert [c.name for c in group.stalled_consumers] == ["pod-gone"]
    assert group.stall_threshold_ms == claim_threshold().idle_ms

    report = EventBusReport("event_routing_backends", read_event_bus_lag(timeout=2), (), None)
    [warning] = [r for r in event_bus_findings(report) if "pod-gone" in r.title]
    assert warning.severity == "warning"
    assert "holds 2 entries" in warning.title
    assert "kubectl rollout restart deployment/aspects-event-consumer" in [c.value for c in warning.changes]


def test_an_unreadable_bus_is_up_0_not_missing(settings):
    """A bus that cannot be read: aspects_event_bus_up 0, and no stale gauge."""
    from aspects_routing.metrics.event_bus_lag import EventBusLagCollector  # pylint: disable=import-outside-toplevel

    settings.EVENT_BUS_REDIS_CONNECTION_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus"}
    families = {f.name: f.samples for f in EventBusLagCollector(timeout=1).collect()}
    assert [(s.labels, s.value) for s in families["aspects_event_bus_up"]] == [({"stream": STREAM}, 0)]
    assert all(not samples for name, samples in families.items() if name != "aspects_event_bus_up")


HUNG_REQUEST = """
import json, logging, os, sys, time
import django
django.setup()
import redis
from django.http import HttpResponse
from django.test import RequestFactory
from eventtracking import tracker
from aspects_routing.metrics import flush
from aspects_routing.metrics.recorder import current_store
from aspects_routing.transport.producer_metrics import FAILED

errors = []
class Capture(logging.Handler):
    def emit(self, record):
        errors.append(self.format(record))
capture = Capture(logging.ERROR)
capture.setFormatter(logging.Formatter("%(name)s|%(levelname)s|%(message)s"))
logging.getLogger().addHandler(capture)

def failed():
    flush()
    return sum(v for (name, _labels), v in current_store().totals().counters.items() if name == FAILED)

def view(request):
    with tracker.get_tracker().context("request", {"user_id": 1, "username": "learner"}):
        for i in range(5):
            t = time.perf_counter()
            tracker.emit("edx.ui.lms.link_clicked", {"target_url": f"http://example.com/private-answer/{i}"})
            each.append(time.perf_counter() - t)
    return HttpResponse("ok")

each = []

# A running LMS has sent events before: the producer, its connection and the Avro
# schema exist (the first event of a process pays for building them).
with tracker.get_tracker().context("warm", {"user_id": 1, "username": "learner"}):
    tracker.emit("edx.ui.lms.link_clicked", {"target_url": "http://example.com/warm"})
before = failed()
# The bus Redis stops answering (every command, connection handshakes included) for 5 s.
redis.Redis.from_url(os.environ["BUS_ADMIN_URL"]).execute_command("CLIENT", "PAUSE", 5000, "ALL")
started = time.perf_counter()
response = view(RequestFactory().get("/courses/x/courseware"))
elapsed = time.perf_counter() - started
print(json.dumps({"status": response.status_code, "elapsed": elapsed, "each": each, "failed": failed() - before,
                  "errors": errors}))
"""


@pytest.mark.slow
def test_a_paused_bus_costs_a_request_milliseconds_not_seconds(spare_redis):
    """
    The documented bus URL timeouts: a request emitting 5 tracking events while the
    bus Redis is paused (CLIENT PAUSE ALL) returns within 0.5 s, each event a counted
    send failure, logged by name and id only.

    0.5 s is the acceptance bound of the issue: 5 events x the 50 ms documented
    timeout (BUS_SOCKET_TIMEOUT) is 0.25 s, the rest is headroom for a loaded
    machine. Without the timeouts the same request waits for the pause to end (5 s).
    """
    from aspects_routing.transport.event_bus_settings import BUS_TIMEOUT_QUERY  # pylint: disable=C0415

    bus = spare_redis()
    url = f"redis://127.0.0.1:{bus.port}/0"
    run = subprocess.run(
        [sys.executable, "-c", HUNG_REQUEST],
        cwd=ROOT,
        env=subprocess_env(
            DJANGO_SETTINGS_MODULE="tests.settings.tutor_event_bus",
            ASPECTS_TEST_EVENT_BUS_URL=f"{url}?{BUS_TIMEOUT_QUERY}",
            BUS_ADMIN_URL=url,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == 200
    assert result["elapsed"] < 0.5, result
    assert result["failed"] == 5
    producer_errors = [e for e in result["errors"] if e.startswith("edx_event_bus_redis.internal.producer|ERROR|")]
    assert len(producer_errors) == 5, result["errors"]
    for line in producer_errors:
        assert "tracking event edx.ui.lms.link_clicked (id " in line
        assert "private-answer" not in line and "learner" not in line  # not the event itself
