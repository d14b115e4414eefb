"""Two ``tokenmux serve`` processes on one PostgreSQL and one Redis, as a platform team runs them: one RPM
limit, one budget and one provider cooldown hold across both."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from gateway_support import HELLO, NANO
from postgres_support import fresh_schema
from tokenmux.server.runner import free_port

TOKENMUX = [sys.executable, "-m", "tokenmux.cli"]
PROCESSES: dict[str, subprocess.Popen[bytes]] = {}  # a replica's process by its URL, to kill one


def cli(*args: str) -> str:
    out = subprocess.run([*TOKENMUX, *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip().splitlines()[-1]


def wait_ready(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the gateway exited with {proc.returncode}"
        try:
            if httpx.get(url, timeout=1).json().get("status") == "ready":
                return
        except (httpx.TransportError, json.JSONDecodeError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


@pytest.fixture
def two_replicas(sim: Any, redis_url: str, tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    """(database URL, the replicas' URLs); their logs are left in ``tmp_path/replica-N.log``."""
    with fresh_schema() as database:
        config = tmp_path / "tokenmux.yaml"
        config.write_text(
            "providers:\n"
            f'  openai: {{base_url: "{sim.url}/openai/v1", api_key: "upstream-secret"}}\n'
            f'  azure: {{base_url: "{sim.url}/azure", api_key: "upstream-secret", api_version: "2024-10-21"}}\n'
            # Short leases: a killed replica's holds lapse within a second.
            "gateway: {attempt_timeout_s: 2, request_timeout_s: 8, redis_lease_s: 1}\n"
        )
        cli("keys", "list", "--database", database)  # migrates the schema before two replicas race to
        urls, procs, logs = [], [], []
        for i in range(2):
            port = free_port()
            args = [*TOKENMUX, "serve", "--port", str(port), "--config", str(config), "--database", database]
            env = dict(os.environ)
            if i == 0:
                args += ["--redis", redis_url]
            else:
                env["TOKENMUX_REDIS_URL"] = redis_url  # the other way to say it
            logs.append((tmp_path / f"replica-{i}.log").open("w"))
            procs.append(subprocess.Popen(args, stdout=logs[-1], stderr=subprocess.STDOUT, env=env))
            urls.append(f"http://127.0.0.1:{port}")
            PROCESSES[urls[-1]] = procs[-1]
        try:
            for url, proc in zip(urls, procs, strict=True):
                wait_ready(f"{url}/ready", proc)
            yield database, urls
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
            for log in logs:
                log.close()


def client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/api/v1", api_key=key, max_retries=0)


def test_one_rpm_limit_one_budget_and_one_cooldown_across_two_replicas(
    two_replicas: tuple[str, list[str]], sim: Any
) -> None:
    database, (a, b) = two_replicas

    # RPM 3: three requests spread over both replicas pass, the fourth (on either) is refused.
    key = cli("keys", "create", "--name", "rpm", "--rpm", "3", "--database", database)
    for url in (a, b, a):
        with client(url, key) as c:
            c.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    with client(b, key) as c, pytest.raises(openai.RateLimitError) as err:
        c.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert int(err.value.response.headers["retry-after"]) >= 1

    # A daily budget of $0.0005: one request that may cost $0.0004 on A leaves too little for B.
    key = cli(
        "keys", "create", "--name", "budget", "--budget", "0.0005", "--period", "day", "--database", database
    )
    with client(a, key) as c:
        c.chat.completions.create(model=NANO, messages=HELLO, max_tokens=1000)
    with client(b, key) as c, pytest.raises(openai.APIStatusError) as err2:
        c.chat.completions.create(model=NANO, messages=HELLO, max_tokens=1250)
    assert err2.value.status_code == 402
    spent_a = httpx.get(f"{a}/api/v1/key", headers={"Authorization": f"Bearer {key}"}).json()["data"]
    spent_b = httpx.get(f"{b}/api/v1/key", headers={"Authorization": f"Bearer {key}"}).json()["data"]
    assert spent_a["budget"]["usage"] == spent_b["budget"]["usage"] > 0

    # A 429 with Retry-After from OpenAI, seen by A, keeps B away from OpenAI too.
    key = cli("keys", "create", "--name", "cooldown", "--database", database)
    sim.profile("openai", rate_limit_rate=1.0, retry_after_s=60)
    sim.profile("azure")
    with client(a, key) as c:
        first = c.chat.completions.create(
            model=NANO, messages=HELLO, max_tokens=5, extra_body={"provider": {"order": ["openai", "azure"]}}
        )
    assert first.model_extra["provider"] == "azure"  # type: ignore[index]
    sim.profile("openai")  # OpenAI would answer now: only the shared cooldown keeps B away
    tried = len(sim.requests("openai"))
    time.sleep(1.0)  # replicas exchange health every 0.25 s
    with client(b, key) as c:
        second = c.chat.completions.create(
            model=NANO, messages=HELLO, max_tokens=5, extra_body={"provider": {"order": ["openai", "azure"]}}
        )
    assert second.model_extra["provider"] == "azure"  # type: ignore[index]
    assert len(sim.requests("openai")) == tried
    endpoints = httpx.get(f"{b}/api/v1/models/{NANO}/endpoints").json()["data"]["endpoints"]
    assert {e["provider_name"]: e["status"] for e in endpoints}["openai"] == "cooling_down"


def test_no_secret_reaches_a_log_an_error_or_a_metric(
    two_replicas: tuple[str, list[str]], sim: Any, tmp_path: Path
) -> None:
    database, (a, b) = two_replicas
    key = cli("keys", "create", "--name", "quiet", "--credit", "0", "--database", database)
    bodies = []
    for url in (a, b):
        with client(url, key) as c, pytest.raises(openai.APIStatusError) as err:
            c.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
        bodies.append(err.value.response.text)
        bodies.append(httpx.get(f"{url}/api/v1/key", headers={"Authorization": f"Bearer {key}x"}).text)
        bodies.append(httpx.get(f"{url}/metrics").text)
        bodies.append(httpx.get(f"{url}/ready").text)
    sim.profile("openai", error_rate=1.0, error_status=401)
    sim.profile("azure", error_rate=1.0, error_status=401)
    other = cli("keys", "create", "--name", "loud", "--database", database)
    with client(a, other) as c, pytest.raises(openai.APIStatusError) as err:
        c.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    bodies.append(err.value.response.text)
    logs = "".join(p.read_text() for p in tmp_path.glob("replica-*.log"))
    for text in [*bodies, logs]:
        for secret in (key, other, "upstream-secret", "Bearer "):
            assert secret not in text


def test_the_holds_of_a_replica_killed_mid_request_lapse_within_its_lease(
    two_replicas: tuple[str, list[str]], sim: Any
) -> None:
    database, (a, b) = two_replicas
    key = cli("keys", "create", "--name", "one-at-a-time", "--concurrency", "1", "--database", database)
    for prefix in ("openai", "azure"):  # A's request is still waiting for its answer when A dies
        sim.profile(prefix, ttft_ms=30_000)
    body = {"model": NANO, "messages": HELLO, "max_tokens": 5}
    auth = {"Authorization": f"Bearer {key}"}

    def send_to_a() -> None:
        with contextlib.suppress(httpx.TransportError):  # A dies under it
            httpx.post(f"{a}/api/v1/chat/completions", json=body, headers=auth, timeout=30)

    threading.Thread(target=send_to_a, daemon=True).start()
    deadline = time.monotonic() + 10
    while httpx.get(f"{b}/api/v1/key", headers=auth).json()["data"]["in_flight"] != 1:
        assert time.monotonic() < deadline, "A's request was never admitted"
        time.sleep(0.05)
    PROCESSES[a].kill()  # kill -9: nothing settles the hold
    PROCESSES[a].wait()
    sim.profile("openai")
    sim.profile("azure")
    deadline = time.monotonic() + 10  # the lease is 1 s: well within
    while (
        r := httpx.post(f"{b}/api/v1/chat/completions", json=body, headers=auth, timeout=10)
    ).status_code != 200:
        assert r.status_code == 429, r.text
        assert time.monotonic() < deadline, "the dead replica's hold never lapsed"
        time.sleep(0.2)
