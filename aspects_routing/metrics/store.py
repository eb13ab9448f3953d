"""
Where flushed metrics live: a shared Redis store, or this process alone.

Layout (``<prefix>`` is ``ASPECTS_ROUTING["METRICS_KEY_PREFIX"]``)::

    <prefix>:metrics:total          hash, cumulative since the store was created
    <prefix>:metrics:m:<minute>     hash per minute (minutes since the epoch),
                                    expires after METRICS_RETENTION_MINUTES

Every hash field is a small JSON array naming one series:

* ``["c", name, {labels}]`` -- a counter (integer value);
* ``["b", name, {labels}, i]`` -- bucket ``i`` of a histogram (not cumulative);
* ``["s", name, {labels}]`` -- the sum of a histogram's observations (float).

Every LMS, CMS and worker process adds into the same keys with ``HINCRBY``, so
any process reading them sees the cluster-wide figures. :class:`MemoryStore`
keeps the same fields in a dict when no Redis is configured.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Iterable, Mapping

from aspects_routing.metrics.buckets import N_BUCKETS
from aspects_routing.metrics.buffer import Batch, Labels
from aspects_routing.metrics.names import DROPPED
from aspects_routing.redaction import parse_url

#: Seconds a store operation may take before it is abandoned.
STORE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Histogram:
    """Per-bucket counts (``len(BOUNDS) + 1``, not cumulative) and the sum of observations."""

    counts: tuple[int, ...]
    sum: float

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class Figures:
    """Counters and histograms decoded from the store, keyed by ``(name, labels)``."""

    counters: Mapping[tuple[str, Labels], int] = field(default_factory=dict)
    histograms: Mapping[tuple[str, Labels], Histogram] = field(default_factory=dict)


def encode(batch_minute: Mapping[tuple, object]) -> dict[str, float]:
    """Hash fields and increments for one minute of a :class:`Batch`."""
    fields: dict[str, float] = {}
    for (kind, name, labels), value in batch_minute.items():
        label_dict = dict(labels)
        # Counts are ints and sums floats: the Redis store picks HINCRBY or HINCRBYFLOAT by type.
        if kind == "c":
            fields[json.dumps(["c", name, label_dict], sort_keys=True)] = int(value)
            continue
        for index in range(N_BUCKETS):
            if value[index]:
                fields[json.dumps(["b", name, label_dict, index], sort_keys=True)] = int(value[index])
        fields[json.dumps(["s", name, label_dict], sort_keys=True)] = float(value[N_BUCKETS])
    return fields


def merge_fields(into: dict[str, float], fields: Mapping[str, float]) -> dict[str, float]:
    """Add ``fields`` into ``into`` (the in-memory equivalent of HINCRBY)."""
    for key, value in fields.items():
        into[key] = into.get(key, 0) + value
    return into


def decode(fields: Mapping) -> Figures:
    """Turn raw hash fields (bytes or str) into :class:`Figures`; unreadable fields are skipped."""
    counters: dict[tuple[str, Labels], int] = {}
    buckets: dict[tuple[str, Labels], list[int]] = {}
    sums: dict[tuple[str, Labels], float] = {}
    for raw_key, raw_value in fields.items():
        try:
            key = json.loads(raw_key)
            kind, name, label_dict = key[0], key[1], key[2]
            labels = tuple(sorted((str(k), str(v)) for k, v in label_dict.items()))
            value = float(raw_value)
        except (ValueError, TypeError, IndexError, AttributeError):
            continue
        series = (name, labels)
        if kind == "c":
            counters[series] = counters.get(series, 0) + int(value)
        elif kind == "b" and len(key) == 4 and isinstance(key[3], int) and 0 <= key[3] < N_BUCKETS:
            buckets.setdefault(series, [0] * N_BUCKETS)[key[3]] += int(value)
        elif kind == "s":
            sums[series] = sums.get(series, 0.0) + value
    histograms = {
        series: Histogram(counts=tuple(buckets.get(series, [0] * N_BUCKETS)), sum=sums.get(series, 0.0))
        for series in set(buckets) | set(sums)
    }
    return Figures(counters=counters, histograms=histograms)


def redact_url(url: str) -> str:
    """
    ``url`` without credentials, for logs, reports and metrics: the user-info
    part becomes ``***@`` and secret query values (``?password=``) ``***``
    (:attr:`aspects_routing.redaction.Address.display`).
    """
    return parse_url(url, "ASPECTS_ROUTING['METRICS_REDIS_URL']").display


class MemoryStore:
    """The store when no Redis is configured: this process's own figures."""

    def __init__(self):
        self._lock = threading.Lock()
        self._total: dict[str, float] = {}
        self._minutes: dict[int, dict[str, float]] = {}
        self.description = "in-process"

    def write(self, batch: Batch, now_minute: int, retention_minutes: int, batch_id: str | None = None) -> None:
        """Add ``batch`` (its losses go into ``now_minute``); ``batch_id`` is not needed in memory."""
        with self._lock:
            for minute, fields in _fields_by_minute(batch, now_minute).items():
                merge_fields(self._total, fields)
                merge_fields(self._minutes.setdefault(minute, {}), fields)
            if self._minutes:
                oldest = now_minute - retention_minutes
                for minute in [m for m in self._minutes if m <= oldest]:
                    del self._minutes[minute]

    def totals(self) -> Figures:
        with self._lock:
            return decode(dict(self._total))

    def minutes(self, minutes: Iterable[int]) -> dict[int, Figures]:
        with self._lock:
            return {m: decode(dict(self._minutes[m])) for m in minutes if m in self._minutes}

    def clear(self) -> None:
        with self._lock:
            self._total.clear()
            self._minutes.clear()


def _fields_by_minute(batch: Batch, now_minute: int) -> dict[int, dict[str, float]]:
    """Encoded fields of ``batch`` by minute; its loss count is a counter in ``now_minute``."""
    by_minute = {minute: encode(entries) for minute, entries in batch.minutes.items()}
    if batch.dropped:
        fields = by_minute.setdefault(now_minute, {})
        key = json.dumps(["c", DROPPED, {}], sort_keys=True)
        fields[key] = fields.get(key, 0) + int(batch.dropped)
    return by_minute


class RedisStore:
    """The shared store in Redis; every operation gives up after :data:`STORE_TIMEOUT`."""

    def __init__(self, url: str, prefix: str, timeout: float = STORE_TIMEOUT):
        import redis  # pylint: disable=import-outside-toplevel
        from redis.backoff import NoBackoff  # pylint: disable=import-outside-toplevel
        from redis.retry import Retry  # pylint: disable=import-outside-toplevel

        self.url = url
        address = parse_url(url, "ASPECTS_ROUTING['METRICS_REDIS_URL']")
        self.description = address.display
        self.prefix = prefix
        # No retries: a down or slow store must cost one short timeout, not a backoff loop.
        # address.url() re-encodes the password, so a '#' or '/' in it reaches Redis as typed.
        self.client = redis.Redis.from_url(
            address.url(),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )

    @property
    def total_key(self) -> str:
        return f"{self.prefix}:metrics:total"

    def minute_key(self, minute: int) -> str:
        return f"{self.prefix}:metrics:m:{minute}"

    def batch_key(self, batch_id: str) -> str:
        return f"{self.prefix}:metrics:batch:{batch_id}"

    def write(self, batch: Batch, now_minute: int, retention_minutes: int, batch_id: str | None = None) -> None:
        """
        Add ``batch`` into the shared hashes in one round trip; raises on any Redis error.

        With ``batch_id`` the write is one Lua script that applies the batch only if
        its marker key can be created (``SET NX``), atomically: after an error
        (a timeout may hide a write that lands later) :meth:`settle` tells for sure
        whether it was applied, and makes sure it never will be if it was not.
        """
        ttl = retention_minutes * 60 + 120
        ops = []
        for minute, fields in _fields_by_minute(batch, now_minute).items():
            for key in (self.total_key, self.minute_key(minute)):
                ops.extend(["f" if isinstance(v, float) else "i", key, name, repr(v)] for name, v in fields.items())
            ops.append(["e", self.minute_key(minute), "", str(ttl)])
        if batch_id is None:
            pipe = self.client.pipeline(transaction=False)
            for kind, key, name, value in ops:
                if kind == "e":
                    pipe.expire(key, int(value))
                elif kind == "f":
                    pipe.hincrbyfloat(key, name, float(value))
                else:
                    pipe.hincrby(key, name, int(value))
            pipe.execute()
            return
        self.client.eval(_WRITE_ONCE, 1, self.batch_key(batch_id), MARKER_SECONDS, json.dumps(ops))

    def settle(self, batch_id: str) -> bool:
        """
        True if the batch written as ``batch_id`` was applied; if it was not, it never will be.

        ``SET marker NX`` succeeds only when the batch's script has not run; the
        marker then stops that script should it still arrive.
        """
        return not self.client.set(self.batch_key(batch_id), "dropped", nx=True, ex=MARKER_SECONDS)

    def totals(self) -> Figures:
        return decode(self.client.hgetall(self.total_key))

    def minutes(self, minutes: Iterable[int]) -> dict[int, Figures]:
        minutes = list(minutes)
        pipe = self.client.pipeline(transaction=False)
        for minute in minutes:
            pipe.hgetall(self.minute_key(minute))
        return {m: decode(raw) for m, raw in zip(minutes, pipe.execute()) if raw}


#: How long a batch's marker (applied, or settled as dropped) is kept: far longer
#: than a write can stay in flight.
MARKER_SECONDS = 3600

# KEYS[1]: the batch marker. ARGV[1]: its TTL. ARGV[2]: JSON [[kind, key, field, value], ...]
# with kind "i" (HINCRBY), "f" (HINCRBYFLOAT) or "e" (EXPIRE key value).
_WRITE_ONCE = """
if not redis.call('SET', KEYS[1], 'applied', 'NX', 'EX', tonumber(ARGV[1])) then return 0 end
for _, op in ipairs(cjson.decode(ARGV[2])) do
  if op[1] == 'i' then redis.call('HINCRBY', op[2], op[3], op[4])
  elseif op[1] == 'f' then redis.call('HINCRBYFLOAT', op[2], op[3], op[4])
  else redis.call('EXPIRE', op[2], tonumber(op[4])) end
end
return 1
"""
