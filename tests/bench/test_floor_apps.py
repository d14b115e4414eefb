"""The floor apps of ``bench/floor_apps.py`` answer as the benchmark needs: served like the gateway, the
trivial app with a fixed completion or stream, the bare proxies with what the simulator sent.

Not a timed test: nothing here measures how fast they are.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import msgspec
import pytest

from tokenmux.server.runner import BackgroundServer

FLOOR_APPS = Path(__file__).resolve().parents[2] / "bench" / "floor_apps.py"
BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "Say hello."}]}
STREAMED = {**BODY, "stream": True, "stream_options": {"include_usage": True}}


@pytest.fixture(scope="module")
def floor_apps() -> ModuleType:
    spec = importlib.util.spec_from_file_location("floor_apps", FLOOR_APPS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=["server", "proxy", "proxy-aiohttp"])
def floor(
    request: pytest.FixtureRequest, floor_apps: ModuleType, simulator: BackgroundServer
) -> Iterator[str]:
    app = floor_apps.build_app(request.param, f"{simulator.url}/openai/v1/chat/completions")
    with BackgroundServer(app, graceful_timeout_s=1) as server:
        # Served by the gateway's own protocol class under its default limits, as `tokenmux serve` does.
        assert server.connections is not None
        yield server.url + floor_apps.PATH


def _events(text: str) -> list[str]:
    return [event.removeprefix("data: ") for event in text.split("\n\n") if event.startswith("data: ")]


def test_a_floor_app_answers_a_chat_completion_whole_and_streamed(floor: str) -> None:
    with httpx.Client(timeout=10) as client:
        # msgspec's encoding, as the benchmark's load generator sends it (the trivial app looks for it).
        plain = client.post(floor, content=msgspec.json.encode(BODY))
        streamed = client.post(floor, content=msgspec.json.encode(STREAMED))

    assert plain.status_code == 200 and plain.headers["content-type"].startswith("application/json")
    completion = plain.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"]
    assert completion["usage"]["completion_tokens"] > 0

    assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
    events = _events(streamed.text)
    assert events[-1] == "[DONE]"
    chunks = [msgspec.json.decode(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert any(choice["delta"].get("content") for c in chunks for choice in c["choices"])
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_the_trivial_app_streams_as_many_events_as_the_simulator(floor_apps: ModuleType) -> None:
    # A role chunk, one per word, the finish chunk, the usage chunk and [DONE].
    events = _events(floor_apps.fixed_stream().decode())
    assert len(events) == 28 and len(floor_apps.WORDS) == 24
    text = "".join(
        choice["delta"].get("content") or ""
        for event in events[:-1]
        for choice in msgspec.json.decode(event)["choices"]
    )
    assert text == msgspec.json.decode(floor_apps.fixed_completion())["choices"][0]["message"]["content"]


def test_a_proxy_without_an_upstream_is_refused_at_start() -> None:
    done = subprocess.run(
        [sys.executable, str(FLOOR_APPS), "proxy", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "needs --upstream" in done.stderr
