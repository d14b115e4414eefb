"""Request records at chosen moments, and the moment the stats tests take as now (``Clock(NOW)``)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from postgres_support import StoreDatabase
from tokenmux.store import AttemptRecord, GenerationRecord
from tokenmux.store.buckets import ENDPOINT_BUCKET_COLUMNS, EndpointBucket, aggregate

# 2024-12-01 10:45:30 UTC: the current minute is 10:45, the current hour 10:00, today 2024-12-01.
NOW = 1_733_011_200.0 + 10 * 3600 + 45 * 60 + 30
MINUTE = 60.0
HOUR = 3600.0

_ids = itertools.count(1)


def attempt(
    endpoint: str,
    started_at: float,
    *,
    outcome: str = "success",
    ttft_ms: float | None = None,
    tps: float | None = None,
    streamed: bool = True,
    counts_for_uptime: bool = True,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    cached_tokens: int = 0,
    cost_usd: float = 0.0,
    error_class: str | None = None,
) -> AttemptRecord:
    """One attempt, with the timing fields the relay would fill. A non-streamed one shows no first token:
    the relay gives it no ``ttft_ms`` or ``tps`` (passing them makes one as recorded before that rule)."""
    model, _, provider = endpoint.rpartition("@")
    generation_ms = None
    if outcome == "success":
        # Streamed: the time after the first token (any, the throughput is given). Not streamed: the
        # whole call, as the relay records it.
        generation_ms = 1000.0
    return AttemptRecord(
        generation_id="",  # set by generation()
        attempt=1,
        model=model,
        provider=provider,
        endpoint=endpoint,
        outcome=outcome,
        error_class=error_class or (None if outcome == "success" else "server_error"),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cached_tokens=cached_tokens,
        cost_usd=cost_usd,
        ttft_ms=ttft_ms,
        latency_ms=(ttft_ms or 0.0) + (generation_ms or 0.0) if streamed else (generation_ms or 0.0),
        generation_ms=generation_ms,
        throughput_tps=tps,
        streamed=streamed,
        started_at=started_at,
        counts_for_uptime=counts_for_uptime,
    )


def generation(
    *attempts: AttemptRecord,
    key_id: str | None = "key_test",
    requested_model: str | None = None,
    **fields: Any,
) -> GenerationRecord:
    """A generation of ``attempts`` in order, created when the first started, served by the last one
    that succeeded (if any), with that attempt's tokens and cost."""
    gid = f"gen-{next(_ids):08d}"
    for number, a in enumerate(attempts, 1):
        a.generation_id, a.attempt = gid, number
    served = next((a for a in reversed(attempts) if a.outcome == "success"), None)
    values: dict[str, Any] = {
        "id": gid,
        "key_id": key_id,
        "requested_model": requested_model or attempts[0].model,
        "model": served.model if served else None,
        "provider": served.provider if served else None,
        "created_at": attempts[0].started_at,
        "status": "success" if served else "error",
        "http_status": 200 if served else 502,
        "prompt_tokens": served.prompt_tokens if served else 0,
        "completion_tokens": served.completion_tokens if served else 0,
        "cost_usd": served.cost_usd if served else 0.0,
        "attempts": list(attempts),
    }
    values.update(fields)
    return GenerationRecord(**values)


def success(
    endpoint: str, started_at: float, *, key_id: str | None = "key_test", **fields: Any
) -> GenerationRecord:
    """A one-attempt generation that succeeded."""
    return generation(attempt(endpoint, started_at, **fields), key_id=key_id)


def failure(endpoint: str, started_at: float, **fields: Any) -> GenerationRecord:
    """A one-attempt generation whose attempt failed (the provider's fault unless told otherwise)."""
    return generation(attempt(endpoint, started_at, outcome="error", **fields))


async def stored_buckets(db: StoreDatabase, span_s: int) -> dict[tuple[str, int], EndpointBucket]:
    """The endpoint buckets of one span as stored, by (endpoint, start)."""
    sql = (
        f"SELECT {', '.join(ENDPOINT_BUCKET_COLUMNS)} FROM stats_endpoint_buckets "
        "WHERE span_s = ? ORDER BY start_s, endpoint"
    )
    buckets = [EndpointBucket.from_row(row) for row in await db.rows(sql, span_s)]
    return {(b.endpoint, b.start_s): b for b in buckets}


def expected_buckets(
    generations: list[GenerationRecord], span_s: int
) -> dict[tuple[str, int], EndpointBucket]:
    """The endpoint buckets of one span that ``generations`` make, by (endpoint, start)."""
    return {(b.endpoint, b.start_s): b for b in aggregate(generations).endpoint_buckets if b.span_s == span_s}


def assert_same(
    stored: dict[tuple[str, int], EndpointBucket], expected: dict[tuple[str, int], EndpointBucket]
) -> None:
    assert stored.keys() == expected.keys()
    for slot, bucket in expected.items():
        got = stored[slot]
        assert got.ttft.total == pytest.approx(bucket.ttft.total) and got.tps.total == pytest.approx(
            bucket.tps.total
        )
        got.ttft.total, got.tps.total = bucket.ttft.total, bucket.tps.total  # float sums may differ in order
        assert got == bucket, slot
