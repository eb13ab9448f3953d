"""
The LMS side of the event-bus benchmarks: one test LMS process emitting Aspects
tracking events through event-tracking's ``Tracker.emit`` on either path.

Imported by the child processes of ``bench_event_bus.py`` (wall clock) and run
as ``python -m benchmarks.tracking_emit`` under callgrind by
``bench_event_bus_cpu.py`` (instructions). Settings: ``tests.settings.tutor_event_bus``.

* ``celery``: a ``DjangoTracker`` built from event-routing-backends' default
  ``event_transformer`` (``AsyncRoutingBackend``: whitelist, then
  ``eventtracking.tasks.send_event.delay`` to the Redis broker);
* ``event_bus``: the default tracker as aspects-routing rewired it
  (``EventBusRoutingBackend``: ``TRACKING_EVENT_EMITTED``, openedx-events' handler,
  edx-event-bus-redis Avro-serializes it and appends it to the stream with XADD).

The aspects-routing hooks of each path are on, as in production (task metrics on
the Celery publish, producer counters on the bus). A third tracker, ``floor``, is
not a product path: its backend (:class:`FloorBackend`) JSON-encodes the event
and appends it to a stream with one XADD through redis-py, the least any path
that writes each event to Redis could cost on top of ``Tracker.emit``.
"""

import functools
import json
import logging
import os
import sys

import django

WHAT_IF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "what_if_upstream.py")
CONTEXT = {
    "user_id": 1, "username": "learner", "course_id": "course-v1:Org+Course+Run", "org_id": "Org",
    "path": "/event", "ip": "10.0.0.1", "agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
    "host": "lms.example.com", "session": "0123456789abcdef0123456789abcdef",
}
DATA = {
    "target_url": "https://lms.example.com/courses/course-v1:Org+Course+Run/courseware/1",
    "current_url": "https://lms.example.com/courses/course-v1:Org+Course+Run/courseware/0",
}
NAME = "edx.ui.lms.link_clicked"
FLOOR_STREAM = "bench-floor"


class FloorBackend:
    """event-tracking backend: one ``json.dumps`` and one ``XADD`` per event (the floor, see above)."""

    def __init__(self, url=None):
        import redis  # pylint: disable=import-outside-toplevel

        self.client = redis.Redis.from_url(url or os.environ["REDIS_URL"])

    def send(self, event):
        """Append the event to the floor stream."""
        self.client.xadd(FLOOR_STREAM, {"event": json.dumps(event, default=str)})


def prepare(level: str, what_if: bool) -> dict:
    """Set Django up, logging at ``level``; return ``{"celery": ..., "event_bus": ..., "floor": ...}`` trackers."""
    django.setup()
    # Open edX logs at INFO. Records go to /dev/null through a formatter like the LMS's: the
    # cheapest destination there is (a real one, stdout or syslog, costs more).
    logging.basicConfig(
        level=getattr(logging, level), stream=open(os.devnull, "w"), force=True,  # pylint: disable=R1732
        format="%(asctime)s %(levelname)s %(process)d [%(name)s] %(filename)s:%(lineno)d - %(message)s",
    )
    if what_if:
        import runpy  # pylint: disable=import-outside-toplevel

        runpy.run_path(WHAT_IF)
    # pylint: disable=import-outside-toplevel
    from django.conf import settings
    from event_routing_backends.utils.settings import event_tracking_backends_config
    from eventtracking import tracker
    from eventtracking.django.django_tracker import DjangoTracker

    settings.BENCH_CELERY_BACKENDS = event_tracking_backends_config(
        settings,
        settings.EVENT_TRACKING_BACKENDS_ALLOWED_XAPI_EVENTS,
        settings.EVENT_TRACKING_BACKENDS_ALLOWED_CALIPER_EVENTS,
    )
    settings.BENCH_FLOOR_BACKENDS = {"floor": {"ENGINE": "benchmarks.tracking_emit.FloorBackend", "OPTIONS": {}}}
    trackers = {
        "celery": DjangoTracker(backends_settings_name="BENCH_CELERY_BACKENDS"),
        "event_bus": tracker.get_tracker(),
        "floor": DjangoTracker(backends_settings_name="BENCH_FLOOR_BACKENDS"),
    }
    assert type(trackers["celery"].backends["event_transformer"]).__name__ == "AsyncRoutingBackend"
    assert type(trackers["event_bus"].backends["event_transformer"]).__name__ == "EventBusRoutingBackend"
    return trackers


def keep_per_event_lines(keep: bool) -> None:
    """``LOG_EACH_TRACKING_EVENT``: aspects-routing drops those INFO lines unless asked to keep them."""
    from aspects_routing.transport import tracking_logs  # pylint: disable=import-outside-toplevel

    (tracking_logs.uninstall if keep else tracking_logs.install)()


def emit(tracker, count: int) -> None:
    """Emit ``count`` events; the loop runs inside ``functools.reduce`` so callgrind can count it alone."""
    with tracker.context("bench", CONTEXT):
        functools.reduce(lambda _acc, _n: tracker.emit(NAME, DATA), range(count), None)


def main(argv):
    """``python -m benchmarks.tracking_emit PATH WARMUP EVENTS keep|drop plain|what-if|no-receiver``."""
    path, warmup, events, lines, variant = argv
    tracker = prepare("INFO", variant == "what-if")[path]
    keep_per_event_lines(lines == "keep")
    if variant == "no-receiver":
        # pylint: disable=import-outside-toplevel
        from openedx_events.analytics.signals import TRACKING_EVENT_EMITTED

        from aspects_routing.transport import producer_metrics

        # To size aspects-routing's own share of the bus path: its counting receiver, disconnected.
        assert TRACKING_EVENT_EMITTED.disconnect(
            producer_metrics.count_tracking_event, dispatch_uid=producer_metrics.DISPATCH_UID
        )
    with tracker.context("bench", CONTEXT):
        for _ in range(int(warmup)):
            tracker.emit(NAME, DATA)
    emit(tracker, int(events))  # the only part callgrind counts (--toggle-collect=functools_reduce)


if __name__ == "__main__":
    main(sys.argv[1:])
