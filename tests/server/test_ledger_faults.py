"""The shared ledger through Redis and database faults, on the machine's real PostgreSQL and Redis: two
gateways (replicas) under load while Redis restarts empty end with a key's usage equal to the request
log's sum, and no mix of database and Redis faults answers 500."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

import redis_support
from fault_proxy import FaultProxy
from gateway_support import HELLO, NANO, make_key, sim_config
from postgres_support import fresh_schema, run_apart
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer


def log_sum(database: str, key_id: str) -> tuple[float, int]:
    """(cost, generations) of the key in the request log."""

    async def read() -> tuple[float, int]:
        base, _, query = database.partition("?")
        conn = await asyncpg.connect(base, server_settings={"search_path": query.split("search_path=")[1]})
        try:
            row = await conn.fetchrow(
                "SELECT COALESCE(SUM(cost_usd), 0), COUNT(*) FROM generations WHERE key_id = $1", key_id
            )
        finally:
            await conn.close()
        return float(row[0]), int(row[1])

    return run_apart(read)


@contextlib.contextmanager
def replicas(config: dict[str, Any], database: str, count: int) -> Iterator[list[BackgroundServer]]:
    servers = [
        BackgroundServer(build_gateway(config, database_url=database, env={}), graceful_timeout_s=2)
        for _ in range(count)
    ]
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def standing(url: str, key: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/api/v1/key", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def settled(url: str) -> bool:
    ready = httpx.get(f"{url}/ready", timeout=10).json()
    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    return ready["records_pending"] == 0 and 'tokenmux_shared{gauge="settlements_pending"} 0.0' in metrics


def test_usage_equals_the_log_after_redis_restarts_empty_under_load(sim: Any, redis_url: str) -> None:
    config = sim_config(sim.url, redis_lease_s=2.0)
    config["redis"] = redis_url
    sim.profile("openai", ttft_ms=10)
    with fresh_schema() as database, replicas(config, database, 2) as (a, b):
        key = make_key(database, "exact", credit=1000)
        key_id = standing(a.url, key)["id"]
        statuses: list[int] = []
        stop = threading.Event()

        def load(url: str) -> None:
            with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
                while not stop.is_set():
                    body = {"model": NANO, "messages": HELLO, "max_tokens": 20}
                    statuses.append(client.post("/api/v1/chat/completions", json=body).status_code)

        threads = [threading.Thread(target=load, args=(url,)) for url in (a.url, b.url, a.url, b.url)]
        for t in threads:
            t.start()
        for _ in range(3):  # Redis restarts empty three times with requests in flight
            time.sleep(0.7)
            redis_support.flush()
        time.sleep(0.7)
        stop.set()
        for t in threads:
            t.join()
        assert statuses and set(statuses) == {200}
        deadline = time.monotonic() + 20
        while not (settled(a.url) and settled(b.url)):
            assert time.monotonic() < deadline, "records or settlements still pending"
            time.sleep(0.1)
        time.sleep(1.5)  # every replica's heartbeat (0.5 s) has checked Redis's epoch since
        cost, count = log_sum(database, key_id)
        assert count == len(statuses)
        for url in (a.url, b.url):
            figures = standing(url, key)
            assert figures["figures"] == "shared"
            # Exact to the nano-dollar each charge is rounded to.
            assert abs(figures["usage"] - cost) <= count * 1e-9, (figures["usage"], cost)


@pytest.fixture
def faulty(sim: Any, redis_url: str) -> Iterator[tuple[str, BackgroundServer, FaultProxy, FaultProxy]]:
    """(database URL, a gateway reaching PostgreSQL and Redis through proxies, the two proxies)."""
    with (
        fresh_schema() as database,
        FaultProxy("127.0.0.1", 5432) as pg,
        FaultProxy("127.0.0.1", 6379) as redis,
    ):
        config = sim_config(sim.url, redis_timeout_s=0.25)
        config["redis"] = redis.proxied_url(redis_url)
        through = database.replace("127.0.0.1:5432", f"127.0.0.1:{pg.url_port}")
        app = build_gateway(config, database_url=through, env={})
        # Do not wait the default 10 s for a database that is not coming.
        app.parts.recorder._close_timeout_s = 1.0
        with BackgroundServer(app, graceful_timeout_s=2) as server:
            yield database, server, pg, redis


@pytest.mark.parametrize("database_fault", ["cut", "freeze"])
@pytest.mark.parametrize("redis_fault", ["restarted-empty", "cut"])
def test_no_mix_of_database_and_redis_faults_answers_500(
    faulty: tuple[str, BackgroundServer, FaultProxy, FaultProxy], database_fault: str, redis_fault: str
) -> None:
    database, server, pg, redis = faulty
    used = make_key(database, "used", credit=10, concurrency=5)
    unseen = make_key(database, "unseen", credit=10, budget=5, period="day")
    chat = {"model": NANO, "messages": HELLO, "max_tokens": 5}
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def ask(key: str, path: str = "/api/v1/chat/completions") -> httpx.Response:
            headers = {"Authorization": f"Bearer {key}"}
            if path.endswith("/key"):
                return client.get(path, headers=headers)
            return client.post(path, json=chat, headers=headers)

        assert ask(used).status_code == 200  # known to the key cache and to the ledger
        bad = client.post(
            "/api/v1/chat/completions",
            json={**chat, "model": "no/such-model"},
            headers={"Authorization": f"Bearer {unseen}"},
        )
        assert bad.status_code in (400, 404)  # the key is known to the key cache, its spend never read
        getattr(pg, database_fault)()
        if redis_fault == "restarted-empty":
            redis_support.flush()
        elif redis_fault != "none":
            getattr(redis, redis_fault)()
        answers = [
            ask(key, path) for key in (used, unseen) for path in ("/api/v1/chat/completions", "/api/v1/key")
        ]
        for r in answers:
            assert r.status_code in (200, 503), r.text
            if r.status_code == 503:
                assert r.json()["error"]["code"] == "database_unavailable"
                assert int(r.headers["retry-after"]) >= 1
        # The key admitted before goes on from the figures last known; the other may have to wait.
        assert answers[0].status_code == 200 and answers[1].json()["data"]["figures"] == "this_replica"
        pg.restore()
        redis.restore()
