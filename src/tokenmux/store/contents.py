"""Prompts and answers of the keys that opted in, and the cleanup that enforces their retention.

Nothing is kept by default: a key's ``prompt_retention_days`` must be set (``tokenmux keys update KEY
--retain-prompts-days N``) for its generations' messages and answers to be written, and a cleanup pass
(every ``interval_s``, and at start) deletes what is older than the key's period. A key whose opt-in was
removed, or that was revoked, loses all of them at the next pass.

Writes are batched off the response path like the request log's; while the database is down they wait in
memory (at most ``max_pending``, the oldest dropped first: these are a convenience, the request log is the
record of account).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from tokenmux.errors import StoreError
from tokenmux.store.base import Store
from tokenmux.store.records import ContentRecord

log = logging.getLogger(__name__)

DAY_S = 86_400


class ContentKeeper:
    def __init__(
        self,
        store: Store,
        *,
        flush_interval_s: float = 0.5,
        cleanup_interval_s: float = 3600.0,
        max_pending: int = 10_000,
    ) -> None:
        self._store = store
        self._flush_interval_s = flush_interval_s
        self._cleanup_interval_s = cleanup_interval_s
        self._pending: deque[ContentRecord] = deque(maxlen=max_pending)
        self._tasks: list[asyncio.Task[None]] = []

    def keep(self, record: ContentRecord) -> None:
        self._pending.append(record)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._flushing(), name="tokenmux-contents"),
            asyncio.create_task(self._cleaning(), name="tokenmux-retention"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(StoreError):
            await self.flush()

    async def flush(self) -> None:
        batch = list(self._pending)
        if not batch:
            return
        await self._store.write_contents(batch)
        for _ in batch:
            self._pending.popleft()

    async def cleanup(self, now: float | None = None) -> int:
        """Delete every stored prompt past its key's retention; return how many went."""
        now = time.time() if now is None else now
        retention = {
            k.id: k.prompt_retention_days for k in await self._store.list_keys() if k.revoked_at is None
        }
        removed = 0
        for key_id in await self._store.content_key_ids():
            days = retention.get(key_id)
            before = float("inf") if days is None else now - days * DAY_S
            removed += await self._store.purge_contents(key_id, before)
        if removed:
            log.info("retention cleanup deleted %d stored prompts", removed)
        return removed

    async def _flushing(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval_s)
            try:
                await self.flush()
            except StoreError as exc:
                log.warning("could not store prompts (kept in memory, retrying): %s", exc)

    async def _cleaning(self) -> None:
        while True:
            try:
                await self.cleanup()
            except StoreError as exc:
                log.warning("retention cleanup failed (retrying later): %s", exc)
            await asyncio.sleep(self._cleanup_interval_s)
