"""Endpoint cooldowns and open circuits shared by replicas through one Redis hash.

When this replica puts an endpoint in cooldown (a provider's 429 with Retry-After) or opens its circuit,
it writes ``endpoint|kind -> until`` (unix ms) to the hash ``tm:health``. Every replica reads the hash every
``poll_s`` and applies what is still in the future to its own ``HealthBoard``, so routing never waits on
Redis: a decision is a local read, and one replica's lesson reaches the others within ``poll_s``.
With Redis unavailable each replica keeps learning on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from tokenmux.errors import RedisUnavailable
from tokenmux.redis.link import RedisLink
from tokenmux.redis.resp import RespClient
from tokenmux.routing.health import HealthBoard

log = logging.getLogger(__name__)

HASH = "tm:health"


class SharedHealth:
    def __init__(self, link: RedisLink, board: HealthBoard, *, poll_s: float = 0.25) -> None:
        self.link = link
        self.board = board
        self.poll_s = poll_s
        self._outbox: dict[str, int] = {}  # field -> until (unix ms), written at the next poll
        self._task: asyncio.Task[None] | None = None
        board.on_block = self._blocked

    def _blocked(self, endpoint: str, kind: str, until: float) -> None:
        until_ms = int((time.time() + (until - self.board.clock())) * 1000)
        field = f"{endpoint}|{kind}"
        self._outbox[field] = max(until_ms, self._outbox.get(field, 0))

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tokenmux-shared-health")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisUnavailable):
            await self.sync()  # what was learnt last still reaches the others

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(RedisUnavailable):
                await self.sync()
            await asyncio.sleep(self.poll_s)

    async def sync(self) -> None:
        """Publish what this replica learnt, then take in what every replica knows."""
        outbox, self._outbox = self._outbox, {}
        try:
            entries = await self.link.call(lambda r: self._exchange(r, outbox))
        except RedisUnavailable:
            for field, until in outbox.items():  # try again at the next poll
                self._outbox[field] = max(until, self._outbox.get(field, 0))
            raise
        now_ms = time.time() * 1000
        offset = self.board.clock() - now_ms / 1000
        lapsed = []
        for raw_field, raw_until in entries.items():
            field = raw_field.decode() if isinstance(raw_field, bytes) else str(raw_field)
            until_ms = int(raw_until)
            if until_ms <= now_ms:
                lapsed.append(field)
                continue
            endpoint, _, kind = field.rpartition("|")
            self.board.apply_shared(endpoint, kind, until_ms / 1000 + offset)
        if lapsed:
            with contextlib.suppress(RedisUnavailable):
                await self.link.call(lambda r: r.call("HDEL", HASH, *lapsed))

    @staticmethod
    async def _exchange(r: RespClient, outbox: dict[str, int]) -> dict[bytes, bytes]:
        # The latest lesson about an endpoint wins; a lapsed one is pruned by whoever reads it next.
        commands: list[tuple[str | int, ...]] = [
            ("HSET", HASH, field, until) for field, until in outbox.items()
        ]
        commands.append(("HGETALL", HASH))
        replies = await r.pipeline(commands)
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        flat = replies[-1]
        return dict(zip(flat[::2], flat[1::2], strict=True))
