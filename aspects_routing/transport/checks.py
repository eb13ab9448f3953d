"""
System checks of the event-bus transport (``aspects_routing.E080``-``E089``,
``W080``-``W089``), registered from :mod:`aspects_routing.checks`.

Each names what cannot take effect and the exact setting that fixes it. They
look at the running process (the tracker built, the receivers connected), so
they also catch a startup step that failed.
"""

from __future__ import annotations

import inspect

from django.core import checks

from aspects_routing.conf import RoutingSettings
from aspects_routing.transport.consumer import claim_threshold
from aspects_routing.transport.event_bus_settings import (
    CURRENT_KEY,
    EVENT_BUS_BACKEND,
    SYNC_ROUTER,
    TRACKING_EVENT_TYPE,
    producer_handler_connected,
    rewire_tracking_backends,
)

_SAFE = (
    "./manage.py lms consume_events -t {topic} -g {group} "
    "--extra '{{\"consumer_name\": \"<unique>\", \"check_backlog\": true, \"claim_msgs_older_than\": {claim}}}'"
)


def _engine_path(obj) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _backend_checks(settings) -> list:
    messages = []
    if rewire_tracking_backends(getattr(settings, "EVENT_TRACKING_BACKENDS", None))[1] == "missing":
        messages.append(
            checks.Error(
                "TRANSPORT is 'event_bus' but EVENT_TRACKING_BACKENDS has no Aspects backend to send over the bus "
                "(neither 'event_transformer' nor the older 'xapi'/'caliper' keys with AsyncRoutingBackend).",
                hint="Install edx-event-routing-backends (it adds EVENT_TRACKING_BACKENDS['event_transformer']), "
                f"or set EVENT_TRACKING_BACKENDS['{CURRENT_KEY}']['ENGINE'] = '{EVENT_BUS_BACKEND}' with nested "
                f"'xapi'/'caliper' backends whose ENGINE is '{SYNC_ROUTER}'.",
                id="aspects_routing.E080",
            )
        )
    try:
        from event_routing_backends.backends import sync_events_router  # noqa: F401  pylint: disable=C0415,W0611
    except ImportError:
        messages.append(
            checks.Error(
                f"{SYNC_ROUTER} cannot be imported: this edx-event-routing-backends release has no event-bus path.",
                hint="Upgrade edx-event-routing-backends to a release with backends/sync_events_router.py, "
                "or set ASPECTS_ROUTING['TRANSPORT'] = 'celery'.",
                id="aspects_routing.E081",
            )
        )
    return messages


def _live_checks(settings) -> list:
    """What the running process really does: the tracker, the toggle, the producer handler."""
    from eventtracking import tracker as tracking  # pylint: disable=import-outside-toplevel

    messages = []
    current = tracking.TRACKERS.get(tracking.DEFAULT_TRACKER_NAME)
    live = getattr(current, "backends", {}).get(CURRENT_KEY) if current is not None else None
    if getattr(settings, "EVENT_TRACKING_ENABLED", False) and live is not None and _engine_path(live) != EVENT_BUS_BACKEND:
        messages.append(
            checks.Error(
                f"The running tracker sends '{CURRENT_KEY}' events with {_engine_path(live)}, not over the event bus "
                "(the aspects-routing startup step did not run or failed: see the log).",
                hint=f"Set EVENT_TRACKING_BACKENDS['{CURRENT_KEY}']['ENGINE'] = '{EVENT_BUS_BACKEND}' (and its "
                f"nested backends' ENGINE = '{SYNC_ROUTER}') in the LMS settings, or fix the startup error.",
                id="aspects_routing.E082",
            )
        )
    if getattr(settings, "SEND_TRACKING_EVENT_EMITTED_SIGNAL", False) is not True:
        messages.append(
            checks.Error(
                "SEND_TRACKING_EVENT_EMITTED_SIGNAL is not True: EventBusRoutingBackend drops every event.",
                hint="Set SEND_TRACKING_EVENT_EMITTED_SIGNAL = True in the LMS settings.",
                id="aspects_routing.E083",
            )
        )
    if not producer_handler_connected():
        messages.append(
            checks.Error(
                "openedx-events' producer handler does not listen to TRACKING_EVENT_EMITTED: tracking events "
                "never reach the event bus.",
                hint="Add 'openedx_events' to INSTALLED_APPS and set EVENT_BUS_PRODUCER_CONFIG"
                f"['{TRACKING_EVENT_TYPE}'] = {{'<topic>': {{'event_key_field': 'tracking_log.name', "
                "'enabled': True}}.",
                id="aspects_routing.E084",
            )
        )
    on_bus = getattr(settings, "EVENT_BUS_TRACKING_LOGS", None)
    fix = (
        "Set EVENT_BUS_TRACKING_LOGS = set(EVENT_TRACKING_BACKENDS_ALLOWED_XAPI_EVENTS + "
        "EVENT_TRACKING_BACKENDS_ALLOWED_CALIPER_EVENTS) after those lists are final."
    )
    if not on_bus:
        messages.append(
            checks.Error(
                "EVENT_BUS_TRACKING_LOGS is empty: EventBusRoutingBackend sends only the events it names.",
                hint=fix,
                id="aspects_routing.E085",
            )
        )
    else:
        allowed = set(getattr(settings, "EVENT_TRACKING_BACKENDS_ALLOWED_XAPI_EVENTS", None) or ()) | set(
            getattr(settings, "EVENT_TRACKING_BACKENDS_ALLOWED_CALIPER_EVENTS", None) or ()
        )
        missing = sorted(allowed - set(on_bus))
        if missing:
            # event-routing-backends computes EVENT_BUS_TRACKING_LOGS in its common settings,
            # before its production settings read the allowed lists from YAML.
            messages.append(
                checks.Warning(
                    f"{len(missing)} event(s) allowed for xAPI/Caliper are not in EVENT_BUS_TRACKING_LOGS, so the "
                    f"event bus drops them (the Celery path sent them): {', '.join(missing[:5])}"
                    + (", ..." if len(missing) > 5 else "") + ".",
                    hint=fix,
                    id="aspects_routing.W083",
                )
            )
    return messages


def _redis_checks(settings) -> list:
    messages = []
    producer = getattr(settings, "EVENT_BUS_PRODUCER", None) or ""
    if "redis" in producer and not getattr(settings, "EVENT_BUS_REDIS_CONNECTION_URL", None):
        messages.append(
            checks.Error(
                "EVENT_BUS_PRODUCER is the Redis producer but EVENT_BUS_REDIS_CONNECTION_URL is not set: "
                "openedx-events falls back to a producer that drops every event.",
                hint="Set EVENT_BUS_REDIS_CONNECTION_URL = 'redis://<host>:6379/0'.",
                id="aspects_routing.E086",
            )
        )
    url = getattr(settings, "EVENT_BUS_REDIS_CONNECTION_URL", None)
    if "redis" in producer and url:
        from aspects_routing.transport.event_bus_settings import (  # pylint: disable=import-outside-toplevel
            BUS_TIMEOUT_QUERY,
            MAX_BUS_TIMEOUT,
            bus_timeouts,
        )

        socket_timeout, connect_timeout = bus_timeouts(url)
        slow = [
            f"{name} {'is not set' if value is None else f'is {value:g} s'}"
            for name, value in (("socket_timeout", socket_timeout), ("socket_connect_timeout", connect_timeout))
            if value is None or value > MAX_BUS_TIMEOUT
        ]
        if slow:
            messages.append(
                checks.Warning(
                    f"EVENT_BUS_REDIS_CONNECTION_URL: {' and '.join(slow)}. edx-event-bus-redis writes each "
                    "tracking event on the request thread: a paused, overloaded or unreachable bus Redis holds "
                    f"every request that emits one for as long (more than {MAX_BUS_TIMEOUT * 1000:g} ms per event).",
                    hint=f"Add ?{BUS_TIMEOUT_QUERY} to EVENT_BUS_REDIS_CONNECTION_URL (each event then costs at most "
                    "that and is counted in aspects_event_bus_send_failures_total; consume_events processes raise "
                    "their own read timeout above EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT).",
                    id="aspects_routing.W084",
                )
            )
    if not getattr(settings, "EVENT_BUS_CONSUMER", None):
        messages.append(
            checks.Warning(
                "EVENT_BUS_CONSUMER is not set: consume_events run with these settings consumes nothing.",
                hint="Set EVENT_BUS_CONSUMER = 'edx_event_bus_redis.RedisEventConsumer' (or the Kafka consumer).",
                id="aspects_routing.W080",
            )
        )
    if "redis" in producer:
        import redis  # pylint: disable=import-outside-toplevel

        socket_timeout = inspect.signature(redis.Redis.__init__).parameters["socket_timeout"].default
        poll = getattr(settings, "EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT", 60)
        if isinstance(socket_timeout, (int, float)) and isinstance(poll, (int, float)) and poll >= socket_timeout:
            messages.append(
                checks.Warning(
                    f"EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT is {poll} s but redis-py {redis.__version__} times out "
                    f"socket reads after {socket_timeout} s: every idle poll of consume_events ends in an error "
                    "(logged, and counted by EVENT_BUS_REDIS_CONSUMER_CONSECUTIVE_ERRORS_LIMIT).",
                    hint=f"Set EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT = {max(1, int(socket_timeout) - 1)}.",
                    id="aspects_routing.W082",
                )
            )
    return messages


def event_bus_checks(config: RoutingSettings, settings) -> list:
    """Every problem of the event-bus transport visible without I/O."""
    if config.transport != "event_bus":
        return []
    return [*_backend_checks(settings), *_live_checks(settings), *_redis_checks(settings)]


def skip_risk_checks(config: RoutingSettings, timeout: float = 2.0) -> list:
    """Deploy check (reads the bus): consumer groups that skipped or may skip events."""
    from aspects_routing.metrics.event_bus_lag import RISK_TEXT, read_event_bus_lag  # pylint: disable=C0415

    if config.transport != "event_bus":
        return []
    lag = read_event_bus_lag(timeout)
    messages = []
    for group in lag.groups:
        if not group.skip_risks:
            continue
        skipped = "" if not group.unsafe_starts else (
            f" {group.skipped if group.skipped is not None else 'An unknown number of'} event(s) were skipped."
        )
        messages.append(
            checks.Warning(
                f"Event-bus group {group.name!r} on {lag.stream!r}: "
                + "; ".join(RISK_TEXT[risk] for risk in group.skip_risks) + "." + skipped,
                hint="Run every consumer as "
                + _SAFE.format(topic=config.event_bus_topic, group=group.name, claim=claim_threshold().idle_ms)
                + " (aspects_routing.transport.consumer_command builds it).",
                id="aspects_routing.W081",
            )
        )
    return messages
