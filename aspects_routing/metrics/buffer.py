"""
The in-process buffer where every count and observation lands first.

Recording is a dict update under a lock: no I/O, no Django, no allocation
beyond the first sighting of a series. The background flusher
(:mod:`aspects_routing.metrics.flusher`) swaps the contents out with
:meth:`Buffer.drain` and writes them to the store.

The buffer is bounded: it holds at most ``max_series`` distinct
(minute, metric, labels) entries between two flushes. What does not fit is
not stored, only counted in :attr:`Buffer.dropped`, which the flusher
publishes as ``aspects_metrics_dropped_total``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Mapping

from aspects_routing.metrics.buckets import N_BUCKETS, bucket_index

#: Distinct series a process may accumulate between two flushes. A task metric
#: for one (task, queue) uses 7 entries a minute; 10 000 leaves room for
#: hundreds of task/queue pairs and other counters.
DEFAULT_MAX_SERIES = 10_000

Labels = tuple[tuple[str, str], ...]
#: ("c", name, labels) for a counter, ("h", name, labels) for a histogram.
Key = tuple[str, str, Labels]


@dataclass(frozen=True)
class Batch:
    """What one :meth:`Buffer.drain` took out: ``{minute: {key: value}}`` plus the losses so far."""

    minutes: Mapping[int, Mapping[Key, object]] = field(default_factory=dict)
    dropped: int = 0

    @property
    def empty(self) -> bool:
        return not self.minutes and not self.dropped

    @property
    def events(self) -> int:
        """How many increments and observations the batch holds (what is lost if it is not written)."""
        total = 0
        for entries in self.minutes.values():
            for (kind, _name, _labels), value in entries.items():
                total += value if kind == "c" else sum(value[:N_BUCKETS])
        return total


class Buffer:
    """Thread-safe, bounded accumulation of counters and histograms by minute."""

    def __init__(self, max_series: int = DEFAULT_MAX_SERIES):
        self.max_series = max_series
        self._lock = threading.Lock()
        # (minute, kind, name, labels) -> count, or [bucket counts..., sum] for a histogram.
        self._entries: dict[tuple, object] = {}
        self.dropped = 0

    def add(self, minute: int, name: str, labels: Labels, amount: int = 1) -> None:
        """Add ``amount`` to counter ``name{labels}`` in ``minute``."""
        key = (minute, "c", name, labels)
        with self._lock:
            entries = self._entries
            try:
                entries[key] += amount
            except KeyError:
                if len(entries) < self.max_series:
                    entries[key] = amount
                else:
                    self.dropped += amount

    def observe(self, minute: int, name: str, labels: Labels, value: float) -> None:
        """Record ``value`` (seconds) in histogram ``name{labels}`` in ``minute``."""
        key = (minute, "h", name, labels)
        index = bucket_index(value)
        with self._lock:
            entries = self._entries
            histogram = entries.get(key)
            if histogram is None:
                if len(entries) >= self.max_series:
                    self.dropped += 1
                    return
                # N_BUCKETS counts, then the sum of the observed values.
                histogram = entries[key] = [0] * N_BUCKETS + [0.0]
            histogram[index] += 1
            histogram[N_BUCKETS] += value

    def drain(self) -> Batch:
        """Take everything recorded so far (and the loss count) out of the buffer."""
        with self._lock:
            entries, self._entries = self._entries, {}
            dropped, self.dropped = self.dropped, 0
        minutes: dict[int, dict[Key, object]] = {}
        for (minute, kind, name, labels), value in entries.items():
            minutes.setdefault(minute, {})[(kind, name, labels)] = value
        return Batch(minutes=minutes, dropped=dropped)

    def lost(self, amount: int) -> None:
        """Count ``amount`` events that could not be written; they are reported at the next flush."""
        if amount:
            with self._lock:
                self.dropped += amount

    def reset(self) -> None:
        """Forget everything, with a fresh lock (used in a forked child)."""
        self._lock = threading.Lock()
        self._entries = {}
        self.dropped = 0
