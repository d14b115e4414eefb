"""What the request log and the key table store: one generation, its attempts, one API key.

Field names are the column names (``sqlite.py`` derives its SQL from them), so adding a field here needs a
migration that adds the column; ``tests/store/test_store_sqlite.py`` checks the two agree.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

Outcome = str  # "success" | "error" | "cancelled"


@dataclass(slots=True, kw_only=True)
class AttemptRecord:
    """One try of one endpoint within a generation."""

    generation_id: str
    attempt: int  # 1-based, in the order tried
    model: (
        str  # the model id tried ("openai/gpt-4.1-nano"): differs from the request's after a model fallback
    )
    provider: str  # provider slug
    endpoint: str  # "model@provider": the key live figures are kept under
    outcome: Outcome
    # "timeout", "unreachable", "rate_limited", "server_error", "client_error", "malformed",
    # "stream_interrupted"
    error_class: str | None = None
    error_message: str | None = None
    upstream_status: int | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    # Timing. The first token is seen only when the upstream call is streamed: a non-streamed call has no
    # first-token latency or throughput (None), and its generation time is the whole call.
    ttft_ms: float | None = None  # request sent -> first content token
    latency_ms: float = 0.0  # request sent -> last byte
    generation_ms: float | None = None  # first content token (or, not streamed, request sent) -> last byte
    throughput_tps: float | None = None  # completion tokens / seconds after the first token
    streamed: bool = False  # the upstream call was streamed, so its first token and pace were seen
    finish_reason: str | None = None
    started_at: float = 0.0  # unix seconds
    # False when the failure says nothing about the provider's health: the client's own bad request, or a
    # rate limit on the user's own upstream key. Uptime = successes / attempts that count.
    counts_for_uptime: bool = True

    def to_api(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in ATTEMPT_FIELDS}
        out["started_at"] = iso_utc(self.started_at)
        out["observed"] = observed(self.ttft_ms, self.generation_ms, self.throughput_tps)
        return out


@dataclass(slots=True, kw_only=True)
class GenerationRecord:
    """One request as the client saw it, with every attempt made to serve it."""

    id: str  # "gen-..."; the X-Generation-Id header
    key_id: str | None = None
    requested_model: str  # as the client named it, suffix included
    model: str | None = None  # the model that served; None when every attempt failed
    provider: str | None = None  # the provider that served; None when every attempt failed
    created_at: float  # unix seconds
    streamed: bool = False
    finish_reason: str | None = None
    status: Outcome = "success"
    http_status: int = 200
    error_message: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: float = 0.0
    ttft_ms: float | None = None
    latency_ms: float = 0.0
    generation_ms: float | None = None
    throughput_tps: float | None = None
    dropped_params: list[str] = field(default_factory=list)  # unsupported by the serving endpoint, not sent
    attempts: list[AttemptRecord] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        """The body of ``GET /api/v1/generation?id=``."""
        return {
            "id": self.id,
            "model": self.model,
            "requested_model": self.requested_model,
            "provider": self.provider,
            "created_at": iso_utc(self.created_at),
            "streamed": self.streamed,
            "status": self.status,
            "http_status": self.http_status,
            "error": self.error_message,
            "finish_reason": self.finish_reason,
            "tokens_prompt": self.prompt_tokens,
            "tokens_completion": self.completion_tokens,
            "tokens_cached": self.cached_tokens,
            "tokens_cache_write": self.cache_write_tokens,
            "tokens_reasoning": self.reasoning_tokens,
            "usage": self.cost_usd,
            "latency_ms": self.latency_ms,
            "first_token_latency_ms": self.ttft_ms,
            "generation_time_ms": self.generation_ms,
            "throughput_tps": self.throughput_tps,
            "observed": observed(self.ttft_ms, self.generation_ms, self.throughput_tps),
            "dropped_params": list(self.dropped_params),
            "attempts": [a.to_api() for a in self.attempts],
        }


@dataclass(slots=True, kw_only=True)
class KeyRecord:
    """An API key as stored: never the secret itself, only its digest and a recognisable prefix."""

    id: str  # "key_" + 16 hex
    name: str  # unique among keys not revoked
    digest: str  # hex SHA-256 of the secret
    display: str  # first 12 characters of the secret + "…"
    created_at: float
    revoked_at: float | None = None
    is_admin: bool = False
    # Limits (``tokenmux.limits``); None means "no limit".
    credit_usd: float | None = None  # lifetime spend
    rpm: int | None = None  # requests per minute
    tpm: int | None = None  # prompt + completion tokens per minute
    allowed_models: str | None = None  # JSON list of model ids or fnmatch patterns ("openai/*")
    expires_at: float | None = None  # unix seconds
    budget_usd: float | None = None  # spend per budget_period
    budget_period: str | None = None  # "day" | "week" | "month" (UTC; weeks start on Monday)
    concurrency: int | None = None  # requests in flight at once
    allowed_providers: str | None = None  # JSON list of provider slugs
    data_policy: str | None = None  # "zdr" (zero retention only) | "no_training" (never trains on prompts)
    # Opt-in: keep this key's prompts and answers for this many days (None: never stored).
    prompt_retention_days: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(slots=True, kw_only=True)
class ContentRecord:
    """A generation's prompt and answer, kept only for a key that opted in, until its retention ends."""

    id: str  # the generation id
    key_id: str
    created_at: float
    request: str  # JSON: the messages and parameters as the providers were sent them
    response: str  # JSON: the answer's text, tool calls and finish reason


ATTEMPT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AttemptRecord))
GENERATION_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(GenerationRecord))
KEY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(KeyRecord))


# The random part of generation ids, fetched from the operating system's CSPRNG (what ``secrets`` uses)
# for a few hundred ids at a time: one system call serves them all. ``list.pop`` is atomic, so no two
# callers, threads included, ever get the same digits.
_ID_RANDOM_BYTES = 10
_ID_BATCH = 400
_id_digits: list[str] = []
os.register_at_fork(after_in_child=_id_digits.clear)  # a forked child must not reuse its parent's digits


def _random_digits() -> str:
    while True:
        try:
            return _id_digits.pop()
        except IndexError:
            digits = os.urandom(_ID_RANDOM_BYTES * _ID_BATCH).hex()
            width = 2 * _ID_RANDOM_BYTES
            _id_digits.extend([digits[i : i + width] for i in range(0, len(digits), width)])


def new_generation_id(now: float | None = None) -> str:
    """``gen-1732634400-5f0c…``: unix seconds, then 80 random bits.

    Time first so ids sort by creation: new rows land at the end of the primary-key index instead of at
    random places in it, which keeps batched inserts several times faster once the log holds millions
    of rows (SQLite and PostgreSQL alike). The random part keeps ids unguessable.
    """
    return f"gen-{int(time.time() if now is None else now)}-{_random_digits()}"


def observed(
    ttft_ms: float | None, generation_ms: float | None, throughput_tps: float | None
) -> dict[str, bool]:
    """Which timing figures a call measured, beside its total latency (always measured): a non-streamed
    call shows no first token, so neither first-token latency nor throughput (its generation time is
    then the whole call); a call that failed before its first token, none of them."""
    return {
        "first_token_latency": ttft_ms is not None,
        "throughput": throughput_tps is not None,
        "generation_time": generation_ms is not None,
    }


def iso_utc(unix_seconds: float) -> str:
    """``2025-01-31T12:00:00.123Z``: what JSON clients parse without surprises."""
    stamp = datetime.fromtimestamp(unix_seconds, tz=UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
