"""
Property tests: a password or token anywhere the package reads one never reaches any output.

Hypothesis draws secrets over the printable ASCII range (space to ``~``: every reserved URL
character included, unencoded) and puts them in every URL setting and flag at once: the Celery
broker, ``METRICS_REDIS_URL`` (user ``aspects``: a user name, which must *not* be scrubbed),
``RALPH_URL``, ``SUPERSET_URL``, the ClickHouse DSN flag and Aspects' sink settings,
``EVENT_BUS_REDIS_CONNECTION_URL``, the Kafka bootstrap servers and API secret, and
``METRICS_TOKEN``. Each example runs the report command (every format), the config command,
the system checks and the metrics endpoint with every log record captured at DEBUG; no output
may hold the secret or any 4+-character piece of it that the output does not also hold when the
secret is a different one (text the report prints whatever the secret is: section titles,
timestamps). Every URL points at a closed local port, so each source fails fast, down its real
error path.

The profile is derandomized (a fixed seed) with :data:`EXAMPLES` examples per test, so CI runs
the same cases every time; ``ASPECTS_PROPERTY_EXAMPLES`` raises it for a longer local search.
"""

import io
import logging
import os
import re
import socket
from contextlib import contextmanager

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from aspects_routing.conf import clear_config_cache
from aspects_routing.redaction import describe_error, parse_url
from aspects_routing.routing.install import celery_app

EXAMPLES = int(os.environ.get("ASPECTS_PROPERTY_EXAMPLES", "0")) or None
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
SECRETS = st.text(PRINTABLE, min_size=8, max_size=40).filter(lambda s: s.strip() == s)
#: The secret of a baseline run (of the layer's own tests); :func:`baseline_for` for the full runs.
BASELINE = "qzqxqzqxqzqxqzqx"


def baseline_for(secret: str) -> str:
    """A different secret of the same length (the checks look at a token's length), of letters only."""
    return ("qzqx" * len(secret))[: len(secret)]


def _profile(examples: int):
    return hsettings(
        max_examples=EXAMPLES or examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PORT = closed_port()


def pieces(secret: str, size: int = 4) -> set[str]:
    """Every substring of ``secret`` of ``size`` characters (longer leaks contain one)."""
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


#: What changes from run to run whatever the secret: UUIDs (query ids), long hex, numbers (times, durations).
_VOLATILE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-fA-F]{16,}|[0-9]+")


def normal(text: str) -> str:
    """``text`` with :data:`_VOLATILE` runs replaced by a character no secret holds (§ is not ASCII)."""
    return _VOLATILE.sub("§", text)


def leaks(secret: str, output: str, baseline: str, public: str) -> list[str]:
    """
    The 4-character pieces of ``secret`` in ``output`` that neither the input's public parts nor the
    baseline output (the same run with a different secret) explain. Numbers are compared as
    numbers-in-general (:func:`normal`), since timestamps and durations differ between any two runs.
    """
    output, baseline = normal(output), normal(baseline)
    found = set()
    for piece in pieces(secret):
        shape = normal(piece)
        if piece in public or shape not in output:
            continue
        # Pieces without numbers are counted (the same text appears as often whatever the secret);
        # with numbers in them, only whether the baseline has that shape at all can be compared.
        more = output.count(shape) > baseline.count(shape) if "§" not in shape else shape not in baseline
        if more:
            found.add(piece)
    return sorted(found)


class Capture(logging.Handler):
    """Every record of every logger, formatted with its arguments and traceback."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record):
        try:
            self.lines.append(self.format(record))
        except Exception as exc:  # pylint: disable=broad-except
            self.lines.append(f"<unformattable record: {exc!r}>")


@contextmanager
def captured_logs():
    root = logging.getLogger()
    handler, level = Capture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def urls(secret: str, transport: str) -> dict:
    """Every URL setting with ``secret`` as its password (and the token), all at closed ports."""
    at = f"127.0.0.1:{PORT}"
    return {
        "CELERY_BROKER_URL": f"redis://:{secret}@{at}/0",
        "BROKER_URL": f"redis://:{secret}@{at}/0",
        "EVENT_BUS_REDIS_CONNECTION_URL": f"redis://:{secret}@{at}/1",
        "EVENT_BUS_KAFKA_BOOTSTRAP_SERVERS": f"SASL_SSL://key:{secret}@{at}",
        "EVENT_BUS_KAFKA_API_KEY": "kafka-key",
        "EVENT_BUS_KAFKA_API_SECRET": secret,
        "EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG": {"url": f"http://{at}", "username": "ch_lms", "password": secret},
        "ASPECTS_ROUTING": {
            "QUEUE": "edx.lms.core.aspects",
            "TRANSPORT": transport,
            "METRICS_REDIS_URL": f"redis://aspects:{secret}@{at}/2",
            "METRICS_TOKEN": secret,
            "RALPH_URL": f"http://ralph:{secret}@{at}/",
            "SUPERSET_URL": f"http://superset:{secret}@{at}/",
        },
    }


def dsn(secret: str) -> str:
    return f"clickhouse://ch_lms:{secret}@127.0.0.1:{PORT}/xapi"


#: What the inputs show besides the secret (scheme, user names, hosts, ports, paths).
PUBLIC = " ".join(
    ["redis://", "SASL_SSL://key:", "http://ralph:", "http://superset:", "clickhouse://ch_lms:", "aspects",
     f"127.0.0.1:{PORT}/0", f"127.0.0.1:{PORT}/1", f"127.0.0.1:{PORT}/2", "/xapi", "kafka-key"]
)


@contextmanager
def configured(secret: str, transport: str, producer: str):
    app = celery_app()
    values = urls(secret, transport)
    old_broker = app.conf.broker_url
    with override_settings(EVENT_BUS_PRODUCER=producer, **values):
        clear_config_cache()
        app.conf.broker_url = values["CELERY_BROKER_URL"]
        try:
            yield
        finally:
            app.conf.broker_url = old_broker
            clear_config_cache()


def _report(fmt: str, secret: str) -> str:
    out = io.StringIO()
    call_command("aspects_scaling_report", "--format", fmt, "--timeout", "2", "--clickhouse-dsn", dsn(secret),
                 stdout=out)
    return out.getvalue()


def run_everything(secret: str, transport: str, producer: str, fmt: str) -> str:
    """Every output of the package with ``secret`` configured everywhere, logs included."""
    from django.core import checks  # pylint: disable=import-outside-toplevel
    from django.test import Client  # pylint: disable=import-outside-toplevel

    with configured(secret, transport, producer), captured_logs() as logs:
        parts = [_report(fmt, secret)]
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command("aspects_scaling_config", "--services", "all", "--profile", "auto", "--timeout", "2",
                         "--output", "-", stdout=out, stderr=err)
        except CommandError as exc:
            parts.append(str(exc))
        parts += [out.getvalue(), err.getvalue()]
        for message in checks.run_checks(include_deployment_checks=False):
            parts += [str(message), message.hint or ""]
        response = Client().get("/aspects-routing/metrics", HTTP_AUTHORIZATION=f"Bearer {secret}")
        parts += [str(response.status_code), response.content.decode("utf-8", "replace")]
        parts += logs
    return "\n".join(parts)


@pytest.mark.slow
@_profile(100)
@given(
    secret=SECRETS,
    transport=st.sampled_from(["celery", "event_bus"]),
    producer=st.sampled_from(["edx_event_bus_redis.create_producer", "edx_event_bus_kafka.create_producer"]),
    fmt=st.sampled_from(["text", "json", "markdown"]),
)
def test_no_secret_in_any_output(redis_url, capfd, secret, transport, producer, fmt):  # pylint: disable=unused-argument
    capfd.readouterr()
    output = run_everything(secret, transport, producer, fmt)
    # What C libraries (librdkafka) and anything else wrote to the process's stdout/stderr too.
    output += "\n".join(capfd.readouterr())
    found = [p for p in pieces(secret) if p in output and p not in PUBLIC]
    if found:  # it may be ordinary text of the output ('SUPERSET'): only what a different secret does not print counts
        baseline = run_everything(baseline_for(secret), transport, producer, fmt) + "\n".join(capfd.readouterr())
        assert output.count(secret) <= baseline.count(secret), secret
        assert not leaks(secret, output, baseline, PUBLIC), (secret, leaks(secret, output, baseline, PUBLIC))


# ---------------------------------------------------------------- the layer itself, many more cases

HOSTS = st.sampled_from(["redis", "127.0.0.1", "[::1]", "ralph.example.com", ""])


@_profile(500)
@given(
    scheme=st.sampled_from(["redis", "rediss", "http", "https", "clickhouse", "amqp"]),
    user=st.sampled_from(["", "aspects", "default", "ch_lms"]),
    secret=SECRETS,
    host=HOSTS,
    port=st.one_of(st.none(), st.integers(1, 65535)),
    path=st.sampled_from(["", "/", "/0", "/xapi", "/a/b"]),
)
def test_every_url_parses_to_its_parts_and_shows_no_secret(scheme, user, secret, host, port, path):
    hostport = host + (f":{port}" if port is not None and host else "")
    raw = f"{scheme}://{user}:{secret}@{hostport}{path}"
    address = parse_url(raw, "SETTING")
    assert address.ok, (raw, address.problem)
    assert address.password == _decoded(secret)
    assert (address.username or "") == user
    assert address.host == (host.strip("[]") or None)
    shown = _shown(address)
    baseline = _shown(parse_url(raw.replace(secret, BASELINE), "SETTING"))
    assert secret not in shown and not leaks(secret, shown, baseline, raw.replace(secret, " "))
    # What a library receives parses back, with the standard parser, to the same credentials.
    from urllib.parse import unquote, urlsplit  # pylint: disable=import-outside-toplevel

    again = urlsplit(address.url())
    assert unquote(again.password) == address.password and again.hostname == (address.host or None)


def _shown(address) -> str:
    """Every form of ``address`` that may be shown."""
    return "\n".join((address.display, address.location, address.hostport, repr(address), address.failure("refused")))


def _decoded(secret: str) -> str:
    from urllib.parse import unquote  # pylint: disable=import-outside-toplevel

    return unquote(secret)


def _raw_url_reason(secret: str) -> str | None:
    """The reason shown when redis-py is handed the raw URL (the old code path); None if it connected."""
    import redis  # pylint: disable=import-outside-toplevel

    raw = f"redis://:{secret}@127.0.0.1:{PORT}/0"
    address = parse_url(raw, "CELERY_BROKER_URL")
    assert address.port == PORT and address.password == _decoded(secret)  # where the package connects
    try:
        # A '#' or '/' in the password may send redis-py to another host (it answers: nothing to map)
        # or make it raise with an echo of the password.
        redis.Redis.from_url(raw, socket_connect_timeout=0.2, socket_timeout=0.2).ping()
        return None
    except Exception as exc:  # pylint: disable=broad-except
        return address.failure(describe_error(exc, address.secrets))


@_profile(300)
@given(secret=SECRETS)
def test_library_errors_on_raw_urls_never_echo_the_secret(secret):
    """What the libraries raise when given the raw URL is mapped to a reason, never shown."""
    reason = _raw_url_reason(secret)
    if reason is None:
        return
    assert reason.startswith(f"CELERY_BROKER_URL: 127.0.0.1:{PORT}: "), reason
    baseline = _raw_url_reason(BASELINE)
    assert secret not in reason.removeprefix("CELERY_BROKER_URL: ")
    assert not leaks(secret, reason, baseline, "redis://:@127.0.0.1/0"), reason
