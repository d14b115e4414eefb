"""A served request leaves no reference cycle behind: what it allocated is freed when it ends, not when the
garbage collector next runs (which, under a burst of concurrent requests, leaves megabytes waiting and the
allocator keeping the memory they took)."""

from __future__ import annotations

import contextlib
import gc
from typing import Any

import openai

from gateway_support import HELLO, NANO, SIM_PREFIXES
from tokenmux.simulator.control_client import SimulatorControl

# What each request or stream makes, server side.
_PER_REQUEST = {"RequestResponseCycle", "HeadJoiningWrites", "AsgiOutlet", "KeepAlive", "Generation"}
_ERRORS = {"ProviderRejected", "AllAttemptsFailed", "ChatRequest"}


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


def test_failed_and_retried_requests_leave_no_reference_cycles(gateway: Any, sim: SimulatorControl) -> None:
    # Errors hold tracebacks, and a traceback holds the frames that raised or kept the error.
    client = gateway.openai().with_options(max_retries=0)
    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for error_rate in (1.0, 0.5):  # every attempt refused; then some, the next endpoint answering
            for prefix in SIM_PREFIXES:
                sim.profile(prefix, error_rate=error_rate, error_status=500)
            for _ in range(4):
                with contextlib.suppress(openai.APIError):
                    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
                with contextlib.suppress(openai.APIError):
                    list(
                        client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5, stream=True)
                    )
        gc.collect()
        left = sorted({type(o).__qualname__ for o in gc.garbage} & (_PER_REQUEST | _ERRORS))
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert left == []
