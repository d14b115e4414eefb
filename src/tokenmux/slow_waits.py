"""Guards that are only set up for the waits that turn out to be slow.

A long wait needs guards: a timer for its deadline, a task watching for the client to disconnect,
keep-alive comments while a stream waits for its first token. Set up for every request and every read
they would cost more than a quick request does (an event-loop timer costs microseconds to arm and again
to cancel), and almost every request is over in a few milliseconds, almost every upstream read in less.
So a wait only enters a table, and one timer per event loop, ticking while the table is not empty, calls
``on_slow()`` of the waits that have lasted ``SLOW_AFTER_S``: their guards are set up then, and are
precise from that moment on.

A guard armed this way can act from ``SLOW_AFTER_S + TICK_S`` after its wait began; one due sooner must
be armed at once (``SlowWaits.arms_in_time``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from typing import Any, Protocol

from tokenmux.loop_lookup import current_task

SLOW_AFTER_S = 0.25
TICK_S = 0.05

log = logging.getLogger("tokenmux")


class Slow(Protocol):
    def on_slow(self) -> None:
        """The wait has lasted ``SLOW_AFTER_S``: set up what a long one needs."""
        ...


class SlowWaits:
    """The waits in progress on one event loop, oldest first, until they end or turn slow."""

    __slots__ = ("__weakref__", "_due", "_loop", "_timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Insertion order is due order, as every entry waits the same time: a tick stops at the first
        # entry not yet due.
        self._due: dict[Slow, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        # Held, not asked for: on CPython 3.11 every asyncio.get_running_loop() is a getpid system call.
        self._loop = loop

    def add(self, wait: Slow) -> None:
        loop = self._loop
        self._due[wait] = loop.time() + SLOW_AFTER_S
        if self._timer is None:
            self._timer = loop.call_later(TICK_S, self._tick)

    def discard(self, wait: Slow) -> None:
        self._due.pop(wait, None)

    @staticmethod
    def arms_in_time(seconds_left: float) -> bool:
        """Whether a guard due in ``seconds_left`` can wait to be set up until its wait turns slow."""
        return seconds_left > SLOW_AFTER_S + TICK_S

    def _tick(self) -> None:
        loop = self._loop
        now = loop.time()
        due = self._due
        slow = []
        for wait, when in due.items():
            if when > now:
                break
            slow.append(wait)
        for wait in slow:
            del due[wait]
            try:
                wait.on_slow()
            except Exception:
                # One wait's guard failing to start must not leave the others unguarded.
                log.exception("setting up the guards of a slow wait failed")
        self._timer = loop.call_later(TICK_S, self._tick) if due else None


def slow_waits(loop: asyncio.AbstractEventLoop | None = None) -> SlowWaits:
    """The table of ``loop``, which must be the running event loop (found when not given)."""
    global _last
    if loop is None:
        loop = asyncio.get_running_loop()
    last_loop, table = _last
    if table is not None and last_loop() is loop:
        return table
    found = _by_loop.get(loop)
    if found is None:
        found = _by_loop[loop] = SlowWaits(loop)
    _last = (weakref.ref(loop), found)
    return found


# Weak: a table goes with its loop (tests run many loops). The last one used is found without a lookup.
_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SlowWaits] = weakref.WeakKeyDictionary()
_last: tuple[Callable[[], asyncio.AbstractEventLoop | None], SlowWaits | None] = (lambda: None, None)


class Deadline:
    """Cancels the current task at ``when`` (event-loop time), as ``asyncio.timeout_at`` does, but arms no
    timer until the wait turns slow, unless ``when`` is too near to wait for that.

    ``stop()`` when the guarded work is over; after a ``CancelledError``, ``absorbs()`` tells (and undoes)
    a cancellation that was the deadline's doing.
    """

    __slots__ = ("_cancelling", "_handle", "_table", "_task", "_when", "expired")

    def __init__(self, when: float, task: asyncio.Task[Any] | None = None) -> None:
        """Guard ``task``, the current task (found when not given)."""
        if task is None:
            task = current_task()
        self._task = task
        self._cancelling = task.cancelling()
        self._when = when
        self._handle: asyncio.TimerHandle | None = None
        self._table: SlowWaits | None = None
        self.expired = False
        loop = task.get_loop()
        if SlowWaits.arms_in_time(when - loop.time()):
            self._table = slow_waits(loop)
            self._table.add(self)
        else:
            self._handle = loop.call_at(when, self._expire)

    def on_slow(self) -> None:
        self._handle = self._task.get_loop().call_at(self._when, self._expire)

    def _expire(self) -> None:
        self.expired = True
        self._task.cancel()

    def stop(self) -> None:
        if self._table is not None:
            self._table.discard(self)
        if self._handle is not None:
            self._handle.cancel()

    def absorbs(self) -> bool:
        """After a CancelledError: True (and the cancellation undone) when the deadline caused it alone."""
        return self.expired and self._task.uncancel() <= self._cancelling
