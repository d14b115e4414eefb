"""The Lua copy of the sliding-window arithmetic gives the Python one's answers (run in the real Redis)."""

from __future__ import annotations

import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenmux.limits.window import WINDOW_S, wait_s
from tokenmux.shared.scripts import WAIT_FUNCTION

_CALL = (
    WAIT_FUNCTION
    + "return tostring(wait_s(tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])))"
)


def test_lua_and_python_windows_agree(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    script = client.register_script(_CALL)

    @settings(max_examples=300, deadline=None)
    @given(
        previous=st.integers(0, 100_000),
        current=st.integers(0, 100_000),
        elapsed=st.floats(0, WINDOW_S, exclude_max=True).map(lambda x: round(x, 3)),
        limit=st.integers(1, 50_000),
    )
    def agree(previous: int, current: int, elapsed: float, limit: int) -> None:
        lua = float(script(args=[previous, current, repr(elapsed), limit]))
        assert abs(lua - wait_s(previous, current, elapsed, limit)) < 1e-6

    try:
        agree()
    finally:
        client.close()
