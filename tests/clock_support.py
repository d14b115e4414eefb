"""The tests' one fake clock: stands in for ``time.time`` or ``time.monotonic`` where a class takes a
``clock``, and says ``now`` until the test sets it."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
