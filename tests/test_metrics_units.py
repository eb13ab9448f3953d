"""
Fast tests of the metrics' pure parts and in-process pieces: buckets,
percentile interpolation, the bounded buffer, the store codec, the API's
summaries, the exposition and the endpoint's access rules.

The stores used here are the real :class:`MemoryStore` (what runs when no Redis
is configured) and a :class:`RedisStore` on the private test Redis.
"""

import contextlib
import json
import threading
import time

import pytest
from django.contrib.auth.models import AnonymousUser, User
from django.test import RequestFactory
from edx_django_utils.monitoring import TelemetryBackend
from edx_django_utils.monitoring.internal.backends import configured_backends
from prometheus_client import CollectorRegistry

from aspects_routing.metrics import api, count, exposition, flush, hooks, recorder, views
from aspects_routing.metrics.buckets import (
    BOUNDS,
    N_BUCKETS,
    bucket_index,
    cumulative,
    minute_of,
    quantile,
    window_minutes,
    window_seconds,
)
from aspects_routing.metrics.buffer import Buffer
from aspects_routing.metrics.names import DROPPED, FAILED, PUBLISHED, QUEUE_WAIT, RUNTIME, STARTED, SUCCEEDED
from aspects_routing.metrics.store import Figures, Histogram, MemoryStore, RedisStore, decode, encode, redact_url
from tests.conftest import wait_for

LABELS = (("queue", "edx.lms.core.aspects"), ("task", "eventtracking.tasks.send_event"))


# ---------------------------------------------------------------- buckets


def test_bucket_index_is_le_inclusive():
    assert bucket_index(0.0) == 0
    assert bucket_index(-1.0) == 0  # clock skew between hosts
    assert bucket_index(0.005) == 0  # equal to a bound: that bound's bucket
    assert bucket_index(0.0051) == 1
    assert bucket_index(0.3) == BOUNDS.index(0.5)
    assert bucket_index(1800.0) == len(BOUNDS) - 1
    assert bucket_index(1800.1) == len(BOUNDS)  # +Inf
    assert N_BUCKETS == len(BOUNDS) + 1


def test_bounds_span_milliseconds_to_tens_of_minutes():
    assert BOUNDS[0] == 0.005 and BOUNDS[-1] == 1800.0
    assert list(BOUNDS) == sorted(BOUNDS)


def test_quantile_interpolates_within_the_bucket():
    counts = [0] * N_BUCKETS
    counts[BOUNDS.index(1.0)] = 100  # 100 observations in (0.5, 1.0]
    assert quantile(0.5, counts) == pytest.approx(0.75)
    assert quantile(0.99, counts) == pytest.approx(0.995)


def test_quantile_across_buckets_and_first_bucket_starts_at_zero():
    counts = [0] * N_BUCKETS
    counts[0] = 50  # (0, 0.005]
    counts[BOUNDS.index(10.0)] = 50  # (5, 10]
    assert quantile(0.25, counts) == pytest.approx(0.0025)
    assert quantile(0.75, counts) == pytest.approx(7.5)


def test_quantile_in_the_inf_bucket_returns_the_highest_bound():
    counts = [0] * N_BUCKETS
    counts[-1] = 3
    assert quantile(0.5, counts) == BOUNDS[-1]


def test_quantile_without_observations_and_bad_input():
    assert quantile(0.5, [0] * N_BUCKETS) is None
    with pytest.raises(ValueError):
        quantile(1.0, [1] * N_BUCKETS)
    with pytest.raises(ValueError):
        quantile(0.5, [1, 2])


def test_cumulative():
    assert cumulative([1, 0, 2, 3]) == [1, 1, 3, 6]


def test_minute_windows():
    now = 600 * 60 + 30.0  # 30 s into minute 600
    assert minute_of(now) == 600
    assert list(window_minutes(now, 1)) == [600]
    assert list(window_minutes(now, 5)) == [596, 597, 598, 599, 600]
    assert window_seconds(now, 1) == 30.0
    assert window_seconds(now, 5) == 4 * 60 + 30.0
    assert window_seconds(600 * 60.0, 1) == 1.0  # never divide by zero
    with pytest.raises(ValueError):
        window_minutes(now, 0)


# ---------------------------------------------------------------- buffer


def test_buffer_counts_and_histograms_by_minute():
    buffer = Buffer()
    buffer.add(10, PUBLISHED, LABELS)
    buffer.add(10, PUBLISHED, LABELS, 2)
    buffer.add(11, PUBLISHED, LABELS)
    buffer.observe(10, RUNTIME, LABELS, 0.3)
    buffer.observe(10, RUNTIME, LABELS, 0.4)
    batch = buffer.drain()
    assert batch.minutes[10][("c", PUBLISHED, LABELS)] == 3
    assert batch.minutes[11][("c", PUBLISHED, LABELS)] == 1
    histogram = batch.minutes[10][("h", RUNTIME, LABELS)]
    assert histogram[BOUNDS.index(0.5)] == 2
    assert histogram[N_BUCKETS] == pytest.approx(0.7)
    assert batch.events == 6
    assert buffer.drain().empty


def test_buffer_is_bounded_and_counts_what_it_drops():
    buffer = Buffer(max_series=2)
    buffer.add(1, "a_total", ())
    buffer.add(1, "b_total", ())
    buffer.add(1, "c_total", (), 5)  # a third series does not fit
    buffer.observe(1, RUNTIME, LABELS, 1.0)  # nor does a histogram
    buffer.add(1, "a_total", (), 2)  # existing series still grow
    batch = buffer.drain()
    assert batch.dropped == 6
    assert batch.minutes[1] == {("c", "a_total", ()): 3, ("c", "b_total", ()): 1}
    buffer.lost(4)
    assert buffer.drain().dropped == 4


def test_buffer_loses_nothing_under_concurrent_writers():
    buffer = Buffer()

    def write():
        for _ in range(5000):
            buffer.add(1, PUBLISHED, LABELS)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    drained = 0
    while any(t.is_alive() for t in threads):
        drained += buffer.drain().events
    for thread in threads:
        thread.join()
    drained += buffer.drain().events
    assert drained == 20000


# ---------------------------------------------------------------- store codec and stores


def test_encode_decode_round_trip():
    buffer = Buffer()
    buffer.add(1, PUBLISHED, LABELS, 7)
    buffer.observe(1, QUEUE_WAIT, LABELS, 0.02)
    buffer.observe(1, QUEUE_WAIT, LABELS, 99999.0)
    fields = encode(buffer.drain().minutes[1])
    assert all(json.loads(key)[0] in ("c", "b", "s") for key in fields)
    figures = decode({k.encode(): str(v).encode() for k, v in fields.items()})  # as Redis returns them
    assert figures.counters == {(PUBLISHED, LABELS): 7}
    histogram = figures.histograms[(QUEUE_WAIT, LABELS)]
    assert histogram.count == 2
    assert histogram.counts[BOUNDS.index(0.025)] == 1 and histogram.counts[-1] == 1
    assert histogram.sum == pytest.approx(99999.02)


def test_decode_skips_foreign_fields():
    figures = decode({b"not json": b"1", b'["b", "x", {}, 99]': b"1", b'["c", "ok_total", {}]': b"2"})
    assert figures.counters == {("ok_total", ()): 2}
    assert figures.histograms == {}


def test_redact_url_hides_credentials():
    assert redact_url("redis://:s3cret@redis:6379/2") == "redis://***@redis:6379/2"
    assert redact_url("redis://user:s3cret@redis/0") == "redis://***@redis/0"
    assert redact_url("redis://redis:6379/2") == "redis://redis:6379/2"
    assert redact_url("redis://redis:6379/2?password=s3cret&db=2") == "redis://redis:6379/2?password=***&db=2"
    assert redact_url("unix:///run/redis.sock?db=1&PASSWORD=s3cret") == "unix:///run/redis.sock?db=1&PASSWORD=***"
    assert redact_url("rediss://u:p@redis/0?ssl_cert_reqs=none") == "rediss://***@redis/0?ssl_cert_reqs=none"


def test_memory_store_keeps_totals_and_expires_minutes():
    store = MemoryStore()
    buffer = Buffer()
    buffer.add(100, PUBLISHED, LABELS, 2)
    buffer.lost(3)
    store.write(buffer.drain(), now_minute=100, retention_minutes=10)
    buffer.add(111, PUBLISHED, LABELS, 1)
    store.write(buffer.drain(), now_minute=111, retention_minutes=10)
    assert store.totals().counters == {(PUBLISHED, LABELS): 3, (DROPPED, ()): 3}
    assert set(store.minutes(range(90, 120))) == {111}  # minute 100 is past the retention


def test_redis_store_adds_across_writers_and_expires_minutes(redis_url, redis_client):
    store_a, store_b = RedisStore(redis_url, "t"), RedisStore(redis_url, "t")
    for store in (store_a, store_b):
        buffer = Buffer()
        buffer.add(5, STARTED, LABELS, 2)
        buffer.observe(5, RUNTIME, LABELS, 0.5)
        buffer.observe(5, RUNTIME, LABELS, 0.25)
        store.write(buffer.drain(), now_minute=5, retention_minutes=3)
    totals = store_a.totals()
    assert totals.counters[(STARTED, LABELS)] == 4
    assert totals.histograms[(RUNTIME, LABELS)].count == 4
    assert totals.histograms[(RUNTIME, LABELS)].sum == pytest.approx(1.5)
    assert store_a.minutes([4, 5, 6]).keys() == {5}
    assert 0 < redis_client.ttl("t:metrics:m:5") <= 3 * 60 + 120
    assert redis_client.ttl("t:metrics:total") == -1  # cumulative, for Prometheus counters


# ---------------------------------------------------------------- API summaries


def _figures(counters=None, histograms=None):
    return Figures(counters=counters or {}, histograms=histograms or {})


def test_summarize_rates_percentiles_and_sparkline():
    now = 1000 * 60 + 30.0
    runtime = [0] * N_BUCKETS
    runtime[BOUNDS.index(1.0)] = 10
    by_minute = {
        1000: _figures({(PUBLISHED, LABELS): 30, (STARTED, LABELS): 30, (SUCCEEDED, LABELS): 27, (FAILED, LABELS): 3}),
        997: _figures(
            {(PUBLISHED, LABELS): 60, (SUCCEEDED, LABELS): 60}, {(RUNTIME, LABELS): Histogram(tuple(runtime), 7.5)}
        ),
        900: _figures({(PUBLISHED, LABELS): 1000}),  # outside every window but none
    }
    one, five = api.summarize(by_minute, now, windows=(1, 5))
    assert one.counts == api.Counts(published=30, started=30, succeeded=27, failed=3)
    assert one.rates.published == pytest.approx(1.0)  # 30 in the 30 s of the current minute
    assert one.runtime == api.Latency()
    assert five.counts.published == 90 and five.counts.finished == 90
    assert five.rates.published == pytest.approx(90 / 270)
    assert five.runtime.count == 10 and five.runtime.mean == pytest.approx(0.75)
    assert five.runtime.p50 == pytest.approx(0.75)
    (task,) = five.per_task
    assert (task.task, task.queue) == ("eventtracking.tasks.send_event", "edx.lms.core.aspects")
    sparkline = api.finished_per_minute(by_minute, now)
    assert len(sparkline) == 60 and sparkline[-1] == 30 and sparkline[-4] == 60 and sum(sparkline) == 90


def test_collect_reads_the_memory_store_and_names_it():
    store = MemoryStore()
    buffer = Buffer()
    now = 5000 * 60 + 10.0
    buffer.add(5000, PUBLISHED, LABELS, 4)
    buffer.add(5000, "aspects_event_bus_events_sent_total", (("event", "x"),), 9)  # not a task counter
    store.write(buffer.drain(), now_minute=5000, retention_minutes=60)
    report = api.collect(now=now, store=store)
    assert report.source == "in-process" and report.available
    assert report.window(1).counts.published == 4
    assert report.totals.published == 4
    assert [w.minutes for w in report.windows] == [1, 5, 15, 60]


def test_collect_never_raises_when_the_store_is_down():
    store = RedisStore("redis://:pw@127.0.0.1:1/0", "t", timeout=0.2)  # nothing listens on port 1
    report = api.collect(store=store)
    assert not report.available
    assert report.source == "redis://***@127.0.0.1:1/0"
    assert "ConnectionError" in report.error
    assert report.window(60).counts == api.Counts()


# ---------------------------------------------------------------- exposition


def test_exposition_of_counters_histograms_and_extra_collectors():
    store = MemoryStore()
    buffer = Buffer()
    buffer.add(1, PUBLISHED, LABELS, 3)
    buffer.add(1, "aspects_event_bus_events_sent_total", (("event", "edx.x"),), 2)
    buffer.observe(1, RUNTIME, LABELS, 0.3)
    buffer.lost(1)
    store.write(buffer.drain(), now_minute=1, retention_minutes=60)

    class Lag:  # what another part of the plugin registers: read at scrape time
        def collect(self):
            from prometheus_client.core import GaugeMetricFamily  # pylint: disable=import-outside-toplevel

            yield GaugeMetricFamily("aspects_event_bus_lag", "lag", value=42)

    class Broken:
        def collect(self):
            raise RuntimeError("boom")

    factories = [Lag, Broken]
    for factory in factories:
        exposition.register_collector(factory)
    try:
        registry = exposition.build_registry(store=store, queues=())
        text = exposition.render(registry).decode()
    finally:
        for factory in factories:
            exposition.unregister_collector(factory)
    labels = dict(LABELS)
    assert registry.get_sample_value("aspects_tasks_published_total", labels) == 3
    assert registry.get_sample_value("aspects_event_bus_events_sent_total", {"event": "edx.x"}) == 2
    assert registry.get_sample_value("aspects_task_runtime_seconds_bucket", {**labels, "le": "0.25"}) == 0
    assert registry.get_sample_value("aspects_task_runtime_seconds_bucket", {**labels, "le": "0.5"}) == 1
    assert registry.get_sample_value("aspects_task_runtime_seconds_bucket", {**labels, "le": "+Inf"}) == 1
    assert registry.get_sample_value("aspects_task_runtime_seconds_count", labels) == 1
    assert registry.get_sample_value("aspects_metrics_dropped_total") == 1
    assert registry.get_sample_value("aspects_metrics_store_up") == 1
    assert registry.get_sample_value("aspects_event_bus_lag") == 42
    assert "# TYPE aspects_tasks_published_total counter" in text


def test_exposition_when_the_store_is_down():
    registry = exposition.build_registry(store=RedisStore("redis://127.0.0.1:1/0", "t", timeout=0.2), queues=())
    assert registry.get_sample_value("aspects_metrics_store_up") == 0
    assert registry.get_sample_value("aspects_tasks_published_total", dict(LABELS)) is None


def test_queue_depth_from_the_redis_broker(redis_url, redis_client):
    redis_client.rpush("q.a", "m1", "m2")
    redis_client.rpush("q.a\x06\x163", "m3")  # kombu's list for priority 3
    depths = api.queue_depths(["q.a", "q.empty"], url=redis_url)
    assert depths == {"q.a": 3, "q.empty": 0}
    down = api.queue_depths(["q.a"], timeout=0.2, url="redis://:pw@127.0.0.1:1/0")
    assert down["q.a"] == "unavailable: CELERY_BROKER_URL: 127.0.0.1:1: connection refused"
    assert api.queue_depths(["q.a"], url="amqp://guest:guest@rabbit//") == {
        "q.a": "unavailable: broker is amqp, depth is read only from Redis"
    }


# ---------------------------------------------------------------- endpoint access


TOKEN = "a-long-enough-metrics-token-123"


@pytest.fixture
def metrics_settings(settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "METRICS_TOKEN": TOKEN}
    return settings


def _registry():
    registry = CollectorRegistry(auto_describe=False)
    store = MemoryStore()
    buffer = Buffer()
    buffer.add(1, PUBLISHED, LABELS, 1)
    store.write(buffer.drain(), now_minute=1, retention_minutes=60)
    registry.register(exposition.StoreCollector(store))
    return registry


def _get(user=None, auth=None):
    request = RequestFactory().get("/aspects-routing/metrics", **({"HTTP_AUTHORIZATION": auth} if auth else {}))
    request.user = user or AnonymousUser()
    return views.make_metrics_view(_registry)(request)


@pytest.mark.parametrize(
    "user, auth, status",
    [
        (None, None, 401),
        (None, "Bearer wrong-token", 401),
        (None, f"Basic {TOKEN}", 401),
        (None, f"Bearer {TOKEN}x", 401),
        (User(username="learner", is_staff=False), None, 403),
    ],
)
def test_refused_requests_get_no_data(metrics_settings, user, auth, status):
    response = _get(user, auth)
    assert response.status_code == status
    assert b"aspects_" not in response.content


def test_token_and_staff_session_get_the_metrics(metrics_settings):
    for response in (_get(auth=f"Bearer {TOKEN}"), _get(user=User(username="staff", is_staff=True))):
        assert response.status_code == 200
        assert b"aspects_tasks_published_total{" in response.content
        assert response["Content-Type"].startswith("text/plain")


def test_no_token_configured_refuses_every_bearer(settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects"}
    assert _get(auth="Bearer None").status_code == 401


def test_endpoint_is_mounted_in_the_lms_urls(metrics_settings, client):
    assert client.get("/aspects-routing/metrics").status_code == 401
    response = client.get("/aspects-routing/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200 and b"aspects_metrics_store_up" in response.content


# ---------------------------------------------------------------- count() and hooks in this process


def test_count_never_raises_and_reaches_the_store(settings, redis_url, redis_client):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "METRICS_REDIS_URL": redis_url}
    flush()
    count("aspects_test_things_total", {"kind": "a"})
    count("aspects_test_things_total", {"kind": "a"}, amount=4)
    count("aspects_test_things_total", {"kind": object()})  # odd label values are str()-ed
    count(None, "not a dict")  # wrong types are swallowed, never raised
    assert flush()
    totals = recorder.current_store().totals().counters
    assert totals[("aspects_test_things_total", (("kind", "a"),))] == 5


def test_non_aspects_tasks_are_decided_once_and_not_counted(settings, redis_url, redis_client):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "METRICS_REDIS_URL": redis_url}
    flush()
    redis_client.flushdb()  # what earlier tests left in this process's buffer
    from tests.tasks import platform_task  # pylint: disable=import-outside-toplevel

    platform_task.delay()
    assert hooks._decisions["tests.tasks.platform_task"] is False  # pylint: disable=protected-access
    assert flush()
    assert recorder.current_store().totals().counters == {}


def test_protocol_1_and_2_requests_carry_the_publish_time():
    class Proto1Request:
        headers = {hooks.HEADER: 123.5}

    class Proto2Request:
        headers = None

    proto2 = Proto2Request()
    setattr(proto2, hooks.HEADER, 456.25)
    assert hooks.published_at(Proto1Request()) == 123.5
    assert hooks.published_at(proto2) == 456.25
    assert hooks.published_at(Proto2Request()) is None


# ---------------------------------------------------------------- APM attributes and system checks


class RecordingTelemetry(TelemetryBackend):
    """A real OPENEDX_TELEMETRY backend (edx-django-utils' plugin point) that keeps what it is given."""

    attributes: list = []

    def set_attribute(self, key, value):
        self.attributes.append((key, value))

    def record_exception(self):
        pass

    def create_span(self, name, operation_name=None):
        return contextlib.nullcontext()

    def tag_root_span_with_error(self, exception):
        pass

    def set_local_root_span_name(self, name, group=None, priority=None):
        pass


@pytest.fixture
def telemetry(settings):
    settings.OPENEDX_TELEMETRY = [f"{__name__}.RecordingTelemetry"]
    configured_backends.cache_clear()
    RecordingTelemetry.attributes = []
    yield RecordingTelemetry.attributes
    configured_backends.cache_clear()


def test_aspects_task_sets_apm_attributes(settings, telemetry):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "EXTRA_TASKS": ["tests.tasks.platform_task"]}
    from tests.tasks import platform_task  # pylint: disable=import-outside-toplevel

    # apply() runs the task through Celery's tracer here, with the worker's signals;
    # the publish time a worker would read from the message is given as a header.
    platform_task.apply(headers={hooks.HEADER: time.time() - 2.0})
    keys = dict(telemetry)
    assert "aspects_routing.queue" in keys
    assert keys["aspects_routing.queue_wait_seconds"] >= 2.0
    recorder.BUFFER.drain()


def test_other_tasks_set_no_apm_attributes(settings, telemetry):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects"}
    from tests.tasks import platform_task  # pylint: disable=import-outside-toplevel

    platform_task.apply()
    assert not [key for key, _ in telemetry if key.startswith("aspects_routing.")]


def _check_ids(settings, routing, broker="redis://redis:6379/0"):
    settings.ASPECTS_ROUTING = routing
    settings.BROKER_URL = broker
    from aspects_routing.checks import check_metrics  # pylint: disable=import-outside-toplevel

    return [message.id for message in check_metrics()]


def test_checks_warn_about_in_process_metrics_and_short_tokens(settings):
    assert _check_ids(settings, {}) == []  # the Redis broker is the store
    assert _check_ids(settings, {}, broker="amqp://guest:guest@rabbit//") == ["aspects_routing.W070"]
    assert _check_ids(settings, {"METRICS_REDIS_URL": "redis://m:6379/2"}, broker="amqp://rabbit//") == []
    assert _check_ids(settings, {"METRICS_TOKEN": "short"}) == ["aspects_routing.W071"]
    assert _check_ids(settings, {"METRICS_TOKEN": "x" * 32}) == []
    assert _check_ids(settings, {"METRICS_ENABLED": False}, broker="amqp://rabbit//") == []


# ---------------------------------------------------------------- bounded settings, a sick store


@pytest.mark.parametrize(
    "key, value, problem, field, default",
    [
        ("METRICS_FLUSH_SECONDS", float("inf"), "aspects_routing.W112", "metrics_flush_seconds", 5.0),
        ("METRICS_FLUSH_SECONDS", 1e10, "aspects_routing.W112", "metrics_flush_seconds", 5.0),
        ("METRICS_FLUSH_SECONDS", float("nan"), "aspects_routing.W112", "metrics_flush_seconds", 5.0),
        ("METRICS_RETENTION_MINUTES", 10**15, "aspects_routing.W113", "metrics_retention_minutes", 1440),
        ("METRICS_RETENTION_MINUTES", 43_201, "aspects_routing.W113", "metrics_retention_minutes", 1440),
    ],
)
def test_metrics_settings_have_upper_bounds(key, value, problem, field, default):
    from aspects_routing.conf import parse  # pylint: disable=import-outside-toplevel

    config = parse({key: value})
    assert [p.id for p in config.problems] == [problem]
    assert getattr(config, field) == default
    assert parse({key: {"METRICS_FLUSH_SECONDS": 300, "METRICS_RETENTION_MINUTES": 43_200}[key]}).problems == ()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the SystemExit that ends it
def test_a_flusher_thread_that_dies_is_started_again(settings, redis_url):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "METRICS_REDIS_URL": redis_url,
                                "METRICS_FLUSH_SECONDS": 0.05}
    count("aspects_test_flusher_total")
    state = recorder._state  # pylint: disable=protected-access
    first = state.thread
    real_flush = recorder.flush
    died = threading.Event()

    def fatal():  # what no ``except Exception`` catches: the thread ends
        died.set()
        raise SystemExit

    recorder.flush = fatal
    try:
        assert died.wait(30)
        first.join(30)
        assert not first.is_alive()
    finally:
        recorder.flush = real_flush
    count("aspects_test_flusher_total")  # the next count starts a new flusher
    assert state.thread is not first and state.thread.is_alive() and state.restarts >= 1
    assert wait_for(
        lambda: recorder.current_store().totals().counters.get(("aspects_test_flusher_total", ()), 0) >= 2, timeout=30
    )


class SlowLink:
    """
    A TCP relay to Redis that delays what the client sends by ``delay`` seconds and keeps
    forwarding it after the client hung up: a slow network, where a write the client
    gave up on still reaches the server. (Redis itself drops the commands of a client
    that disconnected before they ran, so a busy or paused Redis cannot show this.)
    """

    def __init__(self, port: int):
        import socket  # pylint: disable=import-outside-toplevel

        self.target = ("127.0.0.1", port)
        self.delay = 0.0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket  # pylint: disable=import-outside-toplevel

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, False), daemon=True).start()

    def _pipe(self, source, sink, delayed):
        try:
            while data := source.recv(65536):
                if delayed and self.delay:
                    time.sleep(self.delay)  # the link's latency, not a wait in the test
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(1)  # SHUT_WR: what was sent still arrives

    def close(self):
        self.listener.close()


def test_a_write_that_lands_after_its_timeout_is_published_not_dropped(settings, spare_redis):
    """The store is slow, not down: the write times out here but Redis applies it later; counted once."""
    import redis  # pylint: disable=import-outside-toplevel

    server = spare_redis()
    link = SlowLink(server.port)
    url = f"redis://127.0.0.1:{link.port}/0"
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "METRICS_REDIS_URL": url}
    flush()
    store = recorder.current_store()
    direct = RedisStore(f"redis://127.0.0.1:{server.port}/0", store.prefix)
    count("aspects_test_slow_total", amount=100)
    store.totals()  # connected (the handshake is not what is slow here)
    link.delay = 1.5  # above STORE_TIMEOUT (1 s): the client gives up, the write goes on
    assert flush() is False
    assert wait_for(lambda: direct.totals().counters.get(("aspects_test_slow_total", ()), 0) == 100, timeout=30)
    link.delay = 0.0
    assert flush() is True  # settles the timed-out batch: applied, so nothing is dropped
    counters = direct.totals().counters
    assert counters[("aspects_test_slow_total", ())] == 100
    assert counters.get((DROPPED, ()), 0) == 0
    link.close()


def test_a_batch_that_never_landed_is_dropped_once(settings, spare_redis):
    server = spare_redis()
    url = f"redis://127.0.0.1:{server.port}/0"
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "METRICS_REDIS_URL": url}
    flush()
    server.stop()
    count("aspects_test_lost_total", amount=7)
    assert flush() is False
    flush()  # still down: the failed batch cannot be settled yet, and is not counted twice
    server.start()
    assert flush() is True
    counters = recorder.current_store().totals().counters
    assert counters.get(("aspects_test_lost_total", ()), 0) == 0
    assert counters[(DROPPED, ())] == 7


@pytest.mark.parametrize("url", ["redis://:pa55@127.0.0.1:99999/0", "redis:/pa55@127.0.0.1/0"])
def test_an_unusable_store_url_is_a_check_error_and_a_503(settings, client, url):
    token = "t" * 32
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "METRICS_REDIS_URL": url, "METRICS_TOKEN": token}
    from aspects_routing.conf import get_config  # pylint: disable=import-outside-toplevel

    assert "aspects_routing.W111" in [p.id for p in get_config().problems]
    response = client.get("/aspects-routing/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 503
    body = response.content.decode()
    assert "METRICS_REDIS_URL" in body and "aspects_routing.W111" in body
    assert "pa55" not in body


def test_a_registry_that_fails_is_a_503_not_a_500(settings):
    token = "t" * 32
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "METRICS_TOKEN": token}

    def broken():
        raise RuntimeError("boom")

    view = views.make_metrics_view(broken)
    response = view(RequestFactory().get("/aspects-routing/metrics", HTTP_AUTHORIZATION=f"Bearer {token}"))
    assert response.status_code == 503
    assert b"RuntimeError" in response.content
