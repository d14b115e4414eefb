"""The bookkeeping of one request while it runs: its attempts as the request log will hold them.

A ``Generation`` starts when the request is admitted and gets its id (the ``X-Generation-Id`` header);
every attempt adds an ``AttemptRecord``, and ``finish`` turns the whole into the ``GenerationRecord`` that
goes to the recorder, exactly once (``recorded``), whatever way the request ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import msgspec

from tokenmux.errors import ProviderRejected, UpstreamError
from tokenmux.routing.health import counts_against_provider
from tokenmux.routing.router import Candidate
from tokenmux.store.records import AttemptRecord, ContentRecord, GenerationRecord
from tokenmux.types import ChatResponse, Usage


class Requested(Protocol):
    """What the bookkeeping reads of a request, a chat (``ChatRequest``) or an embeddings one."""

    @property
    def model(self) -> str: ...

    @property
    def stream(self) -> bool: ...

    def sent(self) -> dict[str, Any]:
        """The request as a key that keeps prompts keeps it."""
        ...


R = TypeVar("R", bound=Requested)


@dataclass(slots=True)
class Served:
    """A finished non-streamed generation, ready to encode."""

    response: ChatResponse
    candidate: Candidate
    usage: Usage
    cost: float


@dataclass(slots=True)
class Generation(Generic[R]):
    """The record of one request being built while it runs."""

    request: R
    id: str
    key_id: str | None
    started_wall: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    attempts: list[AttemptRecord] = field(default_factory=list)
    # Only for a key that opted in to storing prompts (``store.contents``): the answer, as delivered.
    keep_content: bool = False
    answer: Any = None
    recorded: bool = False  # its GenerationRecord went to the recorder
    # The conversation's digest when cache affinity applies to the request (routing/affinity.py): the
    # endpoint that serves it is remembered for the next turn.
    conversation: int | None = None

    def wall_time(self, perf: float) -> float:
        """The wall-clock time of ``perf`` (a ``time.perf_counter()`` reading of this request): one clock
        read fewer than asking for both."""
        return self.started_wall + (perf - self.started)

    def attempt(self, cand: Candidate, started_wall: float) -> AttemptRecord:
        rec = AttemptRecord(
            generation_id=self.id,
            attempt=len(self.attempts) + 1,
            model=cand.model.id,
            provider=cand.endpoint.provider,
            endpoint=cand.endpoint.key,
            outcome="error",
            streamed=self.request.stream,
            started_at=started_wall,
        )
        self.attempts.append(rec)
        return rec

    def finish(
        self,
        *,
        status: str,
        http_status: int,
        served: AttemptRecord | None,
        error: str | None = None,
        dropped: tuple[str, ...] = (),
    ) -> GenerationRecord:
        self.recorded = True
        gen = GenerationRecord(
            id=self.id,
            key_id=self.key_id,
            requested_model=self.request.model,
            created_at=self.started_wall,
            streamed=self.request.stream,
            status=status,
            http_status=http_status,
            error_message=error,
            latency_ms=(time.perf_counter() - self.started) * 1000.0,
            dropped_params=list(dropped),
            attempts=self.attempts,
        )
        if served is not None:
            gen.model = served.model
            gen.provider = served.provider
            gen.finish_reason = served.finish_reason
            gen.ttft_ms = served.ttft_ms
            gen.generation_ms = served.generation_ms
            gen.throughput_tps = served.throughput_tps
        add_up_attempts(gen)
        return gen

    def content(self) -> ContentRecord:
        """What a key that opted in keeps of a generation: the request as routed, and the answer."""
        return ContentRecord(
            id=self.id,
            key_id=self.key_id or "",
            created_at=self.started_wall,
            request=msgspec.json.encode(self.request.sent()).decode(),
            response=msgspec.json.encode(self.answer).decode(),
        )


def add_up_attempts(gen: GenerationRecord) -> None:
    """The generation's usage and cost: every attempt's billed usage adds up (failed attempts usually
    cost nothing, but a stream cut short after its first byte is charged for what it used)."""
    prompt = completion = cached = cache_write = reasoning = 0
    cost = 0.0
    for a in gen.attempts:  # one loop: this runs for every request
        prompt += a.prompt_tokens
        completion += a.completion_tokens
        cached += a.cached_tokens
        cache_write += a.cache_write_tokens
        reasoning += a.reasoning_tokens
        cost += a.cost_usd
    gen.prompt_tokens = prompt
    gen.completion_tokens = completion
    gen.cached_tokens = cached
    gen.cache_write_tokens = cache_write
    gen.reasoning_tokens = reasoning
    gen.cost_usd = cost


def fill_usage(rec: AttemptRecord, usage: Usage, cost: float) -> None:
    rec.prompt_tokens = usage.prompt_tokens
    rec.completion_tokens = usage.completion_tokens
    rec.cached_tokens = usage.cached_tokens
    rec.cache_write_tokens = usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
    rec.reasoning_tokens = usage.reasoning_tokens
    rec.cost_usd = cost


def fail_attempt(rec: AttemptRecord, err: UpstreamError, latency_ms: float | None) -> None:
    """Mark an attempt failed with ``err``; ``latency_ms`` None keeps the latency already measured."""
    rec.outcome = "error"
    rec.error_class = err.error_class
    rec.error_message = err.message[:500]
    rec.upstream_status = err.upstream_status if isinstance(err, ProviderRejected) else None
    rec.counts_for_uptime = counts_against_provider(err)
    if latency_ms is not None:
        rec.latency_ms = latency_ms


def streamed_timing(rec: AttemptRecord, t0: float, t_first: float, t_end: float) -> None:
    """Latency, first-token latency, generation time and throughput of a streamed attempt."""
    rec.latency_ms = (t_end - t0) * 1000.0
    rec.ttft_ms = (t_first - t0) * 1000.0
    gen_s = t_end - t_first
    rec.generation_ms = gen_s * 1000.0
    if gen_s > 0 and rec.completion_tokens > 0:
        rec.throughput_tps = rec.completion_tokens / gen_s


def whole_timing(rec: AttemptRecord, t0: float, t_end: float) -> None:
    """A non-streamed answer arrives whole: its first token and its pace are not seen, so it has no
    first-token latency or throughput; the whole call is its generation time."""
    rec.latency_ms = rec.generation_ms = (t_end - t0) * 1000.0
