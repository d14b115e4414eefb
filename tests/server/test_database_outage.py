"""The database goes away under a running gateway (a proxy in front of the machine's real PostgreSQL cuts
it off): requests keep being served, /ready says so, and no request record is lost, not even across a
shutdown while it is down."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fault_proxy import FaultProxy
from gateway_support import HELLO, NANO, make_key, sim_config
from postgres_support import fresh_schema, run_apart
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer


@pytest.fixture
def pg_behind_proxy() -> Iterator[tuple[str, str, FaultProxy]]:
    """(direct URL, URL through the proxy, the proxy) of a fresh schema."""
    with fresh_schema() as url, FaultProxy("127.0.0.1", 5432) as proxy:
        through = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.url_port}")
        assert through != url
        yield url, through, proxy


def stored(url: str, ids: list[str]) -> set[str]:
    import asyncpg

    async def read() -> set[str]:
        conn = await asyncpg.connect(
            url.split("?")[0], server_settings={"search_path": url.split("search_path=")[1]}
        )
        try:
            rows = await conn.fetch("SELECT id FROM generations WHERE id = ANY($1::text[])", ids)
        finally:
            await conn.close()
        return {r["id"] for r in rows}

    return run_apart(read)


def wait_for(check: Any, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_records_made_while_the_database_is_cut_off_are_written_when_it_is_back(
    sim: Any, pg_behind_proxy: tuple[str, str, FaultProxy], tmp_path: Path
) -> None:
    direct, through, proxy = pg_behind_proxy
    key = make_key(direct)
    config = sim_config(sim.url, spool_dir=str(tmp_path / "spill"))
    app = build_gateway(config, database_url=through, env={})
    with BackgroundServer(app, graceful_timeout_s=2) as server:
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=20)
        body = {"model": NANO, "messages": HELLO, "max_tokens": 5}
        assert client.post("/api/v1/chat/completions", json=body).status_code == 200  # key now known
        proxy.cut()
        ids = []
        started = time.monotonic()
        for _ in range(3):
            r = client.post("/api/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
        assert time.monotonic() - started < 15  # a hang guard, not a performance figure
        ready = client.get("/ready").json()
        assert ready["status"] == "degraded" and ready["database"] is False
        assert stored(direct, ids) == set()
        proxy.restore()
        wait_for(lambda: stored(direct, ids) == set(ids))
        wait_for(lambda: client.get("/ready").json()["status"] == "ready")
        client.close()


def test_records_held_through_a_shutdown_while_the_database_is_down_are_written_at_the_next_start(
    sim: Any, pg_behind_proxy: tuple[str, str, FaultProxy], tmp_path: Path
) -> None:
    direct, through, proxy = pg_behind_proxy
    key = make_key(direct)
    config = sim_config(sim.url, spool_dir=str(tmp_path / "spill"))
    app = build_gateway(config, database_url=through, env={})
    server = BackgroundServer(app, graceful_timeout_s=2).start()
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=20)
    body = {"model": NANO, "messages": HELLO, "max_tokens": 5}
    assert client.post("/api/v1/chat/completions", json=body).status_code == 200
    proxy.cut()
    ids = [client.post("/api/v1/chat/completions", json=body).json()["id"] for _ in range(2)]
    client.close()
    app.parts.recorder._close_timeout_s = (
        1.0  # do not wait the default 10 s for a database that is not coming
    )
    server.stop()
    assert len(list((tmp_path / "spill").glob("records-*.jsonl"))) == 1
    proxy.restore()
    # The next start, on a database that answers: the spilled records go in, the file goes away.
    again = build_gateway(config, database_url=direct, env={})
    with BackgroundServer(again, graceful_timeout_s=2):
        wait_for(lambda: stored(direct, ids) == set(ids))
        wait_for(lambda: not list((tmp_path / "spill").glob("records-*.jsonl")))


def test_the_gateway_starts_while_the_database_is_down_and_opens_it_when_it_answers(
    sim: Any, pg_behind_proxy: tuple[str, str, FaultProxy], tmp_path: Path
) -> None:
    direct, through, proxy = pg_behind_proxy
    key = make_key(direct)
    proxy.cut()
    app = build_gateway(sim_config(sim.url), database_url=through, env={})
    with BackgroundServer(app, graceful_timeout_s=2) as server:
        ready = httpx.get(f"{server.url}/ready", timeout=10).json()
        assert ready["status"] == "degraded" and ready["database"] is False
        auth = {"Authorization": f"Bearer {key}"}
        r = httpx.post(
            f"{server.url}/api/v1/chat/completions", json={"model": NANO, "messages": HELLO}, headers=auth
        )
        assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
        assert int(r.headers["retry-after"]) >= 1
        proxy.restore()
        wait_for(lambda: httpx.get(f"{server.url}/ready", timeout=10).json()["status"] == "ready")

        def served() -> bool:
            # Within two seconds of a failed lookup the database is not asked again (503, Retry-After).
            r = httpx.post(
                f"{server.url}/api/v1/chat/completions",
                json={"model": NANO, "messages": HELLO, "max_tokens": 5},
                headers=auth,
                timeout=20,
            )
            assert r.status_code in (200, 503), r.text
            return r.status_code == 200

        wait_for(served, timeout_s=10)


def test_a_frozen_database_delays_no_request_for_long(
    sim: Any, pg_behind_proxy: tuple[str, str, FaultProxy], tmp_path: Path
) -> None:
    """Key lookups are bounded by a short timeout; while the database is frozen a known key is served from
    what was last read, and the request log waits."""
    direct, through, proxy = pg_behind_proxy
    key = make_key(direct)
    app = build_gateway(sim_config(sim.url, spool_dir=str(tmp_path / "spool")), database_url=through, env={})
    app.parts.keys.positive_ttl_s = 0.0  # every request asks the database again, as after the cache's 5 s
    with BackgroundServer(app, graceful_timeout_s=2) as server:
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        body = {"model": NANO, "messages": HELLO, "max_tokens": 5}
        assert client.post("/api/v1/chat/completions", json=body).status_code == 200
        proxy.freeze()
        for _ in range(3):
            started = time.monotonic()
            assert client.post("/api/v1/chat/completions", json=body).status_code == 200
            assert time.monotonic() - started < 4  # a hang guard: one short lookup timeout at most
        proxy.restore()
        client.close()
