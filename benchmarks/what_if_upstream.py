"""
What-if for ``bench_event_bus.py``: two changes to openedx-events, patched into that
benchmark's process only, to measure how much of the event bus's LMS-side cost
they would remove. Nothing in aspects-routing applies them; operators run the
released packages. They are proposals for upstream, not part of this plugin.

1. ``OpenEdxPublicSignal._send_event_with_metadata`` builds its INFO line with an
   f-string, so every send pretty-prints the receivers' responses even when INFO
   is off or the line is filtered. Lazy formatting (``log.info("%s", ...)`` behind
   ``log.isEnabledFor``) would skip it; here the formatter returns "" instead.
2. ``serialize_event_data_to_bytes`` rebuilds the Avro schema from the signal on
   every call. Building the serializer and the parsed schema once per signal
   would skip that; here the producer's module gets a cached version that writes
   the same bytes (the benchmark checks every event still reaches the stream).
"""

import functools
import io

import edx_event_bus_redis.internal.producer as redis_producer
import fastavro
import openedx_events.tooling as tooling
from openedx_events.event_bus.avro.serializer import AvroSignalSerializer

tooling.format_responses = lambda *args, **kwargs: ""


@functools.lru_cache(maxsize=None)
def _serializer(signal):
    serializer = AvroSignalSerializer(signal)
    return serializer, fastavro.parse_schema(serializer.schema)


def _serialize_event_data_to_bytes(event_data, signal):
    serializer, schema = _serializer(signal)
    out = io.BytesIO()
    fastavro.schemaless_writer(out, schema, serializer.to_dict(event_data))
    return out.getvalue()


redis_producer.serialize_event_data_to_bytes = _serialize_event_data_to_bytes
