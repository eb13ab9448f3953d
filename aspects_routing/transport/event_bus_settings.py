"""
Settings for the event-bus transport (``ASPECTS_ROUTING["TRANSPORT"] = "event_bus"``).

Three settings of other packages decide whether a tracking event leaves the LMS
as a Celery task or as one event-bus message:

* ``EVENT_TRACKING_BACKENDS`` (event-tracking, filled by event-routing-backends):
  the Aspects backend's engine, ``AsyncRoutingBackend`` (Celery) or
  ``EventBusRoutingBackend`` (event bus), and its nested xAPI/Caliper routers;
* ``SEND_TRACKING_EVENT_EMITTED_SIGNAL`` (event-tracking): without it
  ``EventBusRoutingBackend.send`` drops every event;
* ``EVENT_BUS_PRODUCER_CONFIG`` (openedx-events): which signals go to which topic.

:func:`plan_event_bus_settings` computes the new values (pure);
:func:`apply_transport` writes them onto Django's settings and makes the already
built tracker and openedx-events' signal handler follow them. It runs from
:meth:`AspectsRoutingConfig.ready` in every process, because that is the first
moment where both YAML (``ENV_TOKENS``) and Python appended after
``add_plugins()`` (Tutor) are visible. See docs/decisions/0002-event-bus-transport.rst.
"""

from __future__ import annotations

import copy
import logging
import weakref
from dataclasses import dataclass
from typing import Any, Mapping

from aspects_routing.conf import RoutingSettings, get_config

log = logging.getLogger(__name__)

#: The openedx-events signal that carries tracking events over the bus.
TRACKING_EVENT_TYPE = "org.openedx.analytics.tracking.event.emitted.v1"
#: Event key of that signal (the tracking event's name).
TRACKING_EVENT_KEY_FIELD = "tracking_log.name"

EVENT_BUS_BACKEND = "eventtracking.backends.event_bus.EventBusRoutingBackend"
CELERY_BACKEND = "eventtracking.backends.async_routing.AsyncRoutingBackend"
SYNC_ROUTER = "event_routing_backends.backends.sync_events_router.SyncEventsRouter"
#: The routers event-routing-backends has shipped as nested xAPI/Caliper backends.
ERB_ROUTERS = frozenset(
    {
        "event_routing_backends.backends.async_events_router.AsyncEventsRouter",
        "event_routing_backends.backends.events_router.EventsRouter",
        SYNC_ROUTER,
    }
)
#: Top-level key of the Aspects backend in current event-routing-backends releases.
CURRENT_KEY = "event_transformer"
#: Top-level keys of older releases (one Celery backend per format).
LEGACY_KEYS = ("xapi", "caliper")


#: Timeouts (seconds) this package documents for ``EVENT_BUS_REDIS_CONNECTION_URL``
#: (``?socket_timeout=0.05&socket_connect_timeout=0.05``). edx-event-bus-redis sends
#: on the request thread with no timeout of its own; redis-py reads these from the
#: URL, and a client built from a URL does not retry. A paused or unreachable bus
#: then costs each tracking event one timeout and a counted send failure. A healthy
#: XADD takes well under a millisecond (benchmarks/bench_event_bus.py), so 50 ms
#: is far from a false failure.
BUS_SOCKET_TIMEOUT = 0.05
BUS_CONNECT_TIMEOUT = 0.05
#: Above this, a hung bus delays a request by more than 100 ms per event.
MAX_BUS_TIMEOUT = 0.1
BUS_TIMEOUT_QUERY = f"socket_timeout={BUS_SOCKET_TIMEOUT:g}&socket_connect_timeout={BUS_CONNECT_TIMEOUT:g}"
#: consume_events blocks in XREADGROUP for EVENT_BUS_REDIS_CONSUMER_POLL_TIMEOUT: its
#: socket timeout is raised to that plus this margin (it reads the same URL).
CONSUMER_READ_MARGIN = 5.0


def _float_param(query, name: str) -> float | None:
    for key, value in query:
        if key == name:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def bus_timeouts(url: str | None) -> tuple[float | None, float | None]:
    """``(socket_timeout, socket_connect_timeout)`` redis-py takes from ``url`` (None: no timeout)."""
    from aspects_routing.redaction import parse_url  # pylint: disable=import-outside-toplevel

    address = parse_url(url, "EVENT_BUS_REDIS_CONNECTION_URL")
    socket = _float_param(address.query, "socket_timeout")
    connect = _float_param(address.query, "socket_connect_timeout")
    # redis-py: without socket_connect_timeout, connecting uses socket_timeout.
    return socket, connect if connect is not None else socket


def consumer_bus_url(url: str | None, poll_seconds: float) -> str | None:
    """
    ``url`` with a socket timeout long enough for ``consume_events``' blocking reads, or None if it already is.

    The producer's short timeout would end every idle ``XREADGROUP BLOCK`` in a
    TimeoutError; the consumer's reads may block ``poll_seconds``.
    """
    import dataclasses  # pylint: disable=import-outside-toplevel

    from aspects_routing.redaction import parse_url  # pylint: disable=import-outside-toplevel

    socket, _connect = bus_timeouts(url)
    needed = float(poll_seconds) + CONSUMER_READ_MARGIN
    if socket is None or socket >= needed:
        return None
    address = parse_url(url, "EVENT_BUS_REDIS_CONNECTION_URL")
    query = tuple((k, f"{needed:g}" if k == "socket_timeout" else v) for k, v in address.query)
    return dataclasses.replace(address, query=query).url()


def stream_name(topic: str) -> str:
    """The Redis stream / Kafka topic of ``topic``, as the event-bus libraries name it (``EVENT_BUS_TOPIC_PREFIX``)."""
    from django.conf import settings  # pylint: disable=import-outside-toplevel

    prefix = getattr(settings, "EVENT_BUS_TOPIC_PREFIX", None)
    return f"{prefix}-{topic}" if prefix else topic


@dataclass(frozen=True)
class EventBusSettings:
    """New values of the three settings, and what was found while computing them."""

    tracking_backends: Mapping[str, Any]
    producer_config: Mapping[str, Any]
    layout: str  # "current", "legacy" or "missing"
    rewired: tuple[str, ...]  # top-level EVENT_TRACKING_BACKENDS keys now on the event bus


def _engine(node: Any) -> str | None:
    return node.get("ENGINE") if isinstance(node, Mapping) else None


def _rewire_routers(nested: Mapping[str, Any]) -> dict:
    """Nested xAPI/Caliper routers: any event-routing-backends router becomes the sync one."""
    result = {}
    for name, node in nested.items():
        if _engine(node) in ERB_ROUTERS:
            node = {**node, "ENGINE": SYNC_ROUTER}
        result[name] = node
    return result


def _rewire_current(node: Mapping[str, Any]) -> dict:
    options = dict(node.get("OPTIONS") or {})
    options["backends"] = _rewire_routers(options.get("backends") or {})
    options.setdefault("backend_name", CURRENT_KEY)
    return {**node, "ENGINE": EVENT_BUS_BACKEND, "OPTIONS": options}


def _merge_legacy(backends: Mapping[str, Any], keys: list[str]) -> dict:
    """
    One event-bus backend in place of the legacy per-format Celery backends.

    Each ``EventBusRoutingBackend`` emits every event once, and the consumer hands
    each consumed event to every ``EventBusRoutingBackend`` -- so two of them would
    deliver every statement four times. The legacy top-level processors (whitelist,
    transformer) move into the nested router of their format, as in current releases.
    """
    nested = {}
    for key in keys:
        options = backends[key].get("OPTIONS") or {}
        processors = list(options.get("processors") or [])
        for name, router in (options.get("backends") or {}).items():
            router_options = dict((router or {}).get("OPTIONS") or {})
            router_options["processors"] = processors + list(router_options.get("processors") or [])
            router_options.setdefault("backend_name", name)
            nested[name] = {"ENGINE": SYNC_ROUTER, "OPTIONS": router_options}
    return {
        "ENGINE": EVENT_BUS_BACKEND,
        "OPTIONS": {"backend_name": CURRENT_KEY, "processors": [], "backends": nested},
    }


def rewire_tracking_backends(backends: Any) -> tuple[dict, str, tuple[str, ...]]:
    """
    Return ``(new EVENT_TRACKING_BACKENDS, layout, rewired keys)``; the input is not modified.

    Other backends (tracking logs, Segment, ...) are kept as they are.
    """
    backends = copy.deepcopy(dict(backends)) if isinstance(backends, Mapping) else {}
    if _engine(backends.get(CURRENT_KEY)) in (CELERY_BACKEND, EVENT_BUS_BACKEND):
        backends[CURRENT_KEY] = _rewire_current(backends[CURRENT_KEY])
        return backends, "current", (CURRENT_KEY,)
    legacy = [key for key in LEGACY_KEYS if _engine(backends.get(key)) in (CELERY_BACKEND, EVENT_BUS_BACKEND)]
    if legacy:
        merged = _merge_legacy(backends, legacy)
        for key in legacy:
            del backends[key]
        backends[CURRENT_KEY] = merged
        return backends, "legacy", (CURRENT_KEY,)
    return backends, "missing", ()


def merge_producer_config(existing: Any, topic: str) -> dict:
    """``EVENT_BUS_PRODUCER_CONFIG`` plus the tracking-event entry for ``topic``; others untouched."""
    from openedx_events.event_bus import merge_producer_configs  # pylint: disable=import-outside-toplevel

    base = existing if isinstance(existing, Mapping) else {}
    return merge_producer_configs(
        dict(base), {TRACKING_EVENT_TYPE: {topic: {"event_key_field": TRACKING_EVENT_KEY_FIELD, "enabled": True}}}
    )


def plan_event_bus_settings(config: RoutingSettings, django_settings) -> EventBusSettings:
    """What the three settings must become for the event-bus transport (pure)."""
    backends, layout, rewired = rewire_tracking_backends(getattr(django_settings, "EVENT_TRACKING_BACKENDS", None))
    return EventBusSettings(
        tracking_backends=backends,
        producer_config=merge_producer_config(
            getattr(django_settings, "EVENT_BUS_PRODUCER_CONFIG", None), config.event_bus_topic
        ),
        layout=layout,
        rewired=rewired,
    )


@dataclass(frozen=True)
class TransportState:
    """What :func:`apply_transport` did in this process (for checks and logs)."""

    transport: str
    layout: str | None = None
    rewired: tuple[str, ...] = ()
    tracker_rebuilt: bool = False
    producer_handler_connected: bool = False


_state = TransportState(transport="celery")


def current_state() -> TransportState:
    """The result of the last :func:`apply_transport` in this process."""
    return _state


def connect_producer_handler() -> bool:
    """
    Connect openedx-events' producer handler to ``TRACKING_EVENT_EMITTED``.

    openedx-events connects it in its ``ready()`` only for the event types that
    ``EVENT_BUS_PRODUCER_CONFIG`` names at that moment; in edx-platform that app is
    ready before the plugins are. The handler reads the setting at each send, and
    Django ignores a second connection of the same receiver. True if connected now.
    """
    from openedx_events.analytics.signals import TRACKING_EVENT_EMITTED  # pylint: disable=import-outside-toplevel
    from openedx_events.apps import general_signal_handler  # pylint: disable=import-outside-toplevel

    was_connected = producer_handler_connected()
    TRACKING_EVENT_EMITTED.connect(general_signal_handler)
    return not was_connected


def producer_handler_connected() -> bool:
    """True when openedx-events' producer handler listens to ``TRACKING_EVENT_EMITTED``."""
    from openedx_events.analytics.signals import TRACKING_EVENT_EMITTED  # pylint: disable=import-outside-toplevel
    from openedx_events.apps import general_signal_handler  # pylint: disable=import-outside-toplevel

    return any(receiver is general_signal_handler for receiver in _live_receivers(TRACKING_EVENT_EMITTED))


def _live_receivers(signal) -> list:
    """The receivers of a Django signal, weak references dereferenced."""
    receivers = []
    for entry in signal.receivers:
        ref = entry[1]
        receivers.append(ref() if isinstance(ref, weakref.ReferenceType) else ref)
    return receivers


def rebuild_tracker_if_built(rewired: tuple[str, ...]) -> bool:
    """
    Rebuild event-tracking's default tracker if it was built from the old settings.

    ``EventTrackingConfig.ready()`` builds it from ``EVENT_TRACKING_BACKENDS``; in
    edx-platform that app is listed (and ready) before the plugins. If it is not
    built yet, it will be built later from the settings written here.
    """
    from eventtracking import tracker as tracking  # pylint: disable=import-outside-toplevel
    from eventtracking.backends.event_bus import EventBusRoutingBackend  # pylint: disable=import-outside-toplevel
    from eventtracking.django.django_tracker import (  # pylint: disable=import-outside-toplevel
        DjangoTracker,
        override_default_tracker,
    )

    current = tracking.TRACKERS.get(tracking.DEFAULT_TRACKER_NAME)
    if not isinstance(current, DjangoTracker):
        return False
    if all(isinstance(current.backends.get(name), EventBusRoutingBackend) for name in rewired):
        return False
    override_default_tracker()
    return True


def apply_transport(django_settings=None) -> TransportState:
    """
    Make the running process use the configured transport; idempotent.

    ``"celery"`` leaves the platform's settings alone (event-routing-backends'
    default is the Celery path). ``"event_bus"`` writes the three settings, connects
    the producer handler and rebuilds the tracker if it was already built.
    """
    global _state  # pylint: disable=global-statement
    if django_settings is None:
        from django.conf import settings as django_settings  # pylint: disable=import-outside-toplevel
    config = get_config()
    if config.transport != "event_bus":
        _state = TransportState(transport=config.transport)
        return _state
    plan = plan_event_bus_settings(config, django_settings)
    django_settings.EVENT_TRACKING_BACKENDS = plan.tracking_backends
    django_settings.SEND_TRACKING_EVENT_EMITTED_SIGNAL = True
    django_settings.EVENT_BUS_PRODUCER_CONFIG = plan.producer_config
    connected = connect_producer_handler()
    rebuilt = rebuild_tracker_if_built(plan.rewired) if plan.rewired else False
    _state = TransportState(
        transport="event_bus",
        layout=plan.layout,
        rewired=plan.rewired,
        tracker_rebuilt=rebuilt,
        producer_handler_connected=connected,
    )
    log.info(
        "aspects-routing: tracking events go over the event bus (topic %r, backends %s, tracker rebuilt: %s)",
        config.event_bus_topic,
        ", ".join(plan.rewired) or "none found",
        rebuilt,
    )
    return _state
