"""The running event loop and the current task, found without a system call.

On CPython 3.11 ``asyncio.get_running_loop()`` (and so ``asyncio.current_task()`` without a loop) calls
``getpid()`` every time, to notice a fork; on the virtual machines this runs on a system call costs
microseconds, and the request path asked several times per request. A thread runs at most one event
loop at a time, so the loop is remembered per thread once found, and a remembered loop is trusted only
while it has a current task: a loop that has stopped has none, and then the lookup is made afresh.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

_loops: dict[int, asyncio.AbstractEventLoop] = {}  # by thread: the loop it last ran


def current_task() -> asyncio.Task[Any]:
    """The task running now (called from a coroutine of a task, as ``asyncio.current_task()``)."""
    thread = threading.get_ident()
    loop = _loops.get(thread)
    if loop is not None:
        task = asyncio.current_task(loop)
        if task is not None:
            return task
    loop = _loops[thread] = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    if task is None:
        raise RuntimeError("no task is running: current_task() is for coroutines run by a task")
    return task


def running_loop() -> asyncio.AbstractEventLoop:
    """The running event loop (called from a coroutine of a task, as ``asyncio.get_running_loop()``)."""
    return current_task().get_loop()
