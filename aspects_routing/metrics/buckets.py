"""
Pure helpers for time buckets and histogram buckets (no I/O, no Django).

* :data:`BOUNDS` -- upper bounds, in seconds, of the queue-wait and run-time
  histograms: Prometheus-style, from 5 ms to 30 min, then ``+Inf``.
* :func:`bucket_index` -- which bucket an observation falls in.
* :func:`quantile` -- a percentile interpolated from bucket counts, the way
  Prometheus' ``histogram_quantile`` does.
* :func:`minute_of` -- the per-minute bucket an instant belongs to.
"""

from __future__ import annotations

import bisect
import math
from typing import Sequence

#: Upper bounds (seconds, inclusive) of the finite histogram buckets. One more
#: bucket, ``+Inf``, follows them; so a histogram has ``len(BOUNDS) + 1`` counts.
BOUNDS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1200.0,
    1800.0,
)

#: Number of counts in a histogram: one per finite bound plus ``+Inf``.
N_BUCKETS = len(BOUNDS) + 1


def bucket_index(value: float, bounds: Sequence[float] = BOUNDS) -> int:
    """
    Index of the bucket for ``value``: the first bound ``>= value``.

    Prometheus buckets are ``le`` (less than or equal), so a value equal to a
    bound belongs to that bound's bucket. ``len(bounds)`` is the ``+Inf`` bucket.
    Negative values (clock skew between hosts) count in the first bucket.
    """
    return bisect.bisect_left(bounds, value)


def minute_of(timestamp: float) -> int:
    """The per-minute bucket (minutes since the epoch) of a Unix timestamp."""
    return int(timestamp // 60)


def cumulative(counts: Sequence[int]) -> list[int]:
    """Running totals of per-bucket counts (Prometheus exposes ``le`` buckets cumulatively)."""
    total = 0
    out = []
    for count in counts:
        total += count
        out.append(total)
    return out


def quantile(q: float, counts: Sequence[int], bounds: Sequence[float] = BOUNDS) -> float | None:
    """
    The ``q``-quantile (0 < q < 1) estimated from per-bucket ``counts``.

    ``counts`` are *not* cumulative and have one more entry than ``bounds``
    (the ``+Inf`` bucket). Within the bucket that holds the rank, the value is
    interpolated linearly between the bucket's lower and upper bound (the first
    bucket starts at 0). A rank in the ``+Inf`` bucket returns the highest
    finite bound, as Prometheus does. ``None`` when there are no observations.
    """
    if not 0 < q < 1:
        raise ValueError(f"quantile must be between 0 and 1 (exclusive), got {q!r}")
    if len(counts) != len(bounds) + 1:
        raise ValueError(f"expected {len(bounds) + 1} bucket counts, got {len(counts)}")
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    below = 0
    for index, count in enumerate(counts):
        if count and below + count >= rank:
            if index == len(bounds):
                return float(bounds[-1])
            lower = 0.0 if index == 0 else float(bounds[index - 1])
            upper = float(bounds[index])
            return lower + (upper - lower) * (rank - below) / count
        below += count
    return float(bounds[-1])  # pragma: no cover - rank <= total always lands above


def window_minutes(now: float, minutes: int) -> range:
    """The per-minute buckets a window of ``minutes`` ending at ``now`` covers (current minute included)."""
    if minutes < 1:
        raise ValueError(f"a window is at least 1 minute, got {minutes!r}")
    current = minute_of(now)
    return range(current - minutes + 1, current + 1)


def window_seconds(now: float, minutes: int) -> float:
    """
    Seconds covered by :func:`window_minutes`: the whole earlier minutes plus the
    elapsed part of the current one (at least one second, to keep rates finite).
    """
    elapsed = now - minute_of(now) * 60
    return max(1.0, (minutes - 1) * 60 + elapsed)


def is_finite_number(value) -> bool:
    """True for an int/float that is not NaN or infinite (and not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
