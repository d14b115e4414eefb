"""A frozen Redis: requests neither hang nor fail, /ready and /metrics say what is down, and the stated
fallback applies (README "Replicas and faults"). Database outages are in test_database_outage.py."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway_support import HELLO, NANO, scrape, sim_config


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
    metrics = scrape(gw.url)
    assert metrics[("tokenmux_shared", (("gauge", "redis_up"),))] == 0
    # Kept for when Redis is back: the two settlements, and the release of each admission whose Redis call
    # timed out (one, unless another call met the frozen server first and the breaker sent the admissions
    # to the local books straight away; more, when a slow machine let the breaker's window run out).
    assert metrics[("tokenmux_shared", (("gauge", "settlements_pending"),))] >= 2
    assert metrics[("tokenmux_redis_failures_total", ())] >= 1
