from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from postgres_support import BACKENDS, StoreDatabase, store_database
from tokenmux.store import AttemptRecord, GenerationRecord, SQLiteStore

GenerationFactory = Callable[..., GenerationRecord]


def generation(
    gid: str, *, attempts: int = 1, created_at: float = 1_732_634_400.25, **fields: object
) -> GenerationRecord:
    """A generation that failed over ``attempts - 1`` times before succeeding, every field set."""
    tries = []
    for n in range(1, attempts + 1):
        last = n == attempts
        provider = "openai" if last else f"fallback{n}"
        tries.append(
            AttemptRecord(
                generation_id=gid,
                attempt=n,
                model="openai/gpt-4.1-nano",
                provider=provider,
                endpoint=f"openai/gpt-4.1-nano@{provider}",
                outcome="success" if last else "error",
                error_class=None if last else "server_error",
                error_message=None if last else f"upstream answered 503 on try {n}",
                upstream_status=200 if last else 503,
                prompt_tokens=1200 if last else 0,
                completion_tokens=350 if last else 0,
                cached_tokens=256 if last else 0,
                cache_write_tokens=64 if last else 0,
                reasoning_tokens=12 if last else 0,
                cost_usd=0.000_174_4 if last else 0.0,
                ttft_ms=612.5 if last else None,
                latency_ms=2100.25 if last else 31.5,
                generation_ms=1487.75 if last else None,
                throughput_tps=235.25 if last else None,
                streamed=True,
                finish_reason="stop" if last else None,
                started_at=created_at + n * 0.01,
                counts_for_uptime=last or n % 2 == 1,
            )
        )
    values: dict[str, object] = {
        "id": gid,
        "key_id": "key_0123456789abcdef",
        "requested_model": "openai/gpt-4.1-nano:nitro",
        "model": "openai/gpt-4.1-nano",
        "provider": "openai",
        "created_at": created_at,
        "streamed": True,
        "finish_reason": "stop",
        "status": "success",
        "http_status": 200,
        "error_message": None,
        "prompt_tokens": 1200,
        "completion_tokens": 350,
        "cached_tokens": 256,
        "cache_write_tokens": 64,
        "reasoning_tokens": 12,
        "cost_usd": 0.000_174_4,
        "ttft_ms": 640.0,
        "latency_ms": 2140.5,
        "generation_ms": 1487.75,
        "throughput_tps": 235.25,
        "dropped_params": ["logit_bias", "top_logprobs"],
        "attempts": tries,
    }
    values.update(fields)
    return GenerationRecord(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_generation() -> GenerationFactory:
    return generation


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "tokenmux.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(db_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreDatabase]:
    """A fresh database on each backend in turn (PostgreSQL skipped when it is not running)."""
    with store_database(request.param, tmp_path) as db:
        yield db
