"""``kill -9`` of a real ``tokenmux serve`` under steady load: after a restart on the same database and
spool directory, every response a client received whole has its record, once; also when the database was
down when the process died (a proxy in front of the machine's PostgreSQL cuts it off)."""

from __future__ import annotations

import json
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fault_proxy import FaultProxy
from gateway_support import HELLO, NANO, make_key, sim_config
from postgres_support import fresh_schema, run_apart
from serve_support import ServeProcess


class SteadyLoad:
    """Closed-loop clients, half of them streaming, until told to stop or the server goes away; ``done``
    holds the generation id of every response received whole (a 200 body, or a stream up to ``[DONE]``)."""

    def __init__(self, url: str, key: str, clients: int = 6) -> None:
        self.url = url
        self.key = key
        self.done: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i % 2 == 0,), daemon=True) for i in range(clients)
        ]

    def __enter__(self) -> SteadyLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self, stream: bool) -> None:
        body = {"model": NANO, "messages": HELLO, "max_tokens": 8, "stream": stream}
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10) as client:
            while not self._stop.is_set():
                self.sent += 1
                try:
                    gen_id = self._one(client, body) if stream else self._whole(client, body)
                except httpx.HTTPError:
                    return  # the server is gone
                if gen_id is not None:
                    self.done.append(gen_id)

    @staticmethod
    def _whole(client: httpx.Client, body: dict[str, Any]) -> str | None:
        r = client.post("/api/v1/chat/completions", json=body)
        return r.json()["id"] if r.status_code == 200 else None  # type: ignore[no-any-return]

    @staticmethod
    def _one(client: httpx.Client, body: dict[str, Any]) -> str | None:
        with client.stream("POST", "/api/v1/chat/completions", json=body) as r:
            gen_id = r.headers.get("x-generation-id")
            last = None
            for line in r.iter_lines():
                if line.startswith("data: "):
                    last = line[6:]
        return gen_id if r.status_code == 200 and last == "[DONE]" else None


class SlowStream:
    """One long stream through azure, read in a thread until the server goes away."""

    def __init__(self, url: str, key: str) -> None:
        self.gen_id: str | None = None
        self.chunks = 0
        self.chars = 0  # of content received
        self._thread = threading.Thread(target=self._run, args=(url, key), daemon=True)
        self._thread.start()

    def _run(self, url: str, key: str) -> None:
        body = {
            "model": NANO,
            "messages": HELLO,
            "stream": True,
            "provider": {"only": ["azure"]},
        }
        headers = {"Authorization": f"Bearer {key}"}
        try:
            with httpx.stream(
                "POST", f"{url}/api/v1/chat/completions", json=body, headers=headers, timeout=30
            ) as r:
                self.gen_id = r.headers["x-generation-id"]
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        choices = json.loads(line[6:])["choices"]
                        content = choices[0]["delta"].get("content") if choices else None
                        if content:
                            self.chunks += 1
                            self.chars += len(content)
        except httpx.HTTPError:
            pass  # cut by the kill

    def join(self) -> None:
        self._thread.join(30)


def wait_for(check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def kill_under_load(
    serve: ServeProcess, key: str, *, before_kill: Callable[[], None] | None = None
) -> list[str]:
    """Load ``serve``, kill -9 it while requests are in flight, and return the ids answered whole."""
    with SteadyLoad(serve.url, key) as load:
        wait_for(lambda: len(load.done) >= 60)
        if before_kill is not None:
            before_kill()
        serve.signal(signal.SIGKILL)
        assert serve.wait() == -signal.SIGKILL
    assert load.sent > len(load.done)  # some were in flight: the kill cut them
    return load.done


def wait_until_stored(done: list[str], stored: Callable[[], list[str]]) -> list[str]:
    """The stored ids once every id in ``done`` is among them; fails naming how many never came."""
    deadline = time.monotonic() + 30
    while True:
        ids = stored()
        missing = set(done) - set(ids)
        if not missing:
            # The figure for the closing note of a crash test (pytest -s shows it).
            print(f"\nkill -9 under load: {len(done)} responses received whole, 0 records lost")
            return ids
        assert time.monotonic() < deadline, f"{len(missing)} of {len(done)} records lost"
        time.sleep(0.1)


def sqlite_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM generations")]


def test_kill_9_under_load_loses_no_record_of_a_response_received_whole_and_bills_a_cut_stream(
    sim: Any, tmp_path: Path
) -> None:
    sim.profile("azure", completion_tokens=2000, tokens_per_second=40)  # fifty seconds of stream
    db = tmp_path / "gw.db"
    url = f"sqlite:///{db}"
    key = make_key(url)
    config = sim_config(sim.url, spool_dir=str(tmp_path / "spool"))
    first = ServeProcess(tmp_path, config, url, "first").start()
    slow = SlowStream(first.url, key)
    try:
        # Killed once the slow stream has sent content for over two seconds: its progress is journaled.
        wait_for(lambda: slow.chunks >= 1)
        first_content = time.monotonic()
        done = kill_under_load(
            first, key, before_kill=lambda: wait_for(lambda: time.monotonic() - first_content > 2.5)
        )
    finally:
        first.stop()
    slow.join()
    received = slow.chars
    second = ServeProcess(tmp_path, config, url, "second").start()
    try:
        ids = wait_until_stored([*done, str(slow.gen_id)], lambda: sqlite_ids(db))
    finally:
        second.stop()
    assert len(ids) == len(set(ids)) and len(set(done)) == len(done)
    with sqlite3.connect(db) as conn:
        status, error, http_status, prompt, completion, cost = conn.execute(
            "SELECT status, error_message, http_status, prompt_tokens, completion_tokens, cost_usd "
            "FROM generations WHERE id = ?",
            (slow.gen_id,),
        ).fetchone()
    assert (status, error, http_status) == ("error", "ended by crash", 200)
    # Billed: the prompt's estimate, and the output sent up to the last progress entry (four characters a
    # token), so never more than the client received.
    assert prompt > 0 and 0 < completion <= -(-received // 4) and cost > 0
    assert not list((tmp_path / "spool").glob("journal-*")), "a clean stop leaves no journal behind"


@pytest.fixture
def pg_behind_proxy() -> Iterator[tuple[str, str, FaultProxy]]:
    """(direct URL, URL through the proxy, the proxy) of a fresh schema."""
    with fresh_schema() as url, FaultProxy("127.0.0.1", 5432) as proxy:
        through = url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.url_port}")
        yield url, through, proxy


def pg_ids(url: str) -> list[str]:
    import asyncpg

    async def read() -> list[str]:
        conn = await asyncpg.connect(
            url.split("?")[0], server_settings={"search_path": url.split("search_path=")[1]}
        )
        try:
            return [r["id"] for r in await conn.fetch("SELECT id FROM generations")]
        finally:
            await conn.close()

    return run_apart(read)


def test_kill_9_while_the_database_is_down_loses_nothing(
    sim: Any, pg_behind_proxy: tuple[str, str, FaultProxy], tmp_path: Path
) -> None:
    direct, through, proxy = pg_behind_proxy
    key = make_key(direct)
    config = sim_config(sim.url, spool_dir=str(tmp_path / "spool"))
    first = ServeProcess(tmp_path, config, through, "first").start()
    try:
        # The key is looked up once while the database answers; then the database goes away.
        r = httpx.post(
            f"{first.url}/api/v1/chat/completions",
            json={"model": NANO, "messages": HELLO, "max_tokens": 8},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        wait_for(lambda: len(pg_ids(direct)) == 1)
        proxy.cut()
        done = kill_under_load(first, key)
    finally:
        first.stop()
    assert len(pg_ids(direct)) == 1  # nothing reached the database during the outage
    proxy.restore()
    second = ServeProcess(tmp_path, config, direct, "second").start()
    try:
        ids = wait_until_stored(done, lambda: pg_ids(direct))
    finally:
        second.stop()
    assert len(ids) == len(set(ids))
