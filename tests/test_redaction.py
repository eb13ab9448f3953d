"""
:mod:`aspects_routing.redaction`: malformed URLs parse without leaking, the display form has no
credential, library errors become reasons naming the setting and the host, and a scrub masks
secrets only (user names and ordinary words stay).
"""

import redis
import pytest

from aspects_routing.redaction import (
    UNPARSEABLE,
    UnusableURL,
    configured_secrets,
    describe_error,
    kafka_location,
    parse_url,
    scrub,
)


@pytest.mark.parametrize(
    "url, host, port, user, password, location",
    [
        # The cases: reserved characters left unencoded in the password.
        ("http://admin:Hunter#2secret@127.0.0.1:6419/xapi", "127.0.0.1", 6419, "admin", "Hunter#2secret",
         "http://127.0.0.1:6419/xapi"),
        ("http://ralphuser:Ralph/S3cretPW@127.0.0.1:1/", "127.0.0.1", 1, "ralphuser", "Ralph/S3cretPW",
         "http://127.0.0.1:1/"),
        ("redis://:Bro#k?er@ss/w@redis:6379/0", "redis", 6379, None, "Bro#k?er@ss/w", "redis://redis:6379/0"),
        ("redis://u:a:b:c@redis/1", "redis", None, "u", "a:b:c", "redis://redis/1"),
        # Percent-encoded as it should be: decoded once.
        ("redis://:p%23w%2Fd@redis:6379/0", "redis", 6379, None, "p#w/d", "redis://redis:6379/0"),
        # No port, IPv6, an empty host, no credentials.
        ("https://user:pw-123456@ralph.example.com/", "ralph.example.com", None, "user", "pw-123456",
         "https://ralph.example.com/"),
        ("clickhouse://u:pw-123456@[::1]:8123/xapi#frag", "::1", 8123, "u", "pw-123456", "clickhouse://[::1]:8123/xapi"),
        ("unix:///run/redis.sock?db=1", None, None, None, None, "unix:///run/redis.sock"),
        ("chdb://memory", "memory", None, None, None, "chdb://memory"),
    ],
)
def test_malformed_urls_parse_to_their_parts(url, host, port, user, password, location):
    address = parse_url(url, "SETTING")
    assert address.ok, address.problem
    assert (address.host, address.port, address.username, address.password) == (host, port, user, password)
    assert address.location == location
    if password:
        assert password not in address.display and password not in repr(address)
        assert password in address.secrets
    # What a library receives parses back to the same parts with the standard parser.
    again = redis.connection.parse_url(address.url()) if url.startswith("redis") else None
    if again is not None:
        assert again.get("password") == password and again.get("host", host) == host


def test_user_names_are_not_secrets_and_query_secrets_are():
    address = parse_url("redis://aspects:pw-987654@redis:6380/2?password=qs-456789&db=2", "URL")
    assert address.display == "redis://***@redis:6380/2?password=***&db=2"
    assert "aspects" not in address.secrets
    assert {"pw-987654", "qs-456789"} <= set(address.secrets)


@pytest.mark.parametrize(
    "url, problem",
    [
        ("http://admin:Hunter#2secret", "no host[:port] could be found"),  # no '@': the host is not findable
        ("redis://u:p@redis:99999/0", "not between 0 and 65535"),
        ("Hunter2secret", "no scheme://"),
    ],
)
def test_unparseable_urls_hide_everything_and_say_why(url, problem):
    address = parse_url(url, "CELERY_BROKER_URL")
    assert not address.ok and problem in address.problem
    assert "Hunter" not in address.display and "Hunter" not in address.problem
    assert UNPARSEABLE in address.display
    with pytest.raises(UnusableURL) as caught:
        address.url()
    assert str(caught.value).startswith("CELERY_BROKER_URL: ") and "Hunter" not in str(caught.value)


def test_library_errors_become_reasons_naming_the_setting_and_host():
    address = parse_url("redis://:Bro#ker-secret@127.0.0.1:1/0", "CELERY_BROKER_URL")
    try:
        redis.Redis.from_url(address.url(), socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        reason = address.failure(exc)
    assert reason == "CELERY_BROKER_URL: 127.0.0.1:1: connection refused"
    # What the standard parser does with the raw URL: an error that echoes the password prefix.
    with pytest.raises(ValueError) as caught:
        redis.Redis.from_url("redis://:Bro#ker-secret@127.0.0.1:1/0")
    assert describe_error(caught.value, address.secrets) == "the URL could not be parsed"


def test_scrub_masks_secrets_and_their_fragments_only():
    text = "user aspects: queue edx.lms.core.aspects; echoed Hunter#2sec and Hunter"
    assert scrub(text, ("Hunter#2secret",)) == "user aspects: queue edx.lms.core.aspects; echoed *** and ***"
    assert scrub("abc xyz", ("abc",)) == "abc xyz"  # too short to mask without masking words


def test_kafka_location_drops_user_info():
    assert kafka_location("SASL_SSL://key:se/cr#et@kafka-1:9092, kafka-2:9093") == "kafka-1:9092,kafka-2:9093"


def test_configured_secrets_reads_every_url_setting(settings):
    settings.CELERY_BROKER_URL = "redis://:broker#pw1@redis:6379/0"
    settings.EVENT_BUS_REDIS_CONNECTION_URL = "redis://:bus/pw22@redis:6379/1"
    settings.EVENT_SINK_CLICKHOUSE_BACKEND_CONFIG = {"url": "http://clickhouse:8123", "password": "chpw-333"}
    settings.EVENT_BUS_KAFKA_API_SECRET = "kafka-444"
    settings.ASPECTS_ROUTING = {
        "METRICS_TOKEN": "token-5555555555555555", "RALPH_URL": "http://r:ralph?pw6@ralph:8100/",
        "SUPERSET_URL": "http://s:sup@pw7@superset:8088/", "METRICS_REDIS_URL": "redis://:metrics#8@redis/2",
    }
    found = set(configured_secrets([("--clickhouse-dsn", "http://u:dsn/pw9@ch:8123/xapi")]))
    for secret in ("broker#pw1", "bus/pw22", "chpw-333", "kafka-444", "token-5555555555555555", "ralph?pw6",
                   "sup@pw7", "metrics#8", "dsn/pw9"):
        assert secret in found, secret
    assert not {"r", "s", "u"} & found
