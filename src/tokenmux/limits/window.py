"""Requests and tokens per minute: a sliding window made of two fixed one-minute counters.

The count at a moment is the current minute's count plus the previous minute's, weighted by how much of
the previous minute the last 60 seconds still cover. It never lets a burst at a minute's edge double the
rate, as a single fixed window does, and it needs two integers per key rather than a log of every request.
The Redis ledger runs the same arithmetic in Lua (``redis_ledger_scripts.py``); keep the two alike.
"""

from __future__ import annotations

WINDOW_S = 60


def weighted_count(previous: int, current: int, elapsed_s: float) -> float:
    """The sliding count ``elapsed_s`` seconds into the current minute."""
    return previous * (1.0 - elapsed_s / WINDOW_S) + current


def wait_s(previous: int, current: int, elapsed_s: float, limit: int) -> float:
    """Seconds until one more unit fits under ``limit`` (0 when it fits now)."""
    room = limit - 1  # the count must be at most this before one more is taken
    if weighted_count(previous, current, elapsed_s) <= room:
        return 0.0
    if current <= room:
        # The previous minute's share decays until the count is low enough, within this minute.
        return WINDOW_S * (1.0 - (room - current) / previous) - elapsed_s
    # This minute alone is over: wait for it to become the previous one, then for its share to decay.
    rest = WINDOW_S - elapsed_s
    return rest + WINDOW_S * (1.0 - room / current)
