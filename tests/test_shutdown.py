"""SIGTERM to ``tokenmux serve`` with a stream in flight: the stream runs to its end, then the request log
is flushed, then the process exits."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from gateway_support import NANO
from tokenmux.server.runner import free_port

TOKENMUX = [sys.executable, "-m", "tokenmux.cli"]


def test_sigterm_lets_a_stream_in_flight_finish_and_flushes_its_record(sim: Any, tmp_path: Path) -> None:
    sim.profile("openai", completion_tokens=40, tokens_per_second=20)  # about two seconds of stream
    config = tmp_path / "tokenmux.yaml"
    config.write_text(f'providers:\n  openai: {{base_url: "{sim.url}/openai/v1", api_key: "k"}}\n')
    db = tmp_path / "gw.db"
    made = subprocess.run(
        [*TOKENMUX, "keys", "create", "--name", "t", "--database", f"sqlite:///{db}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    key = made.stdout.strip().splitlines()[-1]
    port = free_port()
    proc = subprocess.Popen(
        [*TOKENMUX, "serve", "--port", str(port), "--config", str(config), "--database", f"sqlite:///{db}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.1)
        body = {"model": NANO, "messages": [{"role": "user", "content": "hi"}], "stream": True}
        lines = []
        with httpx.stream(
            "POST",
            f"{url}/api/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=30,
        ) as response:
            gen_id = response.headers["x-generation-id"]
            for line in response.iter_lines():
                if line.startswith("data: ") and not lines:
                    proc.send_signal(signal.SIGTERM)  # after the first chunk: the stream is in flight
                if line.startswith("data: "):
                    lines.append(line[6:])
        assert lines[-1] == "[DONE]"
        content = "".join(
            (c["choices"][0]["delta"].get("content") or "")
            for c in map(json.loads, lines[:-1])
            if c["choices"]
        )
        assert content
        assert proc.wait(20) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT status, completion_tokens FROM generations WHERE id = ?", (gen_id,)
        ).fetchone()
    assert row == ("success", 40)
