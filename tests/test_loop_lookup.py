"""loop_lookup finds the current task as asyncio does, across loops run one after another in a thread
and loops running at once in different threads."""

from __future__ import annotations

import asyncio
import threading

import pytest
import uvloop

from tokenmux.loop_lookup import current_task, running_loop


async def both_ways() -> tuple[bool, bool]:
    await asyncio.sleep(0)
    return current_task() is asyncio.current_task(), running_loop() is asyncio.get_running_loop()


def test_it_is_asyncios_task_in_loop_after_loop_of_one_thread() -> None:
    for run in (asyncio.run, uvloop.run, asyncio.run):
        assert run(both_ways()) == (True, True)


def test_tasks_of_one_loop_are_told_apart() -> None:
    async def main() -> None:
        tasks = [asyncio.create_task(both_ways()) for _ in range(5)]
        assert await asyncio.gather(*tasks) == [(True, True)] * 5

    asyncio.run(main())


def test_loops_running_at_once_in_two_threads_each_find_their_own() -> None:
    results: list[bool] = []
    barrier = threading.Barrier(2)

    async def side() -> None:
        await asyncio.to_thread(barrier.wait, 10)  # both loops are running now
        for _ in range(100):
            results.append(current_task() is asyncio.current_task())
            await asyncio.sleep(0)

    threads = [threading.Thread(target=asyncio.run, args=(side(),)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [True] * 200


def test_outside_a_task_it_says_so() -> None:
    async def main() -> None:
        await asyncio.sleep(0)

    asyncio.run(main())  # a loop this thread ran, now stopped
    with pytest.raises(RuntimeError):
        current_task()
