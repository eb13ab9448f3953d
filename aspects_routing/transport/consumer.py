"""
The event-bus consumer: the one command this package documents and generates,
and the detection of consumers started the unsafe way.

openedx-events' ``consume_events`` builds edx-event-bus-redis's consumer from
``--extra``. Unless ``check_backlog`` (or ``last_read_msg_id``) is given, that
consumer runs ``XGROUP SETID <stream> <group> $`` at start: the group jumps to the
stream's end and every event produced while no consumer was running is skipped,
without an error. :func:`consumer_command` always passes ``check_backlog``.

A ``consume_events`` process loads the LMS settings and this plugin, so
:func:`detect_unsafe_start` (a startup step) sees its own command line: when it is
about to start without ``check_backlog`` on the Aspects topic, it reads the
group's lag *before* the consumer moves it -- that is the number of events the
start will skip -- logs an error with the safe command and records the start in
Redis, where :func:`aspects_routing.metrics.event_bus.read_event_bus_lag` reports it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass
from typing import Sequence

from django.core.management.base import CommandError

from aspects_routing.conf import get_config
from aspects_routing.metrics import count

log = logging.getLogger(__name__)

#: How the LMS's manage.py is called in the images Aspects documents (Tutor).
DEFAULT_MANAGE = ("./manage.py", "lms")
#: Redis list (under METRICS_KEY_PREFIX) of recorded unsafe consumer starts; newest first.
UNSAFE_STARTS_KEY = "event_bus:unsafe_starts"
UNSAFE_STARTS_KEPT = 100
#: Counter of consume_events starts without check_backlog.
UNSAFE_STARTS = "aspects_event_bus_unsafe_consumer_starts_total"


def consumer_extra(consumer_name: str, claim_idle_ms: int | None = None) -> dict:
    """The ``--extra`` options of a safe consumer."""
    if not isinstance(consumer_name, str) or not consumer_name.strip():
        raise ValueError("consumer_name must be a non-empty string, unique per consumer process (e.g. the pod name)")
    extra = {"consumer_name": consumer_name, "check_backlog": True}
    if claim_idle_ms is not None:
        if not isinstance(claim_idle_ms, int) or isinstance(claim_idle_ms, bool) or claim_idle_ms <= 0:
            raise ValueError("claim_idle_ms must be a positive whole number of milliseconds")
        extra["claim_msgs_older_than"] = claim_idle_ms
    return extra


def consumer_command(
    topic: str | None = None,
    group: str | None = None,
    consumer_name: str = "<pod-name>",
    *,
    manage: Sequence[str] = DEFAULT_MANAGE,
    claim_idle_ms: int | None = None,
) -> list[str]:
    """
    The argv of a safe ``consume_events`` for the Aspects topic.

    ``topic`` and ``group`` default to ``EVENT_BUS_TOPIC`` and
    ``EVENT_BUS_CONSUMER_GROUP``. ``consumer_name`` must be unique per running
    consumer. The default ``<pod-name>`` is a placeholder for people to replace:
    Kubernetes expands ``$(VAR)`` in ``command``/``args`` only for variables declared
    in the container's ``env`` (the config generator declares ``POD_NAME`` from the
    downward API and passes ``$(POD_NAME)``), and a shell would run ``$(HOSTNAME)``
    as a command. ``claim_idle_ms`` adds
    ``claim_msgs_older_than``, so a new consumer takes over the messages a dead one
    had read but not acknowledged.
    """
    config = get_config()
    extra = consumer_extra(consumer_name, claim_idle_ms)
    return [
        *manage,
        "consume_events",
        "-t",
        topic or config.event_bus_topic,
        "-g",
        group or config.event_bus_consumer_group,
        "--extra",
        json.dumps(extra, separators=(",", ":")),
    ]


@dataclass(frozen=True)
class ConsumeEventsArgs:
    """The options of a ``consume_events`` command line."""

    topic: str
    group: str
    extra: dict

    @property
    def safe(self) -> bool:
        """False when the consumer will move its group to the stream's end at start."""
        return self.extra.get("check_backlog") is True or bool(self.extra.get("last_read_msg_id"))


def parse_consume_events_argv(argv: Sequence[str]) -> ConsumeEventsArgs | None:
    """Options of ``consume_events`` in ``argv`` (a full command line), or None if it is not one."""
    argv = list(argv)
    if "consume_events" not in argv:
        return None
    rest = argv[argv.index("consume_events") + 1 :]
    from openedx_events.management.commands.consume_events import Command  # pylint: disable=import-outside-toplevel

    parser = Command().create_parser("manage.py", "consume_events")
    try:
        options, _unknown = parser.parse_known_args(rest)
        extra = json.loads(options.extra or "{}")
    except (SystemExit, ValueError, CommandError):
        return None  # not a runnable consume_events command line (the command will say why)
    if not isinstance(extra, dict):
        return None
    return ConsumeEventsArgs(topic=options.topic[0], group=options.group_id[0], extra=extra)


def _group_lag(client, stream: str, group: str) -> int | None:
    for info in client.xinfo_groups(stream):
        if _text(info.get("name")) == group:
            lag = info.get("lag")
            return int(lag) if lag is not None else None
    return None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def detect_unsafe_start(argv: Sequence[str] | None = None, timeout: float = 2.0) -> dict | None:
    """
    Startup step of ``consume_events`` processes: record a start without ``check_backlog``.

    Returns the recorded start (``{"group", "consumer", "topic", "started_at",
    "skipped"}``), or None when this process is not an unsafe consumer of the
    Aspects topic. ``skipped`` is the group's lag read before the consumer moves
    the group (None if it could not be read).
    """
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    args = parse_consume_events_argv(sys.argv if argv is None else argv)
    config = get_config()
    if args is None or args.safe or args.topic != config.event_bus_topic:
        return None
    start = {
        "group": args.group,
        "consumer": str(args.extra.get("consumer_name", "")),
        "topic": args.topic,
        "started_at": time.time(),
        "skipped": None,
    }
    safe = " ".join(consumer_command(args.topic, args.group, start["consumer"] or "<unique name>"))
    url = getattr(settings, "EVENT_BUS_REDIS_CONNECTION_URL", None)
    if url:
        import redis  # pylint: disable=import-outside-toplevel

        from aspects_routing.metrics.event_bus import stream_name  # pylint: disable=import-outside-toplevel

        client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            try:
                start["skipped"] = _group_lag(client, stream_name(args.topic), args.group)
            except redis.ResponseError:
                start["skipped"] = None  # no stream yet
            key = f"{config.metrics_key_prefix}:{UNSAFE_STARTS_KEY}"
            client.lpush(key, json.dumps(start))
            client.ltrim(key, 0, UNSAFE_STARTS_KEPT - 1)
        except redis.RedisError as exc:
            log.warning("Could not record the unsafe consumer start in Redis: %s", type(exc).__name__)
        finally:
            client.close()
    count(UNSAFE_STARTS, {"group": args.group})
    log.error(
        "consume_events started without check_backlog on topic %r, group %r: the consumer moves the group to "
        "the end of the stream and skips %s event(s) produced while no consumer ran. Start it with: %s",
        args.topic,
        args.group,
        "an unknown number of" if start["skipped"] is None else start["skipped"],
        safe,
    )
    return start
