"""slow_waits: guards set up only for the waits that last, and a deadline that arms no timer before then."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tokenmux.slow_waits import SLOW_AFTER_S, TICK_S, Deadline, SlowWaits, slow_waits

pytestmark = pytest.mark.timeout(10)


class Wait:
    def __init__(self) -> None:
        self.slow_at: float | None = None

    def on_slow(self) -> None:
        self.slow_at = asyncio.get_running_loop().time()


async def test_a_wait_that_lasts_is_told_once_it_has_lasted_slow_after_s() -> None:
    loop = asyncio.get_running_loop()
    table = slow_waits()
    wait = Wait()
    started = loop.time()
    table.add(wait)
    await asyncio.sleep(SLOW_AFTER_S + 2 * TICK_S)
    assert wait.slow_at is not None
    assert SLOW_AFTER_S <= wait.slow_at - started <= SLOW_AFTER_S + 2 * TICK_S


async def test_a_wait_that_ends_first_is_never_told() -> None:
    table = slow_waits()
    quick, slow = Wait(), Wait()
    table.add(quick)
    table.add(slow)
    table.discard(quick)
    await asyncio.sleep(SLOW_AFTER_S + 2 * TICK_S)
    assert quick.slow_at is None and slow.slow_at is not None


async def test_waits_are_told_in_the_order_they_began() -> None:
    table = slow_waits()
    first, second = Wait(), Wait()
    table.add(first)
    await asyncio.sleep(0.1)
    table.add(second)
    await asyncio.sleep(SLOW_AFTER_S + 2 * TICK_S)
    assert first.slow_at is not None and second.slow_at is not None
    assert first.slow_at < second.slow_at


async def test_one_failing_guard_does_not_keep_the_others_from_being_set_up(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        def on_slow(self) -> None:
            raise RuntimeError("boom")

    table = slow_waits()
    wait = Wait()
    table.add(Broken())
    table.add(wait)
    with caplog.at_level(logging.ERROR, logger="tokenmux"):
        await asyncio.sleep(SLOW_AFTER_S + 2 * TICK_S)
    assert wait.slow_at is not None
    assert "slow wait failed" in caplog.text


async def test_each_event_loop_has_its_own_table() -> None:
    here = slow_waits()
    assert slow_waits() is here

    async def elsewhere() -> SlowWaits:
        return slow_waits()

    other = await asyncio.to_thread(asyncio.run, elsewhere())
    assert other is not here


@pytest.mark.parametrize("after_s", [0.1, 0.6])  # armed at once, armed once the wait turns slow
async def test_a_deadline_cancels_the_task_on_time_and_says_it_did(after_s: float) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    guard = Deadline(started + after_s)
    with pytest.raises(asyncio.CancelledError):
        try:
            await asyncio.Event().wait()
        finally:
            guard.stop()
    elapsed = loop.time() - started
    assert after_s <= elapsed < after_s + 0.1
    assert guard.expired and guard.absorbs()
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_deadline_that_is_not_reached_leaves_the_task_alone() -> None:
    guard = Deadline(asyncio.get_running_loop().time() + 0.6)
    await asyncio.sleep(SLOW_AFTER_S + 2 * TICK_S)  # long enough for its timer to be armed
    guard.stop()
    await asyncio.sleep(0.5)  # past the deadline: the disarmed timer must not fire
    assert not guard.expired


async def test_a_cancellation_from_elsewhere_is_not_the_deadlines() -> None:
    async def guarded() -> bool:
        guard = Deadline(asyncio.get_running_loop().time() + 5.0)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return guard.absorbs()
        finally:
            guard.stop()
        return True

    task = asyncio.ensure_future(guarded())
    await asyncio.sleep(0.05)
    task.cancel()
    assert await task is False
