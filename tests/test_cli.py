"""The command line, run as a user runs it: real processes, real ports."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tokenmux.server.runner import free_port

TOKENMUX = [sys.executable, "-m", "tokenmux.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TOKENMUX, *args], capture_output=True, text=True, timeout=60, env=env)


def wait_ready(url: str, proc: subprocess.Popen[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} not ready within {timeout_s} s")


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()


def test_keys_create_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    out = run("keys", "create", "--name", "alice", "--database", db)
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-tm-") and " " not in key
    listed = run("keys", "list", "--database", db)
    assert "alice" in listed.stdout and key not in listed.stdout and key[:12] in listed.stdout
    again = run("keys", "create", "--name", "alice", "--database", db)
    assert again.returncode == 1 and "exists" in again.stderr
    assert run("keys", "revoke", "alice", "--database", db).returncode == 0
    assert "revoked" in run("keys", "list", "--database", db).stdout
    assert run("keys", "revoke", "nobody", "--database", db).returncode == 1


def test_models_prints_the_catalog() -> None:
    out = run("models")
    assert out.returncode == 0, out.stderr
    assert "openai/gpt-4.1-nano" in out.stdout and "1.05M" in out.stdout


def test_serve_and_simulate_as_documented(tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:
    sim_port, gw_port = free_port(), free_port()
    sim = subprocess.Popen(
        [*TOKENMUX, "simulate", "--host", "127.0.0.1", "--port", str(sim_port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    processes.append(sim)
    wait_ready(f"http://127.0.0.1:{sim_port}/health", sim)
    config = tmp_path / "tokenmux.yaml"
    config.write_text(
        "providers:\n"
        f'  openai: {{base_url: "http://127.0.0.1:{sim_port}/openai/v1", api_key: "${{TEST_UPSTREAM_KEY}}"}}\n'
        f'  azure:  {{base_url: "http://127.0.0.1:{sim_port}/azure", api_key: "anything", api_version: "2024-10-21"}}\n'
    )
    db = f"sqlite:///{tmp_path}/gw.db"
    key = run("keys", "create", "--name", "cli", "--database", db).stdout.strip().splitlines()[-1]
    env = {**os.environ, "TEST_UPSTREAM_KEY": "sk-from-env"}
    log = tmp_path / "gateway.log"
    with log.open("w") as log_file:
        gw = subprocess.Popen(
            [
                *TOKENMUX,
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(gw_port),
                "--config",
                str(config),
                "--database",
                db,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
    processes.append(gw)
    wait_ready(f"http://127.0.0.1:{gw_port}/ready", gw)
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{gw_port}/api/v1", api_key=key, max_retries=0)
    out = client.chat.completions.create(
        model="openai/gpt-4.1-nano", messages=[{"role": "user", "content": "hi"}]
    )
    assert out.choices[0].message.content
    # SIGTERM: the gateway flushes its request log before it exits.
    gw.send_signal(signal.SIGTERM)
    assert gw.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down
    import sqlite3

    with sqlite3.connect(f"{tmp_path}/gw.db") as conn:
        assert conn.execute("select count(*) from generations where id = ?", (out.id,)).fetchone()[0] == 1
    stderr = log.read_text()
    assert "sk-from-env" not in stderr and key not in stderr


def test_a_missing_config_variable_names_it(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text('providers:\n  openai: {api_key: "${NOT_SET_ANYWHERE_42}"}\n')
    out = run(
        "serve",
        "--config",
        str(config),
        "--database",
        f"sqlite:///{tmp_path}/x.db",
        env={k: v for k, v in os.environ.items() if k != "NOT_SET_ANYWHERE_42"},
    )
    assert out.returncode == 2 and "NOT_SET_ANYWHERE_42" in out.stderr


def test_a_mistyped_setting_stops_serve_with_one_line(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text('providers:\n  openai: {api_kye: "sk-typed-in-the-wrong-place"}\n')
    out = run("serve", "--config", str(config), "--database", f"sqlite:///{tmp_path}/x.db")
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "error: unknown setting providers.openai.api_kye; known: kind, base_url, api_key, headers, timeout_s"
    ]
