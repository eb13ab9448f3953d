"""
``aspects_scaling_config``: ``--timeout`` bounds the measurement like the report's, a source that
fails is named in a clear line saying the inputs it measures were assumed, and a broker password
with reserved characters neither crashes the command nor shows in its output.
"""

import io
import socket

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings


def _run(*args):
    out, err = io.StringIO(), io.StringIO()
    call_command("aspects_scaling_config", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "601"])
def test_bad_timeout_is_a_command_error_naming_the_flag(value):
    with pytest.raises(CommandError, match="--timeout"):
        _run("--services", "ralph", "--timeout", value)


@pytest.fixture
def silent_port():
    """A port that accepts connections and never answers (a hung ClickHouse)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def test_a_silent_clickhouse_is_bounded_by_timeout_and_named_in_the_fallback_line(redis_client, silent_port):
    sink = {"url": f"http://127.0.0.1:{silent_port}", "username": "ch", "password": "Ch#pw/Secret-9"}
    with override_settings(EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG=sink):
        stdout, stderr = _run("--services", "clickhouse", "--profile", "auto", "--timeout", "2", "--output", "-")
    assert "FELL BACK TO ASSUMED INPUTS" in stderr
    line = next(line for line in stderr.splitlines() if "FELL BACK TO ASSUMED INPUTS" in line)
    assert "--timeout 2 s" in line and "clickhouse: " in line
    assert "Ch#pw/Secret-9" not in stdout + stderr and "Secret-9" not in stdout + stderr


def test_sources_that_answer_or_are_not_configured_give_no_fallback_line(redis_client):
    with override_settings(EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG={}):  # no ClickHouse: skipped, not failed
        _stdout, stderr = _run("--services", "ralph", "--profile", "auto", "--timeout", "10", "--output", "-")
    assert "FELL BACK" not in stderr
    assert "Measured with the scaling report's collectors." in stderr


@pytest.mark.parametrize("password", ["Bro#ker-pw", "Bro/ker?pw", "Bro@ker:pw"])
def test_reserved_characters_in_the_broker_password_neither_crash_nor_show(password):
    url = f"redis://:{password}@127.0.0.1:6390/0"
    with override_settings(CELERY_BROKER_URL=url, BROKER_URL=url):
        stdout, stderr = _run("--services", "workers", "--profile", "small", "--output", "-")
    assert "KEDA reads Redis at 127.0.0.1:6390" in stderr
    assert "Redis needs a password" in stderr
    for text in (stdout, stderr):
        assert password not in text and password[:4] not in text.replace("Broker", "")
