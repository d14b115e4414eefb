from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenmux.store.distribution import BIN_COUNT, TPS_BINS, TTFT_BINS, Distribution, LogBins, column_names


def true_percentile(samples: list[float], q: float) -> float:
    """Nearest rank: the smallest sample with at least q of all samples at or below it."""
    ordered = sorted(samples)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def within_one_bin(estimate: float, true: float, scale: LogBins) -> bool:
    return abs(math.log(estimate / true)) <= math.log(scale.ratio) * (1 + 1e-9)


def test_bins_cover_everything_in_order() -> None:
    scale = LogBins(10.0, 600_000.0, 48)
    assert scale.index(0.0) == 0 and scale.index(9.99) == 0
    assert scale.index(10.0) == 1
    assert scale.index(600_000.0) == 47 and scale.index(1e12) == 47
    assert scale.bounds(0) == (0.0, 10.0) and scale.bounds(47) == (600_000.0, math.inf)
    for i in range(1, 47):
        lower, upper = scale.bounds(i)
        assert upper / lower == pytest.approx(scale.ratio)
        assert scale.index(lower) == i and scale.index(upper * (1 - 1e-12)) == i
        assert scale.bounds(i + 1)[0] == upper  # no gaps, no overlaps
    # ~27 % wide bins for latency, ~22 % for throughput
    assert TTFT_BINS.ratio == pytest.approx(1.27, abs=0.01)
    assert TPS_BINS.ratio == pytest.approx(1.22, abs=0.01)
    with pytest.raises(ValueError):
        LogBins(0.0, 1.0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(min_value=10.0, max_value=599_999.0), min_size=1, max_size=300),
    st.sampled_from([0.5, 0.9, 0.99, 0.01, 1.0]),
)
def test_a_percentile_is_within_one_bin_of_the_true_value(samples: list[float], q: float) -> None:
    estimate = Distribution.of(TTFT_BINS, samples).percentile(q)
    assert estimate is not None
    assert within_one_bin(estimate, true_percentile(samples, q), TTFT_BINS)
    assert min(samples) <= estimate <= max(samples)


def test_percentiles_of_a_realistic_latency_spread_are_close() -> None:
    rng = random.Random(5)
    samples = [rng.lognormvariate(6.3, 0.5) for _ in range(5000)]  # ~550 ms, long tail
    summary = Distribution.of(TTFT_BINS, samples).summary()
    assert summary is not None
    for name, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99)):
        true = true_percentile(samples, q)
        # Interpolating within the bin does much better than a bin's width on smooth data.
        assert abs(summary[name] / true - 1) < 0.05, (name, summary[name], true)
    assert summary["min"] == round(min(samples), 2) and summary["max"] == round(max(samples), 2)
    assert summary["avg"] == round(sum(samples) / len(samples), 2)


def test_one_value_is_every_figure() -> None:
    assert Distribution.of(TPS_BINS, [87.5]).summary() == {
        "min": 87.5,
        "max": 87.5,
        "avg": 87.5,
        "p50": 87.5,
        "p90": 87.5,
        "p99": 87.5,
        "samples": 1,
    }


def test_values_outside_the_bins_are_still_exact_at_the_ends() -> None:
    dist = Distribution.of(TPS_BINS, [0.1, 0.2, 9_000.0])
    summary = dist.summary()
    assert summary is not None
    assert (summary["min"], summary["max"]) == (0.1, 9_000.0)
    assert dist.counts[0] == 2 and dist.counts[-1] == 1
    assert 0.1 <= summary["p50"] <= 0.5  # in the underflow bin, kept within the samples


def test_merging_equals_counting_everything_at_once() -> None:
    rng = random.Random(9)
    parts = [[rng.uniform(1, 400) for _ in range(rng.randrange(0, 50))] for _ in range(12)]
    merged = Distribution(TPS_BINS)
    for part in parts:
        merged.merge(Distribution.of(TPS_BINS, part))
    everything = Distribution.of(TPS_BINS, [v for part in parts for v in part])
    assert merged.counts == everything.counts
    assert (merged.count, merged.min, merged.max) == (everything.count, everything.min, everything.max)
    assert merged.total == pytest.approx(everything.total)


def test_empty_distribution_has_no_figures() -> None:
    empty = Distribution.of(TTFT_BINS, [])
    assert empty.summary() is None and empty.percentile(0.5) is None and empty.avg is None
    assert empty.row() == (0, 0.0, None, None, *([0] * BIN_COUNT))


def test_a_distribution_survives_its_row() -> None:
    dist = Distribution.of(TTFT_BINS, [12.0, 480.5, 480.5, 75_000.0])
    row = dist.row()
    assert len(row) == len(column_names("ttft")) == 4 + BIN_COUNT
    assert Distribution.from_row(TTFT_BINS, row) == dist
