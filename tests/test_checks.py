"""``manage.py check`` reports configuration mistakes with stable ids."""

import subprocess
import sys

import pytest

from django.core import checks

from tests.conftest import ROOT, subprocess_env


def check_ids():
    return sorted(m.id for m in checks.run_checks() if m.id and m.id.startswith("aspects_routing."))


def _manage(*args, tokens: str):
    """The real ``django-admin`` in a fresh process, with ASPECTS_ROUTING from YAML (ENV_TOKENS)."""
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=subprocess_env(ASPECTS_TEST_ENV_TOKENS=tokens),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_mistake_the_plugin_survives_is_a_warning_and_migrate_runs():
    """A bad TRANSPORT falls back to 'celery': reported with the setting and the fix, and nothing stops."""
    tokens = '{"ASPECTS_ROUTING": {"TRANSPORT": "kafka", "QUEUE": "edx.lms.core.aspects"}}'
    result = _manage("check", tokens=tokens)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS:" in result.stderr and "aspects_routing.W101" in result.stderr
    assert "ASPECTS_ROUTING['TRANSPORT'] is 'kafka'" in result.stderr
    assert "HINT: Set ASPECTS_ROUTING['TRANSPORT'] to 'celery' or 'event_bus'" in result.stderr
    # Tutor's init and upgrade jobs run migrate, which runs the checks first.
    migrate = _manage("migrate", "--noinput", tokens=tokens)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "aspects_routing.W101" in migrate.stderr


def test_a_token_that_cannot_authenticate_is_an_error_that_stops_check():
    tokens = '{"ASPECTS_ROUTING": {"METRICS_TOKEN": " padded-token-0123456789 "}}'
    result = _manage("check", tokens=tokens)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ERRORS:" in result.stderr and "aspects_routing.E072" in result.stderr
    assert "padded-token" not in result.stderr + result.stdout  # a credential is never echoed


def test_every_configuration_mistake_that_falls_back_is_a_warning(settings):
    settings.ASPECTS_ROUTING = {
        "TRANSPORT": "kafka", "QUEUE": "has space", "TASKS": "not-a-list", "TASK_QUEUES": ["x"],
        "METRICS_ENABLED": "yes", "METRICS_REDIS_URL": "redis://:pa#ss", "METRICS_FLUSH_SECONDS": -1,
        "METRICS_RETENTION_MINUTES": 0, "METRICS_TOKEN": 12, "METRICS_KEY_PREFIX": "has space",
        "EVENT_BUS_TOPIC": "", "EVENT_BUS_CONSUMER_GROUP": "", "LOG_EACH_TRACKING_EVENT": "no",
        "RALPH_URL": "http://u:p#w", "SUPERSET_URL": "ftp://superset", "CLICKHOUSE_CLUSTER": "a b",
        "RETENTION_DAYS": 0,
    }
    found = {m.id: m for m in checks.run_checks() if m.id and m.id.startswith("aspects_routing.W1")}
    expected = {"W101", "W102", "W103", "W104", "W110", "W111", "W112", "W113", "W114", "W115", "W120", "W121",
                "W122", "W130", "W131", "W132", "W133"}
    assert {f"aspects_routing.{i}" for i in expected} <= set(found)
    for check_id in expected:
        message = found[f"aspects_routing.{check_id}"]
        assert message.level == checks.WARNING, check_id
    assert "pa#ss" not in " ".join(m.msg + (m.hint or "") for m in found.values())


def _ids(messages):
    return sorted(m.id for m in messages if m.id and m.id.startswith("aspects_routing."))


def test_tasks_that_route_nothing_say_what_is_not_routed(settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.high", "TASKS": []}
    (message,) = [m for m in checks.run_checks() if m.id == "aspects_routing.W052"]
    assert message.level == checks.WARNING
    assert "route no task at all" in message.msg and "eventtracking.tasks.send_event" in message.msg


def test_a_wildcard_that_routes_platform_tasks_names_them(settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.high", "TASKS": ["*"]}
    (message,) = [m for m in checks.run_checks() if m.id == "aspects_routing.W053"]
    assert message.level == checks.WARNING
    assert "'*' also routes" in message.msg and "celery_utils.tasks.mark_resolved" in message.msg
    # A task named on purpose in EXTRA_TASKS is not flagged.
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.high", "EXTRA_TASKS": ["celery_utils.tasks.mark_resolved"]}
    assert "aspects_routing.W053" not in _ids(checks.run_checks())


@pytest.mark.parametrize(
    "token, problem",
    [
        ("tökén-0123456789abcdef", "non-ASCII"),
        (" token-0123456789abcdef", "leading or trailing whitespace"),
        ("token-0123456789abcdef\n", "leading or trailing whitespace"),
        ("token-01234\x0756789abcdef", "control characters"),
    ],
)
def test_a_metrics_token_that_cannot_pass_a_header_is_an_error(settings, token, problem):
    settings.ASPECTS_ROUTING = {"METRICS_TOKEN": token}
    (message,) = [m for m in checks.run_checks() if m.id == "aspects_routing.E072"]
    assert message.level == checks.ERROR and problem in message.msg
    assert token.strip() not in message.msg + message.hint


def test_a_header_safe_token_passes(settings):
    settings.ASPECTS_ROUTING = {"METRICS_TOKEN": "Z" * 16 + " with-inner-space"}
    assert "aspects_routing.E072" not in _ids(checks.run_checks())


def test_unknown_pattern_and_undeclared_queue(settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.aspects", "EXTRA_TASKS": ["nothing.matches.*"]}
    assert check_ids() == ["aspects_routing.W050", "aspects_routing.W051"]


def test_clean_config_has_no_messages(settings):
    settings.ASPECTS_ROUTING = {}
    assert check_ids() == []  # HIGH_PRIORITY_QUEUE is declared; every default task is registered


def test_event_bus_needs_a_producer(settings):
    settings.ASPECTS_ROUTING = {"TRANSPORT": "event_bus"}
    settings.EVENT_BUS_PRODUCER = None
    assert "aspects_routing.E060" in check_ids()
