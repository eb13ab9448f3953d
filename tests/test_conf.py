"""Parsing ``ASPECTS_ROUTING``: defaults, fallbacks, problems that name the fix."""

from types import SimpleNamespace

import pytest

from aspects_routing.conf import ASPECTS_TASKS, DEFAULTS, get_config, parse


def platform(**values):
    base = {"HIGH_PRIORITY_QUEUE": "edx.lms.core.high", "BROKER_URL": "redis://:s3cret@redis:6379/0"}
    base.update(values)
    return SimpleNamespace(**base)


def ids(config):
    return [p.id for p in config.problems]


def test_defaults_route_the_six_tasks_to_the_high_priority_queue():
    config = parse({}, platform())
    assert config.transport == "celery"
    assert config.queue == "edx.lms.core.high"
    assert config.queue_source == "HIGH_PRIORITY_QUEUE"
    assert config.task_patterns == ASPECTS_TASKS
    assert config.metrics_redis_url == "redis://:s3cret@redis:6379/0"
    assert config.metrics_redis_url_source == "broker"
    assert config.problems == ()


def test_cms_default_queue():
    assert parse({}, platform(HIGH_PRIORITY_QUEUE="edx.cms.core.high")).queue == "edx.cms.core.high"


def test_explicit_queue_extra_tasks_and_overrides():
    config = parse(
        {
            "QUEUE": "edx.lms.core.aspects",
            "EXTRA_TASKS": ["my_plugin.tasks.*"],
            "TASK_QUEUES": {"event_routing_backends.tasks.dispatch_bulk_events": "edx.lms.core.bulk"},
        },
        platform(),
    )
    assert config.queue == "edx.lms.core.aspects"
    assert config.task_patterns[-1] == "my_plugin.tasks.*"
    assert config.queues == ("edx.lms.core.aspects", "edx.lms.core.bulk")
    assert config.problems == ()


@pytest.mark.parametrize(
    "raw, problem_id, field, expected",
    [
        ({"TRANSPORT": "kafka"}, "aspects_routing.W101", "transport", "celery"),
        ({"QUEUE": "has space"}, "aspects_routing.W102", "queue", "edx.lms.core.high"),
        ({"QUEUE": ""}, "aspects_routing.W102", "queue", "edx.lms.core.high"),
        ({"TASKS": "eventtracking.tasks.send_event"}, "aspects_routing.W103", "task_patterns", ASPECTS_TASKS),
        ({"TASK_QUEUES": ["x"]}, "aspects_routing.W104", "task_queues", ()),
        ({"METRICS_FLUSH_SECONDS": -1}, "aspects_routing.W112", "metrics_flush_seconds", 5.0),
        ({"METRICS_RETENTION_MINUTES": 0}, "aspects_routing.W113", "metrics_retention_minutes", 1440),
        ({"METRICS_ENABLED": "yes"}, "aspects_routing.W110", "metrics_enabled", True),
    ],
)
def test_bad_values_fall_back_to_safe_defaults_and_say_so(raw, problem_id, field, expected):
    config = parse(raw, platform())
    assert getattr(config, field) == expected
    assert ids(config) == [problem_id]
    problem = config.problems[0]
    key = next(iter(raw))
    assert f"ASPECTS_ROUTING[{key!r}]" in problem.msg
    assert key in problem.hint


def test_bad_task_queue_entry_is_ignored_not_misrouted():
    config = parse({"TASK_QUEUES": {"eventtracking.*": "bad queue", "event_routing_backends.*": "edx.q"}}, platform())
    assert config.task_queues == (("event_routing_backends.*", "edx.q"),)
    assert ids(config) == ["aspects_routing.W104"]


def test_not_a_dict():
    config = parse(["QUEUE"], platform())
    assert ids(config) == ["aspects_routing.W100"]
    assert config.queue == "edx.lms.core.high"


def test_unknown_key_is_a_warning():
    config = parse({"QUEUES": "x"}, platform())
    assert ids(config) == ["aspects_routing.W001"]
    assert "QUEUES" in config.problems[0].msg


def test_no_high_priority_queue_leaves_routing_to_the_platform():
    config = parse({}, SimpleNamespace())
    assert config.queue is None
    assert config.queue_source == "unset"
    assert ids(config) == ["aspects_routing.W002"]


def test_metrics_store_defaults():
    assert parse({}, platform(BROKER_URL="amqp://guest@rabbit//")).metrics_redis_url is None
    config = parse({"METRICS_REDIS_URL": "redis://metrics:6379/3"}, platform())
    assert config.metrics_redis_url == "redis://metrics:6379/3"
    config = parse({"METRICS_REDIS_URL": "http://nope"}, platform())
    assert ids(config) == ["aspects_routing.W111"]
    assert config.metrics_redis_url_source == "broker"


def test_token_not_in_repr():
    config = parse({"METRICS_TOKEN": "tok-123-secret"}, platform())
    assert config.metrics_token == "tok-123-secret"
    assert "tok-123-secret" not in repr(config)


def test_every_default_key_is_parsed():
    # A key added to DEFAULTS without parsing would be silently ignored.
    config = parse({key: value for key, value in DEFAULTS.items()}, platform())
    assert [p for p in config.problems if p.level == "error"] == []


def test_cache_is_dropped_when_settings_change(settings):
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.one"}
    assert get_config().queue == "edx.lms.core.one"
    settings.ASPECTS_ROUTING = {"QUEUE": "edx.lms.core.two"}
    assert get_config().queue == "edx.lms.core.two"


def test_bad_secret_values_are_not_echoed():
    config = parse({"METRICS_REDIS_URL": 12345, "METRICS_TOKEN": ["hunter2-secret"]}, platform())
    text = " ".join(p.msg + p.hint for p in config.problems)
    assert sorted(ids(config)) == ["aspects_routing.W111", "aspects_routing.W114"]
    assert "12345" not in text and "hunter2" not in text
