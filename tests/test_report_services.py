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
from aspects_routing.scaling.collectors.services import collect_services, health_url
from aspects_routing.scaling.render import render
from aspects_routing.scaling.report import ReportOptions, build_report


class _Handler(BaseHTTPRequestHandler):
    routes: dict = {}
    seen: list = []

    def do_GET(self):  # noqa: N802
        self.seen.append((self.path, self.headers.get("Authorization")))
        status, location = self.routes.get(self.path, (404, None))
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        return


@pytest.fixture
def http_server():
    """A real HTTP server in a thread; set ``routes`` to {path: (status, location)}."""
    handler = type("Handler", (_Handler,), {"routes": {}, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()
    server.server_close()


def test_health_url_appends_the_service_path_to_a_base_url():
    assert health_url("ralph", "http://ralph:8100") == "http://ralph:8100/__heartbeat__"
    assert health_url("superset", "https://superset.example.com/") == "https://superset.example.com/health"
    assert health_url("ralph", "http://ralph:8100/__lbheartbeat__") == "http://ralph:8100/__lbheartbeat__"


def test_healthy_ralph_unhealthy_superset(http_server, settings):
    server, handler = http_server
    handler.routes.update({"/__heartbeat__": (200, None), "/health": (500, None)})
    base = f"http://127.0.0.1:{server.server_port}"
    settings.ASPECTS_ROUTING = {"RALPH_URL": base, "SUPERSET_URL": base + "/"}
    report = collect_services(get_config(), timeout=2)
    ralph, superset = report.services
    assert (ralph.service, ralph.reachable, ralph.status_code, ralph.samples) == ("ralph", True, 200, 3)
    assert ralph.latency_ms_median is not None and ralph.latency_ms_median <= ralph.latency_ms_max
    assert (superset.service, superset.reachable, superset.status_code, superset.error) == (
        "superset", False, 500, "HTTP 500"
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
    assert len(handler.seen) == 1  # one sample is enough to know it is unhealthy


def test_unreachable_ralph_is_critical_in_the_report(redis_client, settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "RALPH_URL": f"http://127.0.0.1:{get_port(None)}"}
    report = build_report(ReportOptions(timeout=10, clickhouse=False))
    [ralph] = report.data("services").services
    assert not ralph.reachable and ralph.samples == 0 and "Connection refused" in ralph.error
    [finding] = [r for r in report.recommendations if r.area == "ralph" and r.severity == "critical"]
    assert "not healthy" in finding.title
    assert report.status == "critical"


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
    assert [p.id for p in config.problems] == ["aspects_routing.E030"]
