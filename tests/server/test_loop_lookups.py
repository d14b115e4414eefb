"""The request path never asks ``asyncio.get_running_loop()``: on CPython 3.11 each call is a getpid system
call, which costs microseconds on a virtual machine (``loop_lookup.py`` finds the loop without one)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from gateway_support import NANO


@pytest.fixture
def loop_lookups_by_the_gateway(gateway: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], int]]:
    """Counts calls of ``asyncio.get_running_loop`` made on the gateway's server thread (the simulator's
    has a thread of its own)."""
    calls = 0
    original = asyncio.get_running_loop
    thread_name = f"server-{gateway.server.port}"

    def counting() -> asyncio.AbstractEventLoop:
        nonlocal calls
        if threading.current_thread().name == thread_name:
            calls += 1
        return original()

    monkeypatch.setattr(asyncio, "get_running_loop", counting)
    yield lambda: calls


def _ask(client: Any, stream: bool) -> None:
    messages = [{"role": "user", "content": "Say something about tokens."}]
    extra = {"provider": {"only": ["openai"]}}
    if stream:
        chunks = client.chat.completions.create(model=NANO, messages=messages, stream=True, extra_body=extra)
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        answer = client.chat.completions.create(model=NANO, messages=messages, extra_body=extra)
        assert answer.choices[0].message.content


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_requests_after_the_first_make_no_loop_lookup(
    gateway: Any, loop_lookups_by_the_gateway: Callable[[], int], stream: bool
) -> None:
    client = gateway.openai()
    _ask(client, stream)  # the first request may find the loop and keep it
    before = loop_lookups_by_the_gateway()
    for _ in range(10):
        _ask(client, stream)
    assert loop_lookups_by_the_gateway() == before
