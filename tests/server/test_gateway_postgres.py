"""The gateway on PostgreSQL, end to end: its key, request log and readiness in a schema of the machine's
server (skipped when PostgreSQL is not running)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway_support import HELLO, NANO, Gateway, generation, make_key, sim_config
from postgres_support import StoreDatabase, fresh_schema, run_apart
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer


@pytest.fixture
def pg() -> Iterator[StoreDatabase]:
    with fresh_schema() as url:
        yield StoreDatabase("postgresql", url)


def stored_generation_ids(pg: StoreDatabase) -> list[str]:
    return [row[0] for row in run_apart(lambda: pg.rows("SELECT id FROM generations"))]


def test_a_chat_request_is_logged_in_postgresql_and_found_by_its_id(sim: Any, pg: StoreDatabase) -> None:
    key = make_key(pg.url)  # the gateway must find it in PostgreSQL to let the request in
    app = build_gateway(sim_config(sim.url), database_url=pg.url, env={})
    with BackgroundServer(app, graceful_timeout_s=2) as server:
        gateway = Gateway(server, key, app)
        completion = gateway.openai().chat.completions.create(model=NANO, messages=HELLO)

        deadline = time.monotonic() + 10
        while completion.id not in stored_generation_ids(pg):
            assert time.monotonic() < deadline, "the request log never reached PostgreSQL"
            time.sleep(0.02)
        # Written, so no longer queued in the recorder: this answer is read back from PostgreSQL.
        record = generation(gateway, completion.id)
        assert record["id"] == completion.id and record["model"] == NANO
        assert record["status"] == "success" and record["provider"] == "openai"
        assert record["tokens_completion"] == (
            completion.usage.completion_tokens if completion.usage else None
        )
        assert [a["outcome"] for a in record["attempts"]] == ["success"]

        ready = httpx.get(f"{server.url}/ready", timeout=10)
        assert ready.status_code == 200 and ready.json()["database"] is True
