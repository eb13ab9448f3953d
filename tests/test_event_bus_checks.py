"""
System checks of the event-bus transport: each one fails on the mistake it names.

The test process runs the Celery transport (tests.settings.edx_order); switching
``TRANSPORT`` here without the startup step is exactly the "did not take effect"
case. The fully applied case runs ``manage.py check`` in a fresh process.
"""

import subprocess
import sys

import pytest

from aspects_routing.checks import check_event_bus, check_event_bus_skips
from aspects_routing.transport.consumer import detect_unsafe_start
from tests.conftest import ROOT, subprocess_env
from tests.test_event_bus import STREAM, emit


def ids(messages):
    return sorted(m.id for m in messages)


@pytest.fixture
def event_bus(settings):
    settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus"}
    return settings


def test_celery_transport_has_nothing_to_check():
    assert check_event_bus() == []


def test_transport_not_applied_in_this_process_is_reported(event_bus):
    # The tracker, the toggle and the producer handler still are the Celery path's.
    # (W084: the test bus URL has no socket timeout; see test_a_bus_url_without_short_timeouts_is_warned.)
    assert ids(check_event_bus()) == [
        "aspects_routing.E082", "aspects_routing.E083", "aspects_routing.E084", "aspects_routing.W084"
    ]


@pytest.mark.parametrize(
    "override, expected",
    [
        ({"EVENT_TRACKING_BACKENDS": {"tracking_logs": {"ENGINE": "eventtracking.backends.logger.LoggerBackend"}}},
         "aspects_routing.E080"),
        ({"EVENT_BUS_TRACKING_LOGS": set()}, "aspects_routing.E085"),
        ({"EVENT_BUS_REDIS_CONNECTION_URL": None}, "aspects_routing.E086"),
        ({"EVENT_BUS_CONSUMER": None}, "aspects_routing.W080"),
        ({"EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT": 60}, "aspects_routing.W082"),
        ({"EVENT_TRACKING_BACKENDS_ALLOWED_XAPI_EVENTS": ["problem_check", "my.custom.event"]},
         "aspects_routing.W083"),
    ],
)
def test_each_mistake_has_its_check(event_bus, override, expected):
    before = set(ids(check_event_bus()))
    assert expected not in before
    for name, value in override.items():
        setattr(event_bus, name, value)
    found = check_event_bus()
    assert set(ids(found)) - before == {expected}
    assert all(m.hint for m in found)


@pytest.mark.parametrize(
    "query, warned",
    [
        ("", True),  # no timeout: a hung bus holds the request as long as it hangs
        ("?socket_timeout=0.05", False),  # connecting uses socket_timeout too (redis-py)
        ("?socket_timeout=0.05&socket_connect_timeout=0.05", False),
        ("?socket_timeout=5", True),
        ("?socket_timeout=0.05&socket_connect_timeout=2", True),
    ],
)
def test_a_bus_url_without_short_timeouts_is_warned(event_bus, query, warned):
    event_bus.EVENT_BUS_REDIS_CONNECTION_URL = "redis://:pw@bus.example.com:6379/0" + query
    found = [m for m in check_event_bus() if m.id == "aspects_routing.W084"]
    assert bool(found) is warned
    if warned:
        assert "socket_timeout=0.05&socket_connect_timeout=0.05" in found[0].hint
        assert "pw" not in found[0].msg + found[0].hint


def test_consume_events_gets_a_read_timeout_above_its_poll():
    from aspects_routing.transport.event_bus_settings import bus_timeouts, consumer_bus_url  # pylint: disable=C0415

    url = "redis://:p%40ss@bus:6379/0?socket_timeout=0.05&socket_connect_timeout=0.05"
    relaxed = consumer_bus_url(url, 4)
    assert bus_timeouts(relaxed) == (9.0, 0.05)  # poll + 5 s; connecting stays quick
    assert relaxed.startswith("redis://:p%40ss@bus:6379/0?")
    assert consumer_bus_url("redis://bus:6379/0", 4) is None  # no timeout: reads block as long as they must
    assert consumer_bus_url("redis://bus:6379/0?socket_timeout=30", 4) is None


def test_applied_transport_passes_manage_py_check():
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--fail-level", "ERROR"],
        cwd=ROOT,
        env=subprocess_env(DJANGO_SETTINGS_MODULE="tests.settings.tutor_event_bus"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "aspects_routing.E08" not in result.stderr + result.stdout


def test_unsafe_consumer_start_is_recorded_and_flagged_by_deploy_check(redis_client, event_bus):
    emit(DJANGO_SETTINGS_MODULE="tests.settings.tutor_event_bus")
    redis_client.xgroup_create(STREAM, "event_routing_backends", id="0")
    # Three events wait and no consumer runs: at risk, nothing skipped yet.
    (waiting,) = check_event_bus_skips()
    assert "no consumer" in waiting.msg and "skipped" not in waiting.msg
    argv = ["manage.py", "lms", "consume_events", "-t", "analytics", "-g", "event_routing_backends",
            "--extra", '{"consumer_name": "pod-1"}']
    start = detect_unsafe_start(argv)
    assert (start["group"], start["consumer"], start["skipped"]) == ("event_routing_backends", "pod-1", 3)
    (warning,) = check_event_bus_skips()
    assert warning.id == "aspects_routing.W081"
    assert "3 event(s) were skipped" in warning.msg
    assert '"check_backlog": true' in warning.hint
    # The documented command is not flagged.
    safe = argv[:-1] + ['{"consumer_name": "pod-2", "check_backlog": true}']
    assert detect_unsafe_start(safe) is None


def test_a_consume_events_process_relaxes_only_its_own_read_timeout(settings, monkeypatch):
    from aspects_routing.transport.consumer import relax_consumer_read_timeout  # pylint: disable=C0415

    url = "redis://bus:6379/0?socket_timeout=0.05&socket_connect_timeout=0.05"
    settings.EVENT_BUS_REDIS_CONNECTION_URL = url
    settings.EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT = 4
    monkeypatch.setattr(sys, "argv", ["manage.py", "lms", "runserver"])
    assert relax_consumer_read_timeout() is False and settings.EVENT_BUS_REDIS_CONNECTION_URL == url
    monkeypatch.setattr(sys, "argv", ["manage.py", "lms", "consume_events", "-t", "analytics", "-g", "g"])
    assert relax_consumer_read_timeout() is True
    assert settings.EVENT_BUS_REDIS_CONNECTION_URL == "redis://bus:6379/0?socket_timeout=9&socket_connect_timeout=0.05"
