"""A distribution of samples kept as count, sum, min, max and a fixed log-scale histogram.

Every part merges by addition (or by min/max), so a minute's figures add up from batches written by any
number of gateway replicas, and a window's figures add up from its buckets, without keeping a sample.
Min, max and average are exact; a percentile is read from the histogram and is off by less than one
bin's width (a bin spans ~27 % for latency, ~22 % for throughput), usually much less because the estimate
is interpolated within its bin and clamped to the exact min and max.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

BIN_COUNT = 48  # stored as one column per bin (see migrations.m002_stats): changing it needs a migration


class LogBins:
    """``count`` bins: one below ``low``, one at or above ``high``, and between them bins of equal ratio."""

    __slots__ = ("count", "edges", "high", "low", "ratio")

    def __init__(self, low: float, high: float, count: int = BIN_COUNT) -> None:
        if not 0 < low < high or count < 3:
            raise ValueError("LogBins needs 0 < low < high and at least 3 bins")
        self.low = low
        self.high = high
        self.count = count
        inner = count - 2
        self.ratio = (high / low) ** (1.0 / inner)
        # Bin i holds edges[i-1] <= value < edges[i]; a binary search over them is faster than a log.
        self.edges = [low * self.ratio**i for i in range(inner)] + [high]

    def index(self, value: float) -> int:
        return bisect_right(self.edges, value)

    def bounds(self, index: int) -> tuple[float, float]:
        """The bin's [lower, upper) edges; the outer bins are open-ended (0 and infinity)."""
        edges = self.edges
        lower = edges[index - 1] if index > 0 else 0.0
        upper = edges[index] if index < len(edges) else math.inf
        return lower, upper

    def percentiles(
        self, counts: list[int], quantiles: Sequence[float], smallest: float, largest: float
    ) -> list[float]:
        """The ``quantiles`` (ascending, each 0 < q <= 1, nearest rank) of the samples counted in
        ``counts``, whose exact extremes are ``smallest`` and ``largest``. Each is interpolated
        geometrically within its rank's bin, then kept within the extremes. One pass over the bins."""
        total = sum(counts)
        ranks = [max(1, math.ceil(q * total)) for q in quantiles]
        found: list[float] = []
        seen = 0
        for index, n in enumerate(counts):
            while n and len(found) < len(ranks) and seen + n >= ranks[len(found)]:
                lower, upper = self.bounds(index)
                lower, upper = max(lower, smallest), min(upper, largest)
                if lower <= 0 or upper <= lower:
                    found.append(min(max(lower, smallest), largest))
                else:
                    fraction = (ranks[len(found)] - seen - 0.5) / n
                    found.append(lower * (upper / lower) ** fraction)
            seen += n
        return found + [largest] * (len(ranks) - len(found))


# First-token latency in ms: 10 ms to 10 minutes. Throughput in tokens/s: 0.5 to 5,000.
TTFT_BINS = LogBins(10.0, 600_000.0)
TPS_BINS = LogBins(0.5, 5_000.0)


@dataclass(slots=True)
class Distribution:
    """Samples of one measure (first-token latency or throughput) in one bucket or window."""

    scale: LogBins
    count: int = 0
    total: float = 0.0
    min: float | None = None
    max: float | None = None
    counts: list[int] = field(default_factory=lambda: [0] * BIN_COUNT)

    @classmethod
    def of(cls, scale: LogBins, values: list[float]) -> Distribution:
        """The distribution of ``values``."""
        counts = [0] * scale.count
        edges = scale.edges
        for value in values:
            counts[bisect_right(edges, value)] += 1
        if not values:
            return cls(scale, counts=counts)
        return cls(scale, len(values), math.fsum(values), min(values), max(values), counts)

    def merge(self, other: Distribution) -> None:
        if not other.count:
            return
        self.count += other.count
        self.total += other.total
        if self.min is None or (other.min is not None and other.min < self.min):
            self.min = other.min
        if self.max is None or (other.max is not None and other.max > self.max):
            self.max = other.max
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]

    @property
    def avg(self) -> float | None:
        return self.total / self.count if self.count else None

    def percentile(self, q: float) -> float | None:
        if not self.count or self.min is None or self.max is None:
            return None
        return self.scale.percentiles(self.counts, (q,), self.min, self.max)[0]

    def summary(self) -> dict[str, float] | None:
        """``{"min", "max", "avg", "p50", "p90", "p99"}`` rounded to 2 decimals, and ``samples``: how many
        calls the figures rest on. None without samples."""
        if not self.count or self.min is None or self.max is None:
            return None
        p50, p90, p99 = self.scale.percentiles(self.counts, (0.50, 0.90, 0.99), self.min, self.max)
        return {
            "min": round(self.min, 2),
            "max": round(self.max, 2),
            "avg": round(self.total / self.count, 2),
            "p50": round(p50, 2),
            "p90": round(p90, 2),
            "p99": round(p99, 2),
            "samples": self.count,
        }

    # -- as stored: count, sum, min, max, then one column per bin ----------------------------------------

    def row(self) -> tuple[Any, ...]:
        return (self.count, self.total, self.min, self.max, *self.counts)

    @classmethod
    def from_row(cls, scale: LogBins, values: tuple[Any, ...]) -> Distribution:
        count, total, low, high, *counts = values
        return cls(scale, count, total, low, high, counts)


def column_names(prefix: str) -> tuple[str, ...]:
    """The columns one distribution is stored in: ``ttft_count, ttft_sum, ttft_min, ttft_max, ttft_h00…``."""
    bins = tuple(f"{prefix}_h{i:02d}" for i in range(BIN_COUNT))
    return (f"{prefix}_count", f"{prefix}_sum", f"{prefix}_min", f"{prefix}_max", *bins)
