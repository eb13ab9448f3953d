"""
Django system checks for aspects-routing (``manage.py check``).

Ids are stable. The level says what a mistake does: an **Error** where the plugin cannot do its
job (``manage.py migrate`` then stops, as Django stops on any error); a **Warning** where it
survives by falling back. Values of ``ASPECTS_ROUTING`` that are replaced by their default are
warnings ``W100``-``W139`` (100 + the key's number, from :mod:`aspects_routing.conf`); the README's "System checks" table gives each id its level. The checks below look at the
running platform.
"""

from __future__ import annotations

import fnmatch

from django.conf import settings
from django.core import checks

from aspects_routing.conf import ASPECTS_TASKS, SETTING, get_config
from aspects_routing.routing.install import celery_app
from aspects_routing.service import current_service

_LEVELS = {"error": checks.Error, "warning": checks.Warning}


def _message(level: str, msg: str, hint: str, check_id: str):
    return _LEVELS[level](msg, hint=hint, id=check_id)


@checks.register()
def check_settings(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """Report every mistake found while parsing ``ASPECTS_ROUTING``."""
    return [_message(p.level, p.msg, p.hint, p.id) for p in get_config().problems]


#: How many task names a message lists before "...".
_LISTED = 5


def _names(names) -> str:
    names = sorted(names)
    return ", ".join(names[:_LISTED]) + (f" and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def _what_is_routed(config, registered: list[str]) -> list:
    """Aspects tasks no pattern routes (W052); wildcard patterns that route other tasks too (W053)."""
    messages = []
    routed = {name for name in registered if any(fnmatch.fnmatchcase(name, p) for p in config.task_patterns)}
    missed = [task for task in ASPECTS_TASKS if task in registered and task not in routed]
    if missed:
        messages.append(
            checks.Warning(
                f"{SETTING}['TASKS'] and ['EXTRA_TASKS'] route {'no task at all' if not routed else 'only some tasks'}: "
                f"the registered Aspects task(s) {_names(missed)} stay on the platform's queues, where a burst "
                "delays (and is delayed by) every other LMS task.",
                hint=f"Remove {SETTING}['TASKS'] to route the six Aspects tasks (the default), or list the missing "
                "ones in it.",
                id="aspects_routing.W052",
            )
        )
    for pattern in config.task_patterns:
        if not any(char in pattern for char in "*?["):
            continue  # a task named on purpose (EXTRA_TASKS is for that)
        others = [n for n in registered if fnmatch.fnmatchcase(n, pattern) and n not in ASPECTS_TASKS]
        if others:
            messages.append(
                checks.Warning(
                    f"{SETTING} task pattern {pattern!r} also routes {len(others)} task(s) that are not Aspects "
                    f"work to the Aspects queue: {_names(others)}. They then wait behind Aspects bursts and "
                    "run on the Aspects workers.",
                    hint="Use patterns that name only Aspects tasks (the default TASKS does), and list any other "
                    f"task on purpose in {SETTING}['EXTRA_TASKS'].",
                    id="aspects_routing.W053",
                )
            )
    return messages


def _configured_queue_names(app) -> set[str]:
    """Queue names in the Celery configuration itself (not what this plugin added)."""
    queues = app.conf.task_queues
    if not queues:
        return {app.conf.task_default_queue}
    if isinstance(queues, dict):
        return set(queues)
    return {getattr(q, "name", q) for q in queues}


@checks.register()
def check_tasks_and_queues(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """Patterns that match no registered task; routed queues Celery does not declare."""
    config = get_config()
    app = celery_app()
    messages = []
    registered = [name for name in app.tasks if not name.startswith("celery.")]
    for pattern in config.task_patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in registered):
            messages.append(
                checks.Warning(
                    f"{SETTING} task pattern {pattern!r} matches no registered Celery task.",
                    hint="Check the spelling, or install the package that defines the task; "
                    "remove the pattern from TASKS/EXTRA_TASKS if it is not needed.",
                    id="aspects_routing.W050",
                )
            )
    messages.extend(_what_is_routed(config, registered))
    configured = _configured_queue_names(app)
    for queue in config.queues:
        if queue not in configured:
            messages.append(
                checks.Warning(
                    f"Aspects queue {queue!r} is not in CELERY_QUEUES; aspects-routing declares it "
                    "when the LMS/CMS starts, but a worker started with -Q must name it.",
                    hint=f"Add {queue!r} to CELERY_QUEUES, and run a worker with "
                    f"'{current_service().celery('worker', '-Q', queue)}' (or no -Q).",
                    id="aspects_routing.W051",
                )
            )
    return messages


@checks.register()
def check_transport(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """The event bus transport needs an event bus producer."""
    config = get_config()
    if config.transport != "event_bus":
        return []
    if not getattr(settings, "EVENT_BUS_PRODUCER", None):
        return [
            checks.Error(
                f"{SETTING}['TRANSPORT'] is 'event_bus' but EVENT_BUS_PRODUCER is not set; "
                "tracking events cannot be sent over the event bus.",
                hint="Set EVENT_BUS_PRODUCER = 'edx_event_bus_redis.create_producer' (Redis) or "
                "'edx_event_bus_kafka.create_producer' (Kafka), or set TRANSPORT to 'celery'.",
                id="aspects_routing.E060",
            )
        ]
    return []


#: Shortest METRICS_TOKEN not warned about (a bearer token is guessable if short).
MIN_METRICS_TOKEN_LENGTH = 16


def header_safe(token: str) -> bool:
    """True when ``token`` survives an HTTP header as the endpoint compares it: printable ASCII, not padded."""
    return token == token.strip() and all(" " <= char <= "~" for char in token)


def _header_problem(token: str) -> str:
    if token != token.strip():
        return "it has leading or trailing whitespace, which the header parsing strips"
    if any(ord(char) > 0x7E for char in token):
        return "it has non-ASCII characters, which HTTP headers do not carry as typed"
    return "it has control characters, which HTTP headers cannot carry"


@checks.register()
def check_metrics(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """Metrics without a shared store; a short endpoint token."""
    config = get_config()
    if not config.metrics_enabled:
        return []
    messages = []
    if config.metrics_redis_url is None:
        messages.append(
            checks.Warning(
                f"{SETTING}['METRICS_REDIS_URL'] is not set and the Celery broker is not Redis, so task "
                "metrics stay in each process: /aspects-routing/metrics and the scaling report only see "
                "the process that serves them, not the workers.",
                hint=f"Set {SETTING}['METRICS_REDIS_URL'] to a Redis shared by the LMS, CMS and workers, "
                "e.g. 'redis://redis:6379/2'; or set METRICS_ENABLED to False.",
                id="aspects_routing.W070",
            )
        )
    token = config.metrics_token
    if token is not None and not header_safe(token):
        # The value is a credential: what is wrong with it is said, never the value.
        messages.append(
            checks.Error(
                f"{SETTING}['METRICS_TOKEN'] cannot be sent in an HTTP Authorization header "
                f"({_header_problem(token)}), so no scraper can ever authenticate with it.",
                hint="Use printable ASCII without surrounding spaces, e.g. the output of "
                "'python -c \"import secrets; print(secrets.token_urlsafe(32))\"'.",
                id="aspects_routing.E072",
            )
        )
    if config.metrics_token is not None and len(config.metrics_token) < MIN_METRICS_TOKEN_LENGTH:
        messages.append(
            checks.Warning(
                f"{SETTING}['METRICS_TOKEN'] is shorter than {MIN_METRICS_TOKEN_LENGTH} characters; "
                "anyone who guesses it can read the metrics endpoint.",
                hint="Use a random token, e.g. the output of "
                "'python -c \"import secrets; print(secrets.token_urlsafe(32))\"'.",
                id="aspects_routing.W071",
            )
        )
    return messages


@checks.register()
def check_event_bus(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """Event-bus transport: what cannot take effect, and what to set (E080-E086, W080, W082, W083, W084)."""
    from aspects_routing.transport.checks import event_bus_checks  # pylint: disable=import-outside-toplevel

    return event_bus_checks(get_config(), settings)


@checks.register(deploy=True)
def check_event_bus_skips(app_configs=None, **kwargs):  # pylint: disable=unused-argument
    """``check --deploy`` only (it reads the bus): consumer groups that skipped or may skip events (W081)."""
    from aspects_routing.transport.checks import skip_risk_checks  # pylint: disable=import-outside-toplevel

    return skip_risk_checks(get_config())
