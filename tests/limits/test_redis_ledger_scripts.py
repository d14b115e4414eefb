"""The Lua copy of the sliding-window arithmetic gives the Python one's answers (run in the real Redis)."""

from __future__ import annotations

import asyncio

from hypothesis import given, settings
from hypothesis import strategies as st

from tokenmux.limits.redis_ledger_scripts import WAIT_FUNCTION
from tokenmux.limits.window import WINDOW_S, wait_s
from tokenmux.redis.resp import RespClient, Script

_CALL = Script(
    WAIT_FUNCTION
    + "return tostring(wait_s(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])))"
)


def test_lua_and_python_windows_agree(redis_url: str) -> None:
    loop = asyncio.new_event_loop()
    client = RespClient(redis_url)

    @settings(max_examples=300, deadline=None)
    @given(
        previous=st.integers(0, 100_000),
        current=st.integers(0, 100_000),
        elapsed=st.floats(0, WINDOW_S, exclude_max=True).map(lambda x: round(x, 3)),
        limit=st.integers(1, 50_000),
    )
    def agree(previous: int, current: int, elapsed: float, limit: int) -> None:
        lua = float(loop.run_until_complete(client.run(_CALL, previous, current, repr(elapsed), limit)))
        assert abs(lua - wait_s(previous, current, elapsed, limit)) < 1e-6

    try:
        agree()
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
