"""``manage.py check`` reports configuration mistakes with stable ids."""

import subprocess
import sys

from django.core import checks

from tests.conftest import ROOT, subprocess_env


def check_ids():
    return sorted(m.id for m in checks.run_checks() if m.id and m.id.startswith("aspects_routing."))


def test_check_command_names_the_setting_and_the_fix():
    """The real command in a fresh process, with a broken YAML config."""
    result = subprocess.run(
        [sys.executable, "-m", "django", "check"],
        cwd=ROOT,
        env=subprocess_env(
            ASPECTS_TEST_ENV_TOKENS='{"ASPECTS_ROUTING": {"TRANSPORT": "kafka", "QUEUE": "edx.lms.core.aspects"}}'
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "aspects_routing.E001" in result.stderr
    assert "ASPECTS_ROUTING['TRANSPORT'] is 'kafka'" in result.stderr
    assert "HINT: Set ASPECTS_ROUTING['TRANSPORT'] to 'celery' or 'event_bus'" in result.stderr


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
