"""
Ralph/Superset probes against real HTTP servers started by the test, and the
event-bus section against a real Redis stream.
"""

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from port_for import get_port

from aspects_routing.conf import get_config
from aspects_routing.scaling.collectors.services import collect_services, health_url, path_note
from aspects_routing.scaling.recommendations import service_findings
from aspects_routing.scaling.render import render
from aspects_routing.scaling.report import ReportOptions, build_report


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}
    seen: list = []

    def do_GET(self):  # noqa: N802
        self.seen.append((self.path, self.headers.get("Authorization")))
        status, location, *body = self.routes.get(self.path, (404, None))
        payload = body[0] if body else b"{}"
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        return


@pytest.fixture
def http_server():
    """A real HTTP server in a thread; set ``routes`` to {path: (status, location[, body])}."""
    handler = type("Handler", (_Handler,), {"routes": {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_health_url_is_the_health_path_at_the_server_root_whatever_path_is_given():
    assert health_url("ralph", "http://ralph:8100") == "http://ralph:8100/__heartbeat__"
    assert health_url("superset", "https://superset.example.com/") == "https://superset.example.com/health"
    assert health_url("ralph", "http://ralph:8100/__lbheartbeat__") == "http://ralph:8100/__heartbeat__"
    assert health_url("ralph", "https://u:p@lrs.example.com/xAPI/?x=1") == "https://u:p@lrs.example.com/__heartbeat__"
    assert path_note("ralph", "http://ralph:8100/") is None
    assert path_note("ralph", "http://ralph:8100/__heartbeat__") is None
    assert "'/xAPI/'" in path_note("ralph", "https://lrs.example.com/xAPI/")


def test_healthy_ralph_unhealthy_superset(http_server, settings):
    server, handler = http_server
    handler.routes.update({"/__heartbeat__": (200, None), "/health": (500, None)})
    base = f"http://127.0.0.1:{server.server_port}"
    settings.ASPECTS_ROUTING = {"RALPH_URL": base, "SUPERSET_URL": base + "/"}
    report = collect_services(get_config(), timeout=2)
    ralph, superset = report.services
    assert (ralph.service, ralph.reachable, ralph.status_code, ralph.samples) == ("ralph", True, 200, 3)
    assert ralph.latency_ms_median is not None and ralph.latency_ms_median <= ralph.latency_ms_max
    assert (superset.service, superset.reachable, superset.status_code, superset.error, superset.state) == (
        "superset", False, 500, "HTTP 500", "down"
    )
    assert report.unhealthy == (superset,)


def test_a_redirect_is_not_healthy_and_credentials_become_a_basic_header(http_server, settings):
    server, handler = http_server
    handler.routes["/__heartbeat__"] = (302, "/login")
    settings.ASPECTS_ROUTING = {"RALPH_URL": f"http://lrs:Pa55-word@127.0.0.1:{server.server_port}"}
    [ralph] = collect_services(get_config(), timeout=2).services
    assert not ralph.reachable and ralph.status_code == 302
    assert "Pa55-word" not in ralph.url and "lrs" not in ralph.url
    path, authorization = handler.seen[0]
    assert path == "/__heartbeat__"
    assert base64.b64decode(authorization.split()[1]) == b"lrs:Pa55-word"
    # One heartbeat sample is enough to know it is unhealthy; then Ralph's liveness is asked.
    assert [p for p, _ in handler.seen] == ["/__heartbeat__", "/__lbheartbeat__"]
    assert ralph.state == "down"  # the liveness path answered 404 here: nothing Ralph-like serves


def test_unreachable_ralph_is_critical_in_the_report(redis_client, settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "RALPH_URL": f"http://127.0.0.1:{get_port(None)}"}
    report = build_report(ReportOptions(timeout=10, clickhouse=False))
    [ralph] = report.data("services").services
    assert not ralph.reachable and ralph.samples == 0 and "Connection refused" in ralph.error
    assert ralph.state == "down"
    [finding] = [r for r in report.recommendations if r.area == "ralph" and r.severity == "critical"]
    assert finding.title == "Ralph is down"
    assert report.status == "critical"


def test_ralph_up_with_its_database_away_is_told_apart_from_ralph_down(http_server, settings):
    # The bodies Ralph 5 answers (tests/test_ralph_tier.py checks them on the real Ralph).
    server, handler = http_server
    handler.routes.update({
        "/__heartbeat__": (500, None, b'{"database":"away"}'),
        "/__lbheartbeat__": (200, None, b"null"),
    })
    settings.ASPECTS_ROUTING = {"RALPH_URL": f"http://127.0.0.1:{server.server_port}/xAPI/"}
    [ralph] = collect_services(get_config(), timeout=2).services
    assert (ralph.state, ralph.status_code, ralph.body_status, ralph.alive) == (
        "degraded", 500, (("database", "away"),), True
    )
    assert ralph.error == "HTTP 500 {database: away}"
    assert ralph.url.endswith("/__heartbeat__") and "/xAPI/" in ralph.note
    assert [path for path, _ in handler.seen] == ["/__heartbeat__", "/__lbheartbeat__"]


def test_ralph_database_away_finding_shows_the_body(redis_client, http_server, settings):
    server, handler = http_server
    handler.routes.update({
        "/__heartbeat__": (500, None, b'{"database":"away"}'),
        "/__lbheartbeat__": (200, None, b"null"),
    })
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "RALPH_URL": f"http://127.0.0.1:{server.server_port}"}
    report = build_report(ReportOptions(timeout=10, clickhouse=False))
    [finding] = [r for r in report.recommendations if r.area == "ralph" and r.severity == "critical"]
    assert finding.title == "Ralph is up, its database is not (database: away)"
    assert ("health body", "database: away") in [(i.name, i.value) for i in finding.inputs]
    text = render(report, "text")
    assert "degraded" in text and "database: away" in text


def test_superset_with_its_redis_unreachable_is_degraded(http_server, settings):
    server, handler = http_server
    handler.routes["/health"] = (200, None, b"OK")
    dead = f"redis://:s3cret-pw@127.0.0.1:{get_port(None)}/3"
    settings.ASPECTS_ROUTING = {"SUPERSET_URL": f"http://127.0.0.1:{server.server_port}", "SUPERSET_BROKER_URL": dead}
    [superset] = collect_services(get_config(), timeout=2).services
    assert superset.reachable and superset.status_code == 200
    assert superset.state == "degraded" and not superset.backend.redis_reachable
    assert "unreachable" in superset.error and "s3cret-pw" not in superset.error
    assert "s3cret-pw" not in superset.backend.broker
    [finding] = service_findings(collect_services(get_config(), timeout=2))
    assert (finding.severity, finding.title) == ("warning", "Superset's Redis is unreachable")


def test_superset_workers_that_answer_on_its_broker(http_server, settings, spare_redis, start_worker):
    # A real Celery worker on a private Redis answers the ping the report sends; the real Superset
    # worker does the same in tests/test_superset_tier.py.
    server, handler = http_server
    handler.routes["/health"] = (200, None, b"OK")
    redis_server = spare_redis()
    broker = f"redis://127.0.0.1:{redis_server.port}/1"
    settings.ASPECTS_ROUTING = {"SUPERSET_URL": f"http://127.0.0.1:{server.server_port}", "SUPERSET_BROKER_URL": broker}
    [superset] = collect_services(get_config(), timeout=1).services
    assert (superset.state, superset.backend.redis_reachable, superset.backend.workers) == ("degraded", True, ())
    assert "no Superset Celery worker answered" in superset.error
    start_worker("--hostname=superset-worker@%h", "--pool=solo", REDIS_URL=broker)
    [superset] = collect_services(get_config(), timeout=10).services
    assert superset.state == "up" and superset.error is None
    assert [w.split("@")[0] for w in superset.backend.workers] == ["superset-worker"]


def test_no_service_configured_is_skipped(redis_client, settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects"}
    section = build_report(ReportOptions(timeout=10, clickhouse=False)).section("services")
    assert section.status == "skipped" and "RALPH_URL" in section.reason


# ---------------------------------------------------------------- event bus


@pytest.fixture
def event_bus_settings(settings, redis_url):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "TRANSPORT": "event_bus"}
    settings.EVENT_BUS_REDIS_CONNECTION_URL = redis_url
    return settings


def test_event_bus_backlog_without_consumer_is_critical(redis_client, event_bus_settings):
    stream = f"{event_bus_settings.EVENT_BUS_TOPIC_PREFIX}-analytics"
    # The group exists (a consumer ran once, from the start), then 7 events arrived and nobody reads them.
    redis_client.xgroup_create(stream, "event_routing_backends", id="0", mkstream=True)
    for number in range(7):
        redis_client.xadd(stream, {"event_data": f"{number}"})
    report = build_report(ReportOptions(timeout=10, clickhouse=False))
    bus = report.data("event_bus")
    assert bus.lag.length == 7
    group = bus.group_lag
    assert (group.lag, group.pending, group.consumers) == (7, 0, ())
    [finding] = [r for r in report.recommendations if r.area == "event_bus"]
    assert finding.severity == "critical"
    assert any("check_backlog" in change.value for change in finding.changes)
    text = render(report, "text")
    assert "backlog_without_consumer" in text and stream in text


def test_event_bus_stream_without_the_xapi_group_is_critical(redis_client, event_bus_settings):
    stream = f"{event_bus_settings.EVENT_BUS_TOPIC_PREFIX}-analytics"
    redis_client.xadd(stream, {"event_data": "x"})
    report = build_report(ReportOptions(timeout=10, clickhouse=False))
    assert report.data("event_bus").group_lag is None
    [finding] = [r for r in report.recommendations if r.area == "event_bus"]
    assert finding.severity == "critical" and "No consumer group" in finding.title
    assert "(does not exist yet)" in render(report, "text")


def test_a_service_url_that_is_not_http_is_a_check_error_and_not_probed():
    from aspects_routing.conf import parse  # pylint: disable=import-outside-toplevel

    config = parse({"RALPH_URL": "ralph:8100", "SUPERSET_URL": "https://superset.example.com"})
    assert config.ralph_url is None and config.superset_url == "https://superset.example.com"
    assert [p.id for p in config.problems] == ["aspects_routing.W130"]


def test_a_superset_broker_url_that_is_not_redis_is_a_check_error_and_not_checked():
    from aspects_routing.conf import parse  # pylint: disable=import-outside-toplevel

    config = parse({"SUPERSET_URL": "https://superset.example.com", "SUPERSET_BROKER_URL": "amqp://rabbit//"})
    assert config.superset_broker_url is None
    assert [p.id for p in config.problems] == ["aspects_routing.W134"]
    assert "amqp" not in repr(config)  # a credential-bearing setting stays out of repr
