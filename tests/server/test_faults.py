"""Faults: Redis frozen, the database unreachable. Requests neither hang nor fail; /ready says what is
down; the stated fallback applies (README "Faults")."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway_support import HELLO, NANO, sim_config


@pytest.fixture
def frozen_port() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog does) and never answers: a hung server."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock.getsockname()[1]
    sock.close()


def test_a_frozen_redis_costs_a_bounded_wait_then_limits_hold_per_replica(
    gateway_factory: Any, sim: Any, frozen_port: int
) -> None:
    config = sim_config(sim.url, redis_timeout_s=0.25)
    config["redis"] = f"redis://127.0.0.1:{frozen_port}/0"
    gw = gateway_factory(config)
    key = gw.new_key("limited", rpm=2)
    client = gw.openai(key)
    started = time.monotonic()
    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert time.monotonic() - started < 5  # a hang guard: one Redis timeout, then the breaker answers at once
    with pytest.raises(openai.RateLimitError):  # this replica's own books still hold the limit
        client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    ready = httpx.get(f"{gw.url}/ready", timeout=10)
    assert ready.status_code == 200
    assert ready.json() | {"records_pending": 0} == {
        "status": "degraded",
        "database": True,
        "redis": False,
        "limits": "shared-unavailable",
        "records_pending": 0,
    }
    metrics = httpx.get(f"{gw.url}/metrics", timeout=10).text
    assert 'tokenmux_shared{gauge="redis_up"} 0' in metrics
    assert 'tokenmux_shared{gauge="settlements_pending"} 2' in metrics  # kept for when Redis is back


def test_unknown_keys_get_503_and_known_keys_keep_working_while_the_database_is_down(
    gateway: Any,
) -> None:
    from tokenmux.store.base import StoreUnavailable

    store = gateway.app.store
    client = gateway.openai()
    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)  # the key is now known
    real = store.find_key

    async def down(digest: str) -> Any:
        raise StoreUnavailable("the database is down")

    store.find_key = down
    try:
        gateway.app.keys._cache = {k: (0.0, v[1]) for k, v in gateway.app.keys._cache.items()}  # all stale
        client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
        r = httpx.post(
            f"{gateway.url}/api/v1/chat/completions",
            json={"model": NANO, "messages": HELLO},
            headers={"Authorization": "Bearer sk-tm-unknown"},
        )
        assert r.status_code == 503 and r.headers["retry-after"]
        assert r.json()["error"]["code"] == "database_unavailable"
    finally:
        store.find_key = real
