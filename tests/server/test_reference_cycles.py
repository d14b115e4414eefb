"""A served request leaves no reference cycle behind: what it allocated is freed when it ends, not when the
garbage collector next runs (which, under a burst of concurrent requests, leaves megabytes waiting and the
allocator keeping the memory they took)."""

from __future__ import annotations

import gc
from typing import Any

from gateway_support import HELLO, NANO

# What each request or stream makes, server side.
_PER_REQUEST = {"RequestResponseCycle", "HeadJoiningWrites", "AsgiOutlet", "KeepAlive", "Generation"}


def test_served_requests_leave_no_reference_cycles(gateway: Any) -> None:
    client = gateway.openai()
    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)  # connections made, caches full
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        # Streamed too: the test gateway's streams wait with keep-alive comments (0.3 s), from a task that is
        # cancelled when the first content comes (``outlet.KeepAlive``).
        for _ in range(5):
            client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
            list(client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5, stream=True))
        gc.collect()
        left = sorted({type(o).__qualname__ for o in gc.garbage} & _PER_REQUEST)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
