"""Work on one large request that would hold the event loop too long: decoding its body, counting its
prompt's tokens.

It runs in one worker thread, one request after another. The GIL is held by whichever thread runs Python,
and msgspec holds it through a whole decode, so a thread does not make the work cheaper; what it changes is
that the loop takes the GIL back between the worker's steps (every few ms) and serves every other client
meanwhile, where on the loop nothing else would run until the work ends. One worker rather than many:
each more thread holding the GIL would take another share of the loop's time.

Small bodies are decoded on the loop: a thread hop costs more than their decode.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

# Above this a body's decode, or its prompt's count, may take more than a few ms.
LARGE_BODY_BYTES = 1024 * 1024

_worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenmux-large-request")


async def off_loop(fn: Callable[..., T], *args: object) -> T:
    """``fn(*args)`` in the large-request worker."""
    return await asyncio.get_running_loop().run_in_executor(_worker, fn, *args)
