"""SIGTERM to ``tokenmux serve``: a stream in flight runs to its end within the drain period, then the
request log is flushed and the process exits; what still runs when the drain period ends is told so in its
protocol and recorded as ended by shutdown."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from gateway_support import HELLO, NANO, make_key, sim_config
from serve_support import ServeProcess
from tokenmux.server.runner import free_port

TOKENMUX = [sys.executable, "-m", "tokenmux.cli"]
HAIKU = "anthropic/claude-haiku-4.5"


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


class Reader(threading.Thread):
    """One request to a serve process, read to its end in a thread: the status, and every SSE line."""

    def __init__(self, url: str, path: str, key: str, body: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self.url, self.path, self.key, self.body = url, path, key, body
        self.status = 0
        self.gen_id = ""
        self.lines: list[str] = []
        self.text = ""
        self.start()

    def run(self) -> None:
        headers = {
            "Authorization": f"Bearer {self.key}",
            "x-api-key": self.key,
            "anthropic-version": "2023-06-01",
        }
        with httpx.stream("POST", self.url + self.path, json=self.body, headers=headers, timeout=30) as r:
            self.status = r.status_code
            self.gen_id = r.headers["x-generation-id"]
            if self.body.get("stream"):
                for line in r.iter_lines():
                    self.lines.append(line)
            else:
                self.text = r.read().decode()

    def data(self) -> list[str]:
        return [line[6:] for line in self.lines if line.startswith("data: ")]


def test_what_still_runs_when_the_drain_ends_is_told_so_and_recorded_as_ended_by_shutdown(
    sim: Any, tmp_path: Path
) -> None:
    sim.profile("openai", completion_tokens=200, tokens_per_second=20)  # ten seconds of stream
    sim.profile("anthropic", completion_tokens=200, tokens_per_second=20)
    sim.profile("azure", ttft_ms=10_000)  # ten seconds before a whole answer
    url = f"sqlite:///{tmp_path / 'gw.db'}"
    key = make_key(url)
    config = sim_config(
        sim.url, spool_dir=str(tmp_path / "spool"), drain_s=1, attempt_timeout_s=30, request_timeout_s=60
    )
    serve = ServeProcess(tmp_path, config, url).start()
    try:
        chat = Reader(
            serve.url,
            "/api/v1/chat/completions",
            key,
            {"model": NANO, "messages": HELLO, "stream": True, "provider": {"only": ["openai"]}},
        )
        messages = Reader(
            serve.url,
            "/api/anthropic/v1/messages",
            key,
            {"model": HAIKU, "max_tokens": 500, "messages": HELLO, "stream": True},
        )
        whole = Reader(
            serve.url,
            "/api/v1/chat/completions",
            key,
            {"model": NANO, "messages": HELLO, "provider": {"only": ["azure"]}},
        )
        deadline = time.monotonic() + 20
        while not (
            any('"content"' in d for d in chat.data()) and any("text_delta" in d for d in messages.data())
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        serve.signal(signal.SIGTERM)
        for reader in (chat, messages, whole):
            reader.join(30)
        assert serve.wait() in (0, -signal.SIGTERM)
    finally:
        serve.stop()

    # Chat Completions: content, then the error chunk, then [DONE].
    assert chat.status == 200 and chat.data()[-1] == "[DONE]"
    error = json.loads(chat.data()[-2])["error"]
    assert error["code"] == 503 and "shutting down" in error["message"]
    # Anthropic Messages: content, then an error event, and no message_stop.
    assert messages.status == 200
    assert "event: error" in messages.lines and "event: message_stop" not in messages.lines
    assert "shutting down" in json.loads(messages.data()[-1])["error"]["message"]
    # A request with no answer yet: 503 in its protocol.
    assert whole.status == 503 and json.loads(whole.text)["error"]["code"] == "shutting_down"

    with sqlite3.connect(tmp_path / "gw.db") as conn:
        rows = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT id, status, http_status, error_message, completion_tokens FROM generations"
            )
        }
    assert rows[chat.gen_id][:3] == ("error", 200, "ended by shutdown") and rows[chat.gen_id][3] > 0
    assert rows[messages.gen_id][:3] == ("error", 200, "ended by shutdown") and rows[messages.gen_id][3] > 0
    assert rows[whole.gen_id][:3] == ("error", 503, "ended by shutdown")
