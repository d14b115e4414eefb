"""Refused keys: counted, logged at a bounded rate without the key, and an address that keeps guessing
gets 429 with Retry-After for a while."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from clock_support import Clock
from gateway_support import sim_config
from tokenmux.server.auth_failures import LOG_EVERY_S, AuthFailures, client_address


def fail_from(failures: AuthFailures, address: str, times: int, reason: str = "unknown") -> None:
    token = client_address.set(address)
    try:
        for _ in range(times):
            failures.failed(reason)
    finally:
        client_address.reset(token)


def test_an_address_over_the_limit_is_blocked_for_a_while() -> None:
    clock = Clock()
    failures = AuthFailures(limit=5, block_s=30, clock=clock)
    fail_from(failures, "10.0.0.1", 5)
    assert failures.refusal("10.0.0.1") is None
    fail_from(failures, "10.0.0.1", 1)
    refusal = failures.refusal("10.0.0.1")
    assert refusal is not None and refusal.status == 429
    assert refusal.headers() == [(b"retry-after", b"30")]
    assert failures.refusal("10.0.0.2") is None  # others are not affected
    clock.now += 31
    assert failures.refusal("10.0.0.1") is None and "10.0.0.1" not in failures.blocked


def test_failures_spread_over_more_than_a_minute_do_not_block() -> None:
    clock = Clock()
    failures = AuthFailures(limit=5, clock=clock)
    for _ in range(4):
        fail_from(failures, "10.0.0.1", 3)
        clock.now += 61
    assert not failures.blocked


def test_requests_without_a_key_are_counted_but_never_block() -> None:
    failures = AuthFailures(limit=1)
    fail_from(failures, "10.0.0.1", 10, reason="missing")
    assert not failures.blocked and failures.by_reason["missing"] == 10


def test_a_limit_of_zero_never_blocks() -> None:
    failures = AuthFailures(limit=0)
    fail_from(failures, "10.0.0.1", 1000)
    assert not failures.blocked and failures.by_reason["unknown"] == 1000


def test_the_tracked_addresses_are_bounded() -> None:
    failures = AuthFailures(limit=100)
    for n in range(20_000):
        fail_from(failures, f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", 1)
    assert len(failures._windows) <= 10_000


def test_logging_is_bounded_and_never_names_a_key(caplog: Any) -> None:
    clock = Clock()
    failures = AuthFailures(limit=0, clock=clock)
    caplog.set_level(logging.WARNING, logger="tokenmux.auth")
    fail_from(failures, "10.0.0.1", 500)
    assert len(caplog.records) == 1  # the first, then nothing for LOG_EVERY_S
    clock.now += LOG_EVERY_S
    fail_from(failures, "10.0.0.2", 1)
    assert len(caplog.records) == 2
    assert "500 authentication failures from 2 addresses" in caplog.records[1].getMessage()


def test_a_guessing_client_gets_429_on_every_route_until_the_block_ends(
    gateway_factory: Any, sim: Any
) -> None:
    gw = gateway_factory(sim_config(sim.url, auth_failure_limit=5, auth_block_s=60))
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        for n in range(5):
            r = client.get("/api/v1/key", headers={"Authorization": f"Bearer sk-tm-guess-{n}"})
            assert r.status_code == 401
        assert client.get("/api/v1/key", headers={"Authorization": "Bearer sk-tm-guess-5"}).status_code == 401
        # Over the limit: even a valid key from this address waits, in the route's protocol.
        r = client.get("/api/v1/key", headers={"Authorization": f"Bearer {gw.key}"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert r.json()["error"]["code"] == "too_many_auth_failures"
        r = client.post("/api/anthropic/v1/messages", headers={"x-api-key": gw.key}, json={})
        assert r.status_code == 429 and r.json()["type"] == "error"
        assert client.get("/health").status_code == 200
        assert client.get("/metrics").status_code == 200
    assert gw.app.parts.auth_failures.by_reason["throttled"] == 2


@pytest.mark.parametrize("limit", [0])
def test_blocking_can_be_turned_off_for_a_gateway_behind_a_load_balancer(
    gateway_factory: Any, sim: Any, limit: int
) -> None:
    gw = gateway_factory(sim_config(sim.url, auth_failure_limit=limit))
    with httpx.Client(base_url=gw.url, timeout=10) as client:
        for n in range(40):
            assert client.get("/api/v1/key", headers={"Authorization": f"Bearer x-{n}"}).status_code == 401
        assert client.get("/api/v1/key", headers={"Authorization": f"Bearer {gw.key}"}).status_code == 200
