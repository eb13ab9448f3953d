"""
The one place where the ``ASPECTS_ROUTING`` setting is read.

:func:`get_config` returns a frozen :class:`RoutingSettings`. It is computed on
first use (never at import time: Tutor appends the operator's settings after the
plugins load), cached, and recomputed when Django's ``setting_changed`` signal
fires for any setting it reads.

Parsing never raises. A bad value is replaced by its default and recorded as a
:class:`Problem`; :mod:`aspects_routing.checks` turns problems into Django system
check messages, so ``manage.py check`` names the setting and the fix while tasks
keep flowing on the safe default.

.. setting_name: ASPECTS_ROUTING
.. setting_default: {}
.. setting_description: Configuration dict for aspects-routing. Every key, its
   default and its meaning are listed in :data:`DEFAULTS` and in the README.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from aspects_routing.redaction import parse_url

SETTING = "ASPECTS_ROUTING"

#: The Celery tasks that Aspects work is made of, as registered by current
#: releases of the packages that define them.
ASPECTS_TASKS = (
    "platform_plugin_aspects.tasks.dump_course_to_clickhouse",
    "platform_plugin_aspects.tasks.dump_data_to_clickhouse",
    "event_routing_backends.tasks.dispatch_event",
    "event_routing_backends.tasks.dispatch_event_persistent",
    "event_routing_backends.tasks.dispatch_bulk_events",
    "eventtracking.tasks.send_event",
)

TRANSPORTS = ("celery", "event_bus")

#: Every key of ``ASPECTS_ROUTING`` with its default.
DEFAULTS: Mapping[str, Any] = {
    # "celery": tasks go through Celery; "event_bus": tracking events go over
    # the Open edX event bus (the sink tasks still use Celery).
    "TRANSPORT": "celery",
    # Queue for Aspects tasks. None: the service's HIGH_PRIORITY_QUEUE.
    "QUEUE": None,
    # fnmatch patterns of the task names to route.
    "TASKS": ASPECTS_TASKS,
    # Patterns appended to TASKS.
    "EXTRA_TASKS": (),
    # {pattern: queue} overrides; the first matching pattern wins.
    "TASK_QUEUES": {},
    # Collect task metrics.
    "METRICS_ENABLED": True,
    # Shared metrics store. None: the Celery broker URL when it is Redis.
    "METRICS_REDIS_URL": None,
    # How often each process flushes its counters to the store.
    "METRICS_FLUSH_SECONDS": 5.0,
    # How long per-minute buckets are kept.
    "METRICS_RETENTION_MINUTES": 1440,
    # Bearer token accepted by the metrics endpoint (besides a staff session).
    "METRICS_TOKEN": None,
    # Prefix of every key the metrics store writes in Redis.
    "METRICS_KEY_PREFIX": "aspects_routing",
    # Event bus topic for tracking events (transport "event_bus").
    "EVENT_BUS_TOPIC": "analytics",
    # Consumer group that consume_events uses for the xAPI transform.
    "EVENT_BUS_CONSUMER_GROUP": "event_routing_backends",
    # Keep the INFO lines that the packages on the path write for every tracking event.
    "LOG_EACH_TRACKING_EVENT": False,
    # Health endpoints probed by the scaling report (None: not probed).
    "RALPH_URL": None,
    "SUPERSET_URL": None,
    # Superset's Celery broker (its Redis): the report pings it and its workers (None: not checked).
    "SUPERSET_BROKER_URL": None,
    # ClickHouse cluster name, to read system tables across replicas.
    "CLICKHOUSE_CLUSTER": None,
    # Days of xAPI data Aspects keeps (ASPECTS_DATA_TTL_EXPRESSION in Tutor).
    "RETENTION_DAYS": 365,
    # Seconds between ClickHouse measurements behind the metrics endpoint's xAPI lag and
    # growth gauges (at most one per interval per process); None: not measured.
    "METRICS_CLICKHOUSE_SECONDS": 60.0,
}

# A queue name as brokers accept it: no whitespace, not empty, bounded length.
_QUEUE_RE = re.compile(r"^[A-Za-z0-9_.:@\-]{1,200}$")
#: A ClickHouse cluster name as ``remote_servers`` declares it; the scaling report quotes it into
#: ``clusterAllReplicas(...)``, so nothing else may pass.
CLUSTER_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,190}$")


@dataclass(frozen=True)
class Problem:
    """A configuration mistake found while parsing, with the fix."""

    level: str  # "error" or "warning"
    id: str  # stable system-check id, e.g. "aspects_routing.W101"
    msg: str
    hint: str


@dataclass(frozen=True)
class RoutingSettings:  # pylint: disable=too-many-instance-attributes
    """Validated, immutable view of ``settings.ASPECTS_ROUTING``."""

    transport: str
    queue: str | None
    queue_source: str  # "ASPECTS_ROUTING.QUEUE", "HIGH_PRIORITY_QUEUE" or "unset"
    task_patterns: tuple[str, ...]
    task_queues: tuple[tuple[str, str], ...]
    metrics_enabled: bool
    metrics_redis_url: str | None
    metrics_redis_url_source: str  # "ASPECTS_ROUTING.METRICS_REDIS_URL", "broker" or "none"
    metrics_flush_seconds: float
    metrics_retention_minutes: int
    metrics_token: str | None = field(repr=False)
    metrics_key_prefix: str
    event_bus_topic: str
    event_bus_consumer_group: str
    log_each_tracking_event: bool
    ralph_url: str | None
    superset_url: str | None
    superset_broker_url: str | None = field(repr=False)
    clickhouse_cluster: str | None
    retention_days: int
    metrics_clickhouse_seconds: float | None = 60.0
    problems: tuple[Problem, ...] = ()

    @property
    def queues(self) -> tuple[str, ...]:
        """Every queue an Aspects task may be routed to, default first."""
        found = [self.queue] if self.queue else []
        for _pattern, queue in self.task_queues:
            if queue not in found:
                found.append(queue)
        return tuple(found)


# Keys whose values may carry credentials (tokens, passwords inside URLs).
_SECRET_KEYS = frozenset({"METRICS_TOKEN", "METRICS_REDIS_URL", "RALPH_URL", "SUPERSET_URL", "SUPERSET_BROKER_URL"})


class _Parser:
    """Validates one raw dict; collects problems instead of raising."""

    def __init__(self, raw: Mapping[str, Any]):
        self.raw = raw
        self.problems: list[Problem] = []

    def problem(self, level: str, number: int, key: str, msg: str, hint: str, fallback: bool = False):
        # A value replaced by its default is a warning numbered W1xx (xx: the key's number), so the
        # plugin keeps working and ``manage.py migrate`` still runs.
        prefix = "E" if level == "error" else "W"
        number = 100 + number if fallback else number
        self.problems.append(
            Problem(level, f"aspects_routing.{prefix}{number:03d}", f"{SETTING}[{key!r}] {msg}", hint)
        )

    def get(self, key: str, number: int, check: Callable[[Any], bool], expected: str) -> Any:
        value = self.raw.get(key, DEFAULTS[key])
        if check(value):
            return value
        default = DEFAULTS[key]
        # Values of keys that may hold credentials are never echoed.
        shown = f"a {type(value).__name__} that is not valid" if key in _SECRET_KEYS else repr(value)
        # The default takes over, so the plugin keeps working: a warning (``manage.py migrate`` still runs).
        self.problem(
            "warning",
            number,
            key,
            f"is {shown}; expected {expected}. The default {default!r} is used.",
            f"Set {SETTING}[{key!r}] to {expected}, or remove it to use the default {default!r}.",
            fallback=True,
        )
        return default


def _is_queue(value: Any) -> bool:
    return isinstance(value, str) and bool(_QUEUE_RE.match(value))


def _is_patterns(value: Any) -> bool:
    return isinstance(value, (list, tuple)) and all(isinstance(p, str) and p.strip() for p in value)


#: Upper bound of METRICS_FLUSH_SECONDS: past it, figures reach the store minutes
#: late and a process that dies loses that much (``inf`` or 1e10 cannot even be waited on).
MAX_FLUSH_SECONDS = 300
#: Upper bound of METRICS_RETENTION_MINUTES (30 days): the per-minute hashes' EXPIRE
#: must stay a number Redis accepts (10**15 minutes made every EXPIRE fail, so the
#: keys never expired), and the report reads at most a day of them.
MAX_RETENTION_MINUTES = 43_200


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_optional_str(value: Any) -> bool:
    return value is None or (isinstance(value, str) and bool(value.strip()))


def _is_optional_redis_url(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.startswith(("redis://", "rediss://")) and len(value) > 8)


def _is_optional_http_url(value: Any) -> bool:
    if value is None:
        return True
    if not (isinstance(value, str) and value.startswith(("http://", "https://")) and len(value) > 8):
        return False
    address = parse_url(value, "URL")
    return address.ok and bool(address.host)


#: Fewest seconds between two ClickHouse measurements of the metrics endpoint.
MIN_CLICKHOUSE_SECONDS = 1.0


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _broker_url(django_settings) -> str | None:
    for name in ("CELERY_BROKER_URL", "BROKER_URL"):
        value = getattr(django_settings, name, None)
        if isinstance(value, str) and value:
            return value
    return None


def _parse_task_queues(parser: _Parser) -> tuple[tuple[str, str], ...]:
    raw = parser.raw.get("TASK_QUEUES", DEFAULTS["TASK_QUEUES"])
    if not isinstance(raw, Mapping):
        parser.problem(
            "warning",
            4,
            "TASK_QUEUES",
            f"is {raw!r}; expected a dict of {{task pattern: queue name}}. Every task goes to QUEUE.",
            f"Set {SETTING}['TASK_QUEUES'] to a dict such as "
            "{'event_routing_backends.tasks.dispatch_bulk_events': 'edx.lms.core.aspects_bulk'}.",
            fallback=True,
        )
        return ()
    pairs = []
    for pattern, queue in raw.items():
        if isinstance(pattern, str) and pattern.strip() and _is_queue(queue):
            pairs.append((pattern, queue))
            continue
        # The entry is ignored, so its tasks keep going to QUEUE: late, never lost.
        parser.problem(
            "warning",
            4,
            "TASK_QUEUES",
            f"entry {pattern!r}: {queue!r} is not a valid task pattern and queue name; "
            "tasks it names go to QUEUE instead.",
            "Use a non-empty fnmatch pattern and a queue name made of letters, digits and . _ - : @.",
            fallback=True,
        )
    return tuple(pairs)


def parse(raw: Any, django_settings=settings) -> RoutingSettings:
    """Build :class:`RoutingSettings` from a raw ``ASPECTS_ROUTING`` value."""
    if not isinstance(raw, Mapping):
        parser = _Parser({})
        parser.problem(
            "warning",
            0,
            "*",
            f"must be a dict; got {type(raw).__name__}. Every key takes its default.",
            f"Set {SETTING} to a dict, e.g. {SETTING} = {{'QUEUE': 'edx.lms.core.aspects'}}.",
            fallback=True,
        )
    else:
        parser = _Parser(raw)
        unknown = sorted(set(raw) - set(DEFAULTS), key=str)
        if unknown:
            parser.problem(
                "warning",
                1,
                ", ".join(map(str, unknown)),
                "is not a setting of aspects-routing and is ignored.",
                f"Check the spelling; known keys: {', '.join(DEFAULTS)}.",
            )

    transport = parser.get("TRANSPORT", 1, lambda v: v in TRANSPORTS, " or ".join(map(repr, TRANSPORTS)))

    queue = parser.get("QUEUE", 2, lambda v: v is None or _is_queue(v), "None or a queue name without spaces")
    queue_source = f"{SETTING}.QUEUE"
    if queue is None:
        queue = getattr(django_settings, "HIGH_PRIORITY_QUEUE", None)
        queue_source = "HIGH_PRIORITY_QUEUE"
        if not _is_queue(queue):
            parser.problem(
                "warning",
                2,
                "QUEUE",
                "is None and HIGH_PRIORITY_QUEUE is not set, so Aspects tasks are not re-routed "
                "(the platform's router and default queue decide).",
                f"Set {SETTING}['QUEUE'] to the queue Aspects tasks should use, e.g. 'edx.lms.core.aspects'.",
            )
            queue, queue_source = None, "unset"

    tasks = parser.get("TASKS", 3, _is_patterns, "a list of task-name patterns")
    extra = parser.get("EXTRA_TASKS", 3, _is_patterns, "a list of task-name patterns")
    patterns = tuple(dict.fromkeys((*tasks, *extra)))
    task_queues = _parse_task_queues(parser)

    metrics_enabled = parser.get("METRICS_ENABLED", 10, _is_bool, "True or False")
    metrics_url = parser.get("METRICS_REDIS_URL", 11, _is_optional_str, "None or a redis:// URL")
    url_source = f"{SETTING}.METRICS_REDIS_URL"
    if metrics_url is not None and (
        not metrics_url.startswith(("redis://", "rediss://", "unix://"))
        or not parse_url(metrics_url, f"{SETTING}['METRICS_REDIS_URL']").ok
    ):
        parser.problem(
            "warning",
            11,
            "METRICS_REDIS_URL",
            "is not a usable redis://, rediss:// or unix:// URL; the broker URL is used if it is Redis.",
            "Point it at a Redis server shared by the LMS and the workers, e.g. redis://redis:6379/2; "
            "percent-encode reserved characters in its password (/ %2F, # %23, ? %3F, @ %40).",
            fallback=True,
        )
        metrics_url = None
    if metrics_url is None:
        broker = _broker_url(django_settings)
        if broker and broker.startswith(("redis://", "rediss://")):
            metrics_url, url_source = broker, "broker"
    if metrics_url is None:
        url_source = "none"

    return RoutingSettings(
        transport=transport,
        queue=queue,
        queue_source=queue_source,
        task_patterns=patterns,
        task_queues=task_queues,
        metrics_enabled=metrics_enabled,
        metrics_redis_url=metrics_url,
        metrics_redis_url_source=url_source,
        metrics_flush_seconds=float(
            parser.get(
                "METRICS_FLUSH_SECONDS",
                12,
                lambda v: _is_positive_number(v) and v <= MAX_FLUSH_SECONDS,
                f"a number of seconds above 0 and at most {MAX_FLUSH_SECONDS}",
            )
        ),
        metrics_retention_minutes=parser.get(
            "METRICS_RETENTION_MINUTES",
            13,
            lambda v: _is_positive_int(v) and v <= MAX_RETENTION_MINUTES,
            f"a whole number of minutes from 1 to {MAX_RETENTION_MINUTES} (30 days)",
        ),
        metrics_token=parser.get("METRICS_TOKEN", 14, _is_optional_str, "None or a non-empty string"),
        metrics_key_prefix=parser.get(
            "METRICS_KEY_PREFIX", 15, lambda v: isinstance(v, str) and bool(_QUEUE_RE.match(v)), "a short key prefix"
        ),
        event_bus_topic=parser.get("EVENT_BUS_TOPIC", 20, _is_queue, "a topic name without spaces"),
        event_bus_consumer_group=parser.get(
            "EVENT_BUS_CONSUMER_GROUP", 21, _is_queue, "a consumer group name without spaces"
        ),
        log_each_tracking_event=parser.get("LOG_EACH_TRACKING_EVENT", 22, _is_bool, "True or False"),
        ralph_url=parser.get("RALPH_URL", 30, _is_optional_http_url, "None or an http(s) URL"),
        superset_url=parser.get("SUPERSET_URL", 31, _is_optional_http_url, "None or an http(s) URL"),
        superset_broker_url=parser.get(
            "SUPERSET_BROKER_URL", 34, _is_optional_redis_url, "None or Superset's redis:// broker URL"
        ),
        clickhouse_cluster=parser.get(
            "CLICKHOUSE_CLUSTER",
            32,
            lambda v: v is None or (isinstance(v, str) and bool(CLUSTER_NAME_RE.match(v))),
            "None or a cluster name (letters, digits, _ . -)",
        ),
        retention_days=parser.get("RETENTION_DAYS", 33, _is_positive_int, "a positive whole number of days"),
        metrics_clickhouse_seconds=_optional_float(parser.get(
            "METRICS_CLICKHOUSE_SECONDS",
            36,
            lambda v: v is None or (_is_positive_number(v) and v >= MIN_CLICKHOUSE_SECONDS),
            f"None or a number of seconds >= {MIN_CLICKHOUSE_SECONDS:g}",
        )),
        problems=tuple(parser.problems),
    )


# Settings whose change must drop the cached config.
_WATCHED = frozenset(
    {SETTING, "HIGH_PRIORITY_QUEUE", "CELERY_BROKER_URL", "BROKER_URL", "EXPLICIT_QUEUES"}
)
_listeners: list[Callable[[], None]] = []


@functools.lru_cache(maxsize=1)
def get_config() -> RoutingSettings:
    """Return the validated settings; parsed once, lazily."""
    return parse(getattr(settings, SETTING, {}))


def on_config_cleared(listener: Callable[[], None]) -> Callable[[], None]:
    """Register ``listener`` to run whenever the cached config is dropped."""
    _listeners.append(listener)
    return listener


def clear_config_cache() -> None:
    """Drop the cached config and every cache derived from it."""
    get_config.cache_clear()
    for listener in _listeners:
        listener()


@receiver(setting_changed)
def _on_setting_changed(setting, **kwargs):  # pylint: disable=unused-argument
    if setting in _WATCHED:
        clear_config_cache()
