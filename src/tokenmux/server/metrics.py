"""Prometheus metrics through ``prometheus_client``, counted where a generation is recorded.

The request path only bumps plain counters (dict entries, a bucket index found by bisection); a custom
collector (``metrics_exposition.py``) turns them into metric families when ``/metrics`` is read, and
``prometheus_client`` writes the exposition format. That module, and with it ``prometheus_client`` and what it
imports (``http.server``, ``urllib.request``, ``wsgiref``: about 2.5 MB resident), is imported by the first scrape:
a gateway nobody scrapes never holds it. Each gateway has its own registry, so several in one process (tests,
the demo) do not mix.

    tokenmux_generations_total{model,provider,status}   counter    requests finished
    tokenmux_attempts_total{provider,outcome}            counter    upstream attempts, by outcome or error class
    tokenmux_error_responses_total{status}               counter    error answers sent, by HTTP status
    tokenmux_tokens_total{provider,kind}                 counter    prompt and completion tokens
    tokenmux_cost_usd_total                              counter    cost at catalog prices
    tokenmux_auth_failures_total{reason}                 counter    requests refused for their key
    tokenmux_generation_latency_seconds{provider}        histogram  from the plan to the answer's end
    tokenmux_first_token_latency_seconds{provider}       histogram  upstream first token, streamed answers
    tokenmux_gateway_overhead_seconds                    histogram  a generation's time outside upstream calls
    tokenmux_recorder_records_total{event}               counter    request-log writer: recorded, written, ...
    tokenmux_recorder_pending                            gauge      records waiting for the database
    tokenmux_shared{gauge}                               gauge      with --redis: redis_up, settlements_pending
    tokenmux_redis_failures_total                        counter    with --redis: Redis calls that failed
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Protocol

from tokenmux.store.records import GenerationRecord

LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
FIRST_TOKEN_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)
OVERHEAD_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
# Recorder counters that only grow; the others are levels.
RECORDER_EVENTS = (
    "recorded",
    "written",
    "failed_writes",
    "dropped",
    "rejected",
    "spooled",
    "replayed",
    "journal_failures",  # appends or syncs of the journal that failed: a crash would lose those records
)
CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class RecorderCounters(Protocol):
    def counters(self) -> dict[str, int]: ...


class Histogram:
    """Observations counted into buckets, per label value: one bisection and two additions each."""

    __slots__ = ("bounds", "series")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.series: dict[
            str, tuple[list[int], list[float]]
        ] = {}  # label -> (counts per bucket + inf, [sum])

    def observe(self, value: float, label: str = "") -> None:
        entry = self.series.get(label)
        if entry is None:
            entry = self.series[label] = ([0] * (len(self.bounds) + 1), [0.0])
        entry[0][bisect_left(self.bounds, value)] += 1
        entry[1][0] += value


class Metrics:
    def __init__(self, recorder: RecorderCounters) -> None:
        self.recorder = recorder  # read by the exposition
        self.generations: Counter[tuple[str, str, str]] = Counter()  # (model, provider, status)
        self.attempts: Counter[tuple[str, str]] = Counter()  # (provider, outcome/error class)
        self.errors: Counter[int] = Counter()  # error responses by status
        self.tokens: Counter[tuple[str, str]] = Counter()  # (provider, prompt|completion)
        self.cost_usd = 0.0
        self.latency = Histogram(LATENCY_BUCKETS_S)
        self.first_token = Histogram(FIRST_TOKEN_BUCKETS_S)
        self.overhead = Histogram(OVERHEAD_BUCKETS_S)
        # Authentication failures by reason, kept by whoever refuses keys (``auth_failures.py``).
        self.auth_failures: Mapping[str, int] = {}
        # Request bodies in flight under gateway.body_budget_bytes (``BodyBudget.figures``).
        self.bodies: Callable[[], dict[str, int]] | None = None
        # With --redis: the shared state's health (redis_up, redis_failures, settlements_pending).
        self.shared: Callable[[], dict[str, int]] | None = None

    def observe(self, gen: GenerationRecord) -> None:
        provider = gen.provider or "none"
        self.generations[(gen.model or gen.requested_model, provider, gen.status)] += 1
        upstream_ms = 0.0
        for a in gen.attempts:
            self.attempts[(a.provider, a.error_class or a.outcome)] += 1
            upstream_ms += a.latency_ms or 0.0
        if gen.provider:
            self.tokens[(gen.provider, "prompt")] += gen.prompt_tokens
            self.tokens[(gen.provider, "completion")] += gen.completion_tokens
        self.cost_usd += gen.cost_usd
        self.latency.observe(gen.latency_ms / 1000.0, provider)
        if gen.ttft_ms is not None and gen.streamed:
            self.first_token.observe(gen.ttft_ms / 1000.0, provider)
        self.overhead.observe(max(0.0, gen.latency_ms - upstream_ms) / 1000.0)

    def error(self, status: int) -> None:
        self.errors[status] += 1
