"""
How tracking events leave the LMS: ``ASPECTS_ROUTING["TRANSPORT"]``.

* ``"celery"`` (default): event-routing-backends' own settings, one
  ``eventtracking.tasks.send_event`` task per event, routed by :mod:`aspects_routing.routing`;
* ``"event_bus"``: one openedx-events message per event (:mod:`.event_bus_settings`),
  consumed by ``consume_events`` (:mod:`.consumer`), counted by :mod:`.producer_metrics`.

On both, the INFO lines written for every tracking event are dropped by :mod:`.tracking_logs`.

The sink tasks of platform-plugin-aspects have no event-bus path and stay on Celery.
"""

from aspects_routing.transport.consumer import consumer_command
from aspects_routing.transport.event_bus_settings import TRACKING_EVENT_TYPE, apply_transport, current_state

__all__ = ["TRACKING_EVENT_TYPE", "apply_transport", "consumer_command", "current_state", "start"]


def start() -> None:
    """Startup step: apply the transport, drop per-event log lines; on the event bus, count sends,
    export lag, spot unsafe consumers."""
    from aspects_routing.metrics.event_bus_lag import EventBusLagCollector  # pylint: disable=import-outside-toplevel
    from aspects_routing.metrics.exposition import register_collector  # pylint: disable=import-outside-toplevel
    from aspects_routing.transport import producer_metrics, tracking_logs  # pylint: disable=import-outside-toplevel
    from aspects_routing.transport.consumer import (  # pylint: disable=import-outside-toplevel
        detect_unsafe_start,
        install_graceful_shutdown,
        relax_consumer_read_timeout,
    )

    state = apply_transport()
    tracking_logs.install()
    if state.transport != "event_bus":
        return
    producer_metrics.install()
    register_collector(EventBusLagCollector)
    relax_consumer_read_timeout()
    detect_unsafe_start()
    install_graceful_shutdown()
