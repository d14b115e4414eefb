"""Closed-loop clients at a key's concurrency limit: ten workers that each wait for their answer before
sending the next request never exceed ``--concurrency 10``, so (almost) none of them may be refused, with
this process's own books and with the ledger shared through Redis, whole answers and streams alike."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from gateway_support import HELLO, NANO, sim_config

WORKERS = 10
PER_WORKER = 30


def closed_loop(url: str, key: str) -> tuple[int, list[int]]:
    """(answers, statuses other than 200) of WORKERS workers sending PER_WORKER requests each."""
    statuses: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
            for i in range(PER_WORKER):
                body = {"model": NANO, "messages": HELLO, "max_tokens": 5, "stream": (n + i) % 2 == 0}
                r = client.post("/api/v1/chat/completions", json=body)
                r.read()
                with lock:
                    statuses.append(r.status_code)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(statuses), [s for s in statuses if s != 200]


@pytest.mark.parametrize("shared", [False, True], ids=["own-books", "redis"])
def test_closed_loop_clients_at_the_limit_are_not_refused(
    gateway_factory: Any, sim: Any, shared: bool, request: pytest.FixtureRequest
) -> None:
    config = sim_config(sim.url)
    if shared:
        config["redis"] = request.getfixturevalue("redis_url")
    gw = gateway_factory(config)
    sim.profile("openai", ttft_ms=20)  # a request holds its slot a little while
    key = gw.new_key("closed-loop", concurrency=WORKERS)
    answers, refused = closed_loop(gw.url, key)
    assert answers == WORKERS * PER_WORKER
    assert len(refused) <= answers // 100, refused  # under 1 %
    standing = httpx.get(f"{gw.url}/api/v1/key", headers={"Authorization": f"Bearer {key}"}).json()["data"]
    assert standing["in_flight"] == 0
