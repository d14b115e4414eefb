"""The pre-aggregated rows behind every figure, and how a batch of request records becomes their deltas.

Three tables, written by ``Store.write_batch`` in the same transaction as the request log (so they can
never disagree with it, and a retried batch adds nothing twice):

- ``stats_endpoint_buckets``: per endpoint per minute and per hour: attempts, successes, provider-caused
  failures, prompt and cached prompt tokens of the successes (the cache-hit rate), and the distributions
  of first-token latency and throughput;
- ``stats_model_days``: per served model per UTC day: prompt and completion tokens of successful attempts;
- ``stats_key_days``: per API key per UTC day per model: requests, tokens, cost (the activity page).

A batch is aggregated here in memory (``aggregate``), then the store adds each delta row to its stored
row with one upsert. A window is read as one summed row per endpoint (``Store.endpoint_windows``), so a
read costs endpoints x buckets rows, whatever the log holds.

The store writes and reads these rows; ``tokenmux.stats`` turns them into figures. They live here, with
the tables they describe, so the store imports nothing from ``stats``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from tokenmux.store.distribution import TPS_BINS, TTFT_BINS, Distribution, column_names

if TYPE_CHECKING:
    from tokenmux.store.records import GenerationRecord

MINUTE_S = 60
HOUR_S = 3600
DAY_S = 86_400
# Minute rows serve the 30-minute window; a day of them is kept for inspection, older ones are deleted
# as new batches arrive, so the table stays small. Hour and day rows are kept.
MINUTE_ROWS_KEPT_S = DAY_S


def _ttft() -> Distribution:
    return Distribution(TTFT_BINS)


def _tps() -> Distribution:
    return Distribution(TPS_BINS)


@dataclass(slots=True)
class EndpointBucket:
    """One endpoint's attempts in one minute (``span_s`` 60) or hour (3600) starting at ``start_s``."""

    span_s: int
    start_s: int  # unix seconds, a multiple of span_s
    endpoint: str  # "model@provider"
    attempts: int = 0  # every attempt, whatever its outcome
    successes: int = 0
    failures: int = 0  # provider-caused: outcome "error" and counts_for_uptime
    prompt_tokens: int = 0  # of the successes
    cached_tokens: int = 0  # of those, read from the provider's prompt cache
    ttft: Distribution = field(default_factory=_ttft)  # ms, successful streamed attempts with content
    tps: Distribution = field(default_factory=_tps)  # tokens/s, the same attempts

    def merge(self, other: EndpointBucket) -> None:
        self.attempts += other.attempts
        self.successes += other.successes
        self.failures += other.failures
        self.prompt_tokens += other.prompt_tokens
        self.cached_tokens += other.cached_tokens
        self.ttft.merge(other.ttft)
        self.tps.merge(other.tps)

    def row(self) -> tuple[Any, ...]:
        """Values in ``ENDPOINT_BUCKET_COLUMNS`` order."""
        return (
            self.span_s,
            self.start_s,
            self.endpoint,
            self.attempts,
            self.successes,
            self.failures,
            *self.ttft.row(),
            *self.tps.row(),
            self.prompt_tokens,
            self.cached_tokens,
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> EndpointBucket:
        ttft_end = _COUNTS_END + _DISTRIBUTION_WIDTH
        tps_end = ttft_end + _DISTRIBUTION_WIDTH
        return cls(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            row[tps_end],
            row[tps_end + 1],
            Distribution.from_row(TTFT_BINS, row[_COUNTS_END:ttft_end]),
            Distribution.from_row(TPS_BINS, row[ttft_end:tps_end]),
        )


class BucketCounts(NamedTuple):
    """The counts of one endpoint bucket without its distributions: what the hourly uptime bars need."""

    endpoint: str
    start_s: int
    attempts: int
    successes: int
    failures: int


ENDPOINT_BUCKET_KEY = ("span_s", "start_s", "endpoint")
ENDPOINT_BUCKET_COUNTS = ("attempts", "successes", "failures")
# Added later (m005_cache_hits), so last in the table.
ENDPOINT_BUCKET_TOKENS = ("prompt_tokens", "cached_tokens")
ENDPOINT_BUCKET_COLUMNS = (
    *ENDPOINT_BUCKET_KEY,
    *ENDPOINT_BUCKET_COUNTS,
    *column_names("ttft"),
    *column_names("tps"),
    *ENDPOINT_BUCKET_TOKENS,
)
_COUNTS_END = len(ENDPOINT_BUCKET_KEY) + len(ENDPOINT_BUCKET_COUNTS)
_DISTRIBUTION_WIDTH = len(column_names("ttft"))


@dataclass(slots=True)
class ModelDay:
    """Tokens one model processed (successful attempts, any endpoint) in one UTC day."""

    day: str  # "YYYY-MM-DD"
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def row(self) -> tuple[Any, ...]:
        return (self.day, self.model, self.prompt_tokens, self.completion_tokens)


MODEL_DAY_KEY = ("day", "model")
MODEL_DAY_COLUMNS = (*MODEL_DAY_KEY, "prompt_tokens", "completion_tokens")


@dataclass(slots=True)
class KeyDay:
    """One API key's requests for one model in one UTC day. ``model`` is the model that served, or the
    name the client asked for when no attempt succeeded."""

    key_id: str
    day: str
    model: str
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def row(self) -> tuple[Any, ...]:
        return (
            self.key_id,
            self.day,
            self.model,
            self.requests,
            self.prompt_tokens,
            self.completion_tokens,
            self.cost_usd,
        )


KEY_DAY_KEY = ("key_id", "day", "model")
KEY_DAY_COLUMNS = (*KEY_DAY_KEY, "requests", "prompt_tokens", "completion_tokens", "cost_usd")


@dataclass(slots=True)
class BatchDeltas:
    """What one batch of request records adds to the aggregate tables."""

    endpoint_buckets: list[EndpointBucket]  # minute rows, then hour rows
    model_days: list[ModelDay]
    key_days: list[KeyDay]
    # Minute rows older than this may be deleted (None for an empty batch).
    prune_minutes_before: int | None


@functools.lru_cache(maxsize=256)
def _day_name(day_number: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day_number * DAY_S))


def utc_day(unix_seconds: float) -> str:
    """``"2025-01-31"``: the UTC date of a moment."""
    return _day_name(int(unix_seconds // DAY_S))


class _MinuteTally:
    """One endpoint's attempts in one minute of a batch, with raw samples until the batch is summed."""

    __slots__ = (
        "attempts",
        "cached_tokens",
        "completion_tokens",
        "failures",
        "model",
        "prompt_tokens",
        "successes",
        "tps",
        "ttft",
    )

    def __init__(self, model: str) -> None:
        self.model = model
        self.attempts = self.successes = self.failures = 0
        self.prompt_tokens = self.completion_tokens = self.cached_tokens = 0
        self.ttft: list[float] = []
        self.tps: list[float] = []


def aggregate(generations: Iterable[GenerationRecord]) -> BatchDeltas:
    """The bucket deltas of a batch. Each attempt counts in the minute and hour it started in (and its
    tokens in that UTC day); a generation counts for its key in the UTC day it was created in."""
    tallies: dict[tuple[str, int], _MinuteTally] = {}
    key_days: dict[tuple[str, str, str], KeyDay] = {}
    for generation in generations:
        for attempt in generation.attempts:
            slot = (attempt.endpoint, int(attempt.started_at // MINUTE_S) * MINUTE_S)
            tally = tallies.get(slot)
            if tally is None:
                tally = tallies[slot] = _MinuteTally(attempt.model)
            tally.attempts += 1
            if attempt.outcome == "success":
                tally.successes += 1
                tally.prompt_tokens += attempt.prompt_tokens
                tally.completion_tokens += attempt.completion_tokens
                tally.cached_tokens += attempt.cached_tokens
                # First-token latency and throughput only from calls where they were seen: streamed ones.
                # A non-streamed answer arrives whole; records written before that rule (a spooled one,
                # say) carry its total latency as first-token latency, so ``streamed`` decides, not None.
                if attempt.streamed:
                    if attempt.ttft_ms is not None:
                        tally.ttft.append(attempt.ttft_ms)
                    if attempt.generation_ms and attempt.throughput_tps is not None:
                        tally.tps.append(attempt.throughput_tps)
            elif attempt.outcome == "error" and attempt.counts_for_uptime:
                tally.failures += 1

        if generation.key_id is not None:
            model = generation.model or generation.requested_model
            key_slot = (generation.key_id, utc_day(generation.created_at), model)
            key_day = key_days.get(key_slot)
            if key_day is None:
                key_day = key_days[key_slot] = KeyDay(*key_slot)
            key_day.requests += 1
            key_day.prompt_tokens += generation.prompt_tokens
            key_day.completion_tokens += generation.completion_tokens
            key_day.cost_usd += generation.cost_usd

    minutes: list[EndpointBucket] = []
    hours: dict[tuple[str, int], EndpointBucket] = {}
    model_days: dict[tuple[str, str], ModelDay] = {}
    for (endpoint, minute), tally in tallies.items():
        bucket = EndpointBucket(
            MINUTE_S,
            minute,
            endpoint,
            tally.attempts,
            tally.successes,
            tally.failures,
            tally.prompt_tokens,
            tally.cached_tokens,
            Distribution.of(TTFT_BINS, tally.ttft),
            Distribution.of(TPS_BINS, tally.tps),
        )
        minutes.append(bucket)
        hour = minute - minute % HOUR_S
        hourly = hours.get((endpoint, hour))
        if hourly is None:
            hourly = hours[(endpoint, hour)] = EndpointBucket(HOUR_S, hour, endpoint)
        hourly.merge(bucket)
        if tally.successes:
            day_slot = (utc_day(minute), tally.model)
            model_day = model_days.get(day_slot)
            if model_day is None:
                model_day = model_days[day_slot] = ModelDay(*day_slot)
            model_day.prompt_tokens += tally.prompt_tokens
            model_day.completion_tokens += tally.completion_tokens

    newest_minute = max((minute for _, minute in tallies), default=None)
    return BatchDeltas(
        endpoint_buckets=[*minutes, *hours.values()],
        model_days=list(model_days.values()),
        key_days=list(key_days.values()),
        prune_minutes_before=None if newest_minute is None else newest_minute - MINUTE_ROWS_KEPT_S,
    )
