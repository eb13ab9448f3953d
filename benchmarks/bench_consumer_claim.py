"""
Event-bus hand-over benchmark (issue 12): what ``claim_msgs_older_than`` costs the
consumer, and what the documented bus URL timeouts cost the LMS.

One test LMS process (``tests.settings.tutor_event_bus``), one private Redis, the
real packages; rounds alternate between the variants so that all see the same
machine load, and medians are compared within this run.

1. Consumer (edx-event-bus-redis' ``RedisEventConsumer`` loop, its receivers
   replaced by a counter, so only the bus side is timed: the transform and the
   POST to Ralph, ~100 ms an event, come on top of every variant alike):

   * ``plain``: ``check_backlog`` only, EVENTS new entries (``XREADGROUP``);
   * ``claim``: the generated arguments (``check_backlog`` + ``claim_msgs_older_than``),
     EVENTS new entries: the steady state of a consumer that claims;
   * ``takeover``: EVENTS entries left pending by a consumer that is gone, taken
     over by a consumer started with ``claim_msgs_older_than`` (``XAUTOCLAIM`` +
     ``XPENDING`` + ``XRANGE`` per entry). The threshold is 1 ms here (the entries
     are old enough at once); its value does not change the per-entry work.

2. Producer: ``Tracker.emit`` of an Aspects event to a healthy bus, the bus URL
   with the documented ``?socket_timeout=0.05&socket_connect_timeout=0.05`` vs
   without (the producer is rebuilt between rounds: openedx-events caches it),
   and how many sends did not reach the stream (false failures of the timeout
   on a healthy but loaded machine).

Run: PYTHONPATH=. python benchmarks/bench_consumer_claim.py  (a few minutes on a loaded 2-core machine;
starts a private redis-server unless REDIS_URL is set, and flushes that database).
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tests.redis_server  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

REDIS_URL = os.environ["REDIS_URL"]
os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings.tutor_event_bus"
os.environ["ASPECTS_TEST_EVENT_BUS_URL"] = REDIS_URL
EVENTS = 300
ROUNDS = 5
EMITS = 300
TOPIC = "analytics"
GROUP = "bench-claim"


def setup():
    import django  # pylint: disable=import-outside-toplevel

    django.setup()
    logging_off()


def logging_off():
    import logging  # pylint: disable=import-outside-toplevel

    logging.disable(logging.WARNING)  # the library's per-message INFO audit lines are not what is measured


def produce(n: int) -> None:
    """``n`` real tracking-event messages on the stream (the real producer, outside the timed part)."""
    from eventtracking import tracker  # pylint: disable=import-outside-toplevel

    with tracker.get_tracker().context("bench", {"user_id": 1, "username": "learner"}):
        for i in range(n):
            tracker.emit("edx.ui.lms.link_clicked", {"target_url": f"http://example.com/{i}"})


def consume(n: int, name: str, claim_ms: int | None) -> float:
    """Seconds the real consume loop takes to go through ``n`` entries."""
    from edx_event_bus_redis.internal.consumer import RedisEventConsumer  # pylint: disable=C0415

    consumer = RedisEventConsumer(TOPIC, GROUP, name, check_backlog=True, claim_msgs_older_than=claim_ms)
    seen = [0]

    def counted(_msg):
        seen[0] += 1
        if seen[0] == n:
            consumer._shut_down()  # pylint: disable=protected-access

    consumer.emit_signals_from_message = counted
    started = time.perf_counter()
    consumer.consume_indefinitely()
    elapsed = time.perf_counter() - started
    assert seen[0] == n, (name, seen[0], n)
    return elapsed


def reset(client, stream: str) -> None:
    client.delete(stream)


def leave_pending(client, stream: str, n: int) -> None:
    """``n`` entries delivered to a consumer that then disappears."""
    client.xgroup_create(stream, GROUP, id="0", mkstream=True)
    delivered = 0
    while delivered < n:
        got = client.xreadgroup(GROUP, "gone", {stream: ">"}, count=min(500, n - delivered))
        delivered += len(got[0][1])


def consumer_rounds(client, stream: str) -> dict:
    times = {"plain": [], "claim": [], "takeover": []}
    for round_ in range(ROUNDS):
        for variant in ("plain", "claim", "takeover") if round_ % 2 == 0 else ("takeover", "claim", "plain"):
            reset(client, stream)
            produce(EVENTS)
            if variant == "takeover":
                leave_pending(client, stream, EVENTS)
                claim = 1
            else:
                from aspects_routing.transport.consumer import claim_threshold  # pylint: disable=C0415

                claim = claim_threshold().idle_ms if variant == "claim" else None
            times[variant].append(consume(EVENTS, f"{variant}-{round_}", claim))
            if variant == "takeover":
                assert not client.xpending_range(stream, GROUP, "-", "+", 1, consumername="gone")
    return times


def emit_rounds(client, stream: str) -> tuple[dict, dict]:
    from django.conf import settings  # pylint: disable=import-outside-toplevel
    from openedx_events.event_bus import get_producer  # pylint: disable=import-outside-toplevel

    from aspects_routing.transport.event_bus_settings import BUS_TIMEOUT_QUERY  # pylint: disable=C0415

    urls = {"no timeouts": REDIS_URL, "timeouts": f"{REDIS_URL}?{BUS_TIMEOUT_QUERY}"}
    times = {name: [] for name in urls}
    lost = {name: 0 for name in urls}  # healthy bus: a send that timed out anyway would be a false failure
    for round_ in range(ROUNDS):
        for name in urls if round_ % 2 == 0 else reversed(list(urls)):
            settings.EVENT_BUS_REDIS_CONNECTION_URL = urls[name]
            get_producer.cache_clear()
            produce(50)  # warm: connection, schema
            before = client.xinfo_stream(stream)["entries-added"]
            started = time.perf_counter()
            produce(EMITS)
            times[name].append((time.perf_counter() - started) / EMITS)
            lost[name] += EMITS - (client.xinfo_stream(stream)["entries-added"] - before)
    return times, lost


def main():
    import redis  # pylint: disable=import-outside-toplevel

    setup()
    from aspects_routing.transport.event_bus_settings import stream_name  # pylint: disable=C0415

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    stream = stream_name(TOPIC)
    consumer = {k: statistics.median(v) for k, v in consumer_rounds(client, stream).items()}
    rate = {k: EVENTS / v for k, v in consumer.items()}
    emit_times, lost = emit_rounds(client, stream)
    emit = {k: statistics.median(v) for k, v in emit_times.items()}
    result = {
        "events_per_round": EVENTS,
        "rounds": ROUNDS,
        "consumer_entries_per_second": {k: round(v) for k, v in rate.items()},
        "consumer_us_per_entry": {k: round(v / EVENTS * 1e6, 1) for k, v in consumer.items()},
        "claim_vs_plain": round(rate["claim"] / rate["plain"], 3),
        "takeover_vs_plain": round(rate["takeover"] / rate["plain"], 3),
        "takeover_extra_us_per_entry": round((consumer["takeover"] - consumer["plain"]) / EVENTS * 1e6, 1),
        "emit_us_per_event": {k: round(v * 1e6, 1) for k, v in emit.items()},
        "emit_timeouts_vs_none": round(emit["timeouts"] / emit["no timeouts"], 3),
        "emits_per_variant": ROUNDS * EMITS,
        "emits_not_on_the_stream": lost,
        "load_average": os.getloadavg()[0],
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
