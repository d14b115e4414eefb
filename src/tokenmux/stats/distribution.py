"""A distribution of samples kept as count, sum, min, max and a fixed log-scale histogram.

Every part merges by addition (or by min/max), so a minute's figures add up from batches written by any
number of gateway replicas, and a window's figures add up from its buckets, without keeping a sample.
Min, max and average are exact; a percentile is read from the histogram and is off by less than one
bin's width (a bin spans ~27 % for latency, ~22 % for throughput), usually much less because the estimate
is interpolated within its bin and clamped to the exact min and max.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

BIN_COUNT = 48  # stored as one column per bin (see migrations.m002_stats): changing it needs a migration


class LogBins:
    """``count`` bins: one below ``low``, one at or above ``high``, and between them bins of equal ratio."""

    __slots__ = ("_log_low", "_per_log", "count", "high", "low", "ratio")

    def __init__(self, low: float, high: float, count: int = BIN_COUNT) -> None:
        if not 0 < low < high or count < 3:
            raise ValueError("LogBins needs 0 < low < high and at least 3 bins")
        self.low = low
        self.high = high
        self.count = count
        inner = count - 2
        self.ratio = (high / low) ** (1.0 / inner)
        self._log_low = math.log(low)
        self._per_log = inner / math.log(high / low)

    def index(self, value: float) -> int:
        if value < self.low:
            return 0
        if value >= self.high:
            return self.count - 1
        # min(): rounding at the top edge must not spill into the overflow bin.
        return min(1 + int((math.log(value) - self._log_low) * self._per_log), self.count - 2)

    def bounds(self, index: int) -> tuple[float, float]:
        """The bin's [lower, upper) edges; the outer bins are open-ended (0 and infinity)."""
        if index <= 0:
            return 0.0, self.low
        if index >= self.count - 1:
            return self.high, math.inf
        return self.low * self.ratio ** (index - 1), self.low * self.ratio**index

    def percentile(self, counts: list[int], q: float, smallest: float, largest: float) -> float:
        """The ``q`` quantile (0 < q <= 1, nearest rank) of the samples counted in ``counts``, whose exact
        extremes are ``smallest`` and ``largest``. Interpolates geometrically within the rank's bin."""
        total = sum(counts)
        rank = max(1, math.ceil(q * total))
        seen = 0
        for index, n in enumerate(counts):
            if n and seen + n >= rank:
                lower, upper = self.bounds(index)
                lower, upper = max(lower, smallest), min(upper, largest)
                if lower <= 0 or upper <= lower:
                    return min(max(lower, smallest), largest)
                fraction = (rank - seen - 0.5) / n
                return float(lower * (upper / lower) ** fraction)
            seen += n
        return largest


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

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        if self.min is None or value < self.min:
            self.min = value
        if self.max is None or value > self.max:
            self.max = value
        self.counts[self.scale.index(value)] += 1

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
        return self.scale.percentile(self.counts, q, self.min, self.max)

    def summary(self) -> dict[str, float] | None:
        """``{"min", "max", "avg", "p50", "p90", "p99"}`` rounded to 2 decimals; None without samples."""
        if not self.count or self.min is None or self.max is None:
            return None
        scale, counts, low, high = self.scale, self.counts, self.min, self.max
        return {
            "min": round(low, 2),
            "max": round(high, 2),
            "avg": round(self.total / self.count, 2),
            "p50": round(scale.percentile(counts, 0.50, low, high), 2),
            "p90": round(scale.percentile(counts, 0.90, low, high), 2),
            "p99": round(scale.percentile(counts, 0.99, low, high), 2),
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
