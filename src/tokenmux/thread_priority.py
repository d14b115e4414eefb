"""Background threads give way to the event loop's thread when they compete for a core.

The gateway answers requests on one thread, the event loop's. Its other threads do work no request waits
on as it runs: the request log's writer (SQLite's work on every record, a batch every 50 ms) and the
readers behind the pages and the live figures. On a machine with few cores a batch competes with the loop
for a core, and a request arriving then waits while the scheduler runs the writer. Lowered by
``NICE_INCREMENT``, those threads still get every core the loop leaves idle, and lose to it when both
want one.

Measured (``bench/run.py``'s request at concurrency 1 on 2 cores, 4,000 requests, alternating runs):
p99 1.7-2.2 ms with the writer at nice +10, 2.7-3.0 ms at the loop's own priority; p50 unchanged.

Linux only: there each thread is a task with an id of its own, and ``setpriority`` on that id changes that
one thread. Elsewhere the same call would name a process, or nothing, so nothing is changed.
"""

from __future__ import annotations

import os
import sys
import threading

NICE_INCREMENT = 10
_LOWEST = 19  # the highest nice value, the lowest priority


def lower_this_thread(increment: int = NICE_INCREMENT) -> bool:
    """Lower the calling thread's scheduling priority by ``increment`` nice steps (never above 19);
    whether it was lowered."""
    if not sys.platform.startswith("linux"):
        return False
    tid = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(_LOWEST, current + increment))
    except OSError:  # a sandbox that refuses it: run at the same priority
        return False
    return True
