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
Redis, where :func:`aspects_routing.metrics.event_bus_lag.read_event_bus_lag` reports it.

Handing work over (edx-event-bus-redis 1.1.2, read from its source)
------------------------------------------------------------------
The consumer acknowledges an entry (``XACK``, in a ``finally``) only after its
receivers ran, so a consumer that stops while it holds an entry leaves it
*pending* on its own name. Only two things ever deliver it again:

* a consumer restarted under the *same* name reads its own pending entries first;
* ``claim_msgs_older_than`` (milliseconds): at start, before reading its own
  pending entries, the consumer runs ``XAUTOCLAIM <stream> <group> <self>
  <threshold> 0-0 COUNT 1`` and keeps doing so, one entry per loop, for as long
  as it has pending entries; once it has none, it stops claiming for the rest of
  its life. So an entry left by a consumer that is gone is claimed by the next
  consumer that *starts* after the entry has been idle for the threshold.

:func:`consumer_command` always passes both ``check_backlog`` and
``claim_msgs_older_than``, with :func:`claim_threshold` derived from the measured
mean processing time of one event. A claimed entry may already have reached the
LRS (the holder died between the POST and the ``XACK``): it is sent again, which
is harmless because Ralph and ClickHouse (``ReplacingMergeTree`` on
``event_id``) deduplicate by statement id.

SIGTERM (every rollout and KEDA scale-in): ``consume_events`` installs no handler,
so by default the process dies at once and the entry in hand stays pending until
a later start claims it. Raising an exception while an entry is processed would
be worse: the ``finally`` acknowledges the entry whether or not it was
delivered, so it would be lost. :func:`install_graceful_shutdown` (a startup
step of ``consume_events`` processes on the Aspects topic) therefore does
neither: a SIGTERM while an entry is in hand lets the loop finish it, ``XACK``
it and exit (the loop's own ``_shut_down_loop`` flag); a SIGTERM while the
consumer waits for new entries (``XREADGROUP BLOCK``) exits at once, holding
nothing. Redis streams have no way to hand an entry back to the group
("release"): finishing it is the only clean option.
"""

from __future__ import annotations

import json
import logging
import math
import signal
import sys
import threading
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

#: Mean seconds to process one event when nothing was measured: the transform plus one POST to Ralph.
ASSUMED_PROCESSING_SECONDS = 0.1
#: ``claim_msgs_older_than`` is never below this: under it, a consumer that starts
#: while a live one is in the middle of a normal POST would take that entry over.
CLAIM_FLOOR_MS = 2_000
#: ... and at least this many times the mean processing time, so that only entries
#: held far longer than a normal event takes are claimed from a live consumer.
CLAIM_PROCESSING_FACTOR = 20


@dataclass(frozen=True)
class ClaimThreshold:
    """The ``claim_msgs_older_than`` of the generated consumers, and where it comes from."""

    idle_ms: int
    mean_processing_seconds: float
    source: str  # "measured: ...", "assumed: ..."

    @property
    def explanation(self) -> str:
        return (
            f"claim_msgs_older_than = max({CLAIM_FLOOR_MS} ms, {CLAIM_PROCESSING_FACTOR} x "
            f"{self.mean_processing_seconds:g} s mean processing per event, {self.source}) = {self.idle_ms} ms"
        )


def claim_threshold(mean_processing_seconds: float | None = None, source: str | None = None) -> ClaimThreshold:
    """
    The idle time (ms) after which a starting consumer takes over an entry another consumer holds (pure).

    ``mean_processing_seconds`` is the measured mean time one event takes
    (transform + POST); without it, :data:`ASSUMED_PROCESSING_SECONDS`.
    """
    if mean_processing_seconds is None or not math.isfinite(mean_processing_seconds) or mean_processing_seconds < 0:
        mean_processing_seconds = ASSUMED_PROCESSING_SECONDS
        source = "assumed: the transform plus one POST to Ralph"
    idle_ms = max(CLAIM_FLOOR_MS, math.ceil(CLAIM_PROCESSING_FACTOR * mean_processing_seconds * 1000))
    return ClaimThreshold(idle_ms, mean_processing_seconds, source or "measured")


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
    as a command. ``claim_idle_ms`` is
    ``claim_msgs_older_than`` (default: :func:`claim_threshold` with the assumed
    processing time), so a new consumer takes over the entries a stopped one had
    read but not acknowledged.
    """
    config = get_config()
    extra = consumer_extra(consumer_name, claim_threshold().idle_ms if claim_idle_ms is None else claim_idle_ms)
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

    @property
    def claims(self) -> bool:
        """True when the consumer takes over entries left pending by consumers that are gone."""
        return self.extra.get("claim_msgs_older_than") is not None


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
    if args is None or args.topic != config.event_bus_topic:
        return None
    if not args.claims:
        log.warning(
            "consume_events started without claim_msgs_older_than on topic %r, group %r: entries held by "
            "consumers that stopped are never taken over. Start it with: %s",
            args.topic,
            args.group,
            " ".join(consumer_command(args.topic, args.group, str(args.extra.get("consumer_name") or "<unique name>"))),
        )
    if args.safe:
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

        from aspects_routing.transport.event_bus_settings import (  # pylint: disable=import-outside-toplevel
            stream_name,
        )

        from aspects_routing.redaction import parse_url  # pylint: disable=import-outside-toplevel

        client = None
        try:
            # Re-encoded so a '#' or '/' in the password reaches Redis as typed; an unusable URL raises
            # UnusableURL (a ValueError naming the setting, never the password).
            client = redis.Redis.from_url(
                parse_url(url, "EVENT_BUS_REDIS_CONNECTION_URL").url(),
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
            )
            try:
                start["skipped"] = _group_lag(client, stream_name(args.topic), args.group)
            except redis.ResponseError:
                start["skipped"] = None  # no stream yet
            key = f"{config.metrics_key_prefix}:{UNSAFE_STARTS_KEY}"
            client.lpush(key, json.dumps(start))
            client.ltrim(key, 0, UNSAFE_STARTS_KEPT - 1)
        except (redis.RedisError, ValueError) as exc:
            log.warning("Could not record the unsafe consumer start in Redis: %s", type(exc).__name__)
        finally:
            if client is not None:
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


def _consumer_loop_frame(frame):
    """The frame of edx-event-bus-redis' consume loop on the stack of ``frame``, if any."""
    try:
        from edx_event_bus_redis.internal.consumer import (  # pylint: disable=import-outside-toplevel
            RedisEventConsumer,
        )
    except ImportError:
        return None
    code = RedisEventConsumer._consume_indefinitely.__code__  # pylint: disable=protected-access
    while frame is not None:
        if frame.f_code is code:
            return frame
        frame = frame.f_back
    return None


def finish_then_exit(signum, frame) -> None:
    """
    SIGTERM handler of ``consume_events``: finish the entry in hand, or exit now if none.

    Reads the consume loop's locals (``redis_raw_msg``, ``self``) from the stack:
    with an entry in hand it sets the loop's ``_shut_down_loop``, so the loop
    acknowledges that entry and stops before reading another; otherwise it raises
    ``SystemExit``, which no ``except Exception`` in the loop catches, so nothing
    is acknowledged. If the loop is not found (another version of the package, or
    the consumer is not running yet) it exits too: as without the handler.
    """
    loop = _consumer_loop_frame(frame)
    if loop is not None:
        local = loop.f_locals
        entry, consumer = local.get("redis_raw_msg"), local.get("self")
        if entry and consumer is not None:
            consumer._shut_down_loop = True  # pylint: disable=protected-access
            first = entry[0] if isinstance(entry, list) else entry
            log.warning("SIGTERM: finishing stream entry %s, then exiting", _text(first[0]))
            return
    log.warning("SIGTERM: no stream entry in hand, exiting")
    raise SystemExit(128 + signum)


def install_graceful_shutdown(argv: Sequence[str] | None = None) -> bool:
    """
    Startup step of ``consume_events`` processes on the Aspects topic: SIGTERM finishes the entry in hand.

    True if the handler was installed (only in the main thread of such a process).
    """
    args = parse_consume_events_argv(sys.argv if argv is None else argv)
    if args is None or args.topic != get_config().event_bus_topic:
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGTERM, finish_then_exit)
    return True


def relax_consumer_read_timeout() -> bool:
    """
    Startup step of ``consume_events`` processes: a bus URL with the producer's short
    socket timeout (:data:`~aspects_routing.transport.event_bus_settings.BUS_SOCKET_TIMEOUT`)
    gets one longer than ``EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT`` in this process only.
    True if the setting was changed.
    """
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    from aspects_routing.transport.event_bus_settings import (  # pylint: disable=import-outside-toplevel
        consumer_bus_url,
    )

    if parse_consume_events_argv(sys.argv) is None:
        return False
    poll = getattr(settings, "EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT", 60)
    url = consumer_bus_url(getattr(settings, "EVENT_BUS_REDIS_CONNECTION_URL", None), poll)
    if url is None:
        return False
    settings.EVENT_BUS_REDIS_CONNECTION_URL = url
    return True
