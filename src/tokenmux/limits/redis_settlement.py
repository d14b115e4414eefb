"""Settlements on their way to the shared ledger in Redis, and again after Redis has lost them.

A settlement is queued and sent in pipelined batches by a background task, so the response path never
waits on it; until it lands its reservation still counts, so the delay can only refuse early, never
overspend. One that frees a concurrency slot is written at once instead (``send_now``). Each carries its
generation id and is charged at most once however often it is sent (``redis_ledger_scripts.SETTLE``).

Redis can lose settlements that landed: it restarts empty (or is flushed) before their generations'
records reach the request log, which seeds the figures again. So a landed settlement is kept until its
record is written (``logged``) and a check of Redis's *epoch* (a random value that only an emptied Redis
lacks) has passed since: when the epoch has changed, every settlement kept is sent again. Sending again is
safe whatever happened meanwhile: one still in Redis is a no-op, one the seed read from the log is skipped
(the seed names the generations it counted), and one for a key not seeded yet waits in Redis for the seed,
which adds it unless the log has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from tokenmux.errors import RedisUnavailable
from tokenmux.limits import redis_ledger_scripts as scripts
from tokenmux.redis.link import RedisLink
from tokenmux.redis.resp import RespClient, Script

log = logging.getLogger(__name__)

_BATCH = 500
# Settlements kept for sending again, at most; beyond it the oldest are let go (their records are most
# likely in the log long since).
_KEPT = 200_000
EPOCH_KEY = "tm:epoch"


def prefix(key_id: str) -> str:
    return f"tm:{{{key_id}}}:"


@dataclass(slots=True)
class Settlement:
    key_id: str
    generation_id: str
    admission_id: str  # "" for a key that was not admitted (no limits)
    cost: int
    tokens: int
    period: str
    at: float  # when the request ended (unix seconds)

    def args(self) -> tuple[str | int | float, ...]:
        return (
            prefix(self.key_id),
            self.generation_id,
            self.admission_id,
            self.cost,
            self.tokens,
            self.period,
            repr(self.at),
            1 if self.admission_id else 0,
        )

    @property
    def is_release(self) -> bool:
        """Only gives back a hold (an admission that timed out): nothing to send again."""
        return self.generation_id.startswith("release-")


def release(key_id: str, admission_id: str) -> Settlement:
    """The release by id of an admission whose call failed or timed out."""
    return Settlement(key_id, f"release-{admission_id}", admission_id, 0, 0, "", time.time())


class Settlements:
    def __init__(self, link: RedisLink, *, interval_s: float = 0.02, keep_s: float = 300.0) -> None:
        self.link = link
        self._interval_s = interval_s
        self._keep_s = keep_s
        self._queue: deque[Settlement] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()  # written at once, until they land
        self._closing = False
        self._script = Script(scripts.SETTLE)
        self._epoch_script = Script(scripts.EPOCH)
        # Landed (and when, monotonic), kept until their record is in the log and an epoch check has
        # passed since both.
        self._landed: dict[str, tuple[Settlement, float]] = {}
        # Generations whose records are in the log, and when that was known (monotonic).
        self._logged: dict[str, float] = {}
        self._epoch: str | None = None

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._sending)

    def queued(self) -> list[Settlement]:
        return list(self._queue)

    def add(self, settlement: Settlement) -> None:
        self._queue.append(settlement)
        if len(self._queue) >= _BATCH:
            self._wake.set()

    def send_now(self, settlement: Settlement) -> None:
        """Write it to Redis before this process reads another request (the task's first step runs
        before the event loop next polls its sockets); queued if Redis does not take it."""
        if not self.link.up:
            self.add(settlement)
            return
        task = asyncio.get_running_loop().create_task(self._send_one(settlement))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def push(self, key_id: str) -> bool:
        """Send the queued settlements of ``key_id`` that give back an admission's hold now, and wait until
        Redis has them; True when there were some and they landed. They stay queued: the background
        sender sends them again, which changes nothing (and leaves its batch, read from the queue's head,
        as it was)."""
        holds = [s for s in self._queue if s.key_id == key_id and s.admission_id]
        if not holds:
            return False
        try:
            await self.link.call(lambda r: self._send(r, holds))
        except RedisUnavailable:
            return False
        return True

    async def _send_one(self, settlement: Settlement) -> None:
        args = settlement.args()
        try:
            await self.link.call(lambda r: r.run(self._script, *args))
        except RedisUnavailable:
            self.add(settlement)  # idempotent: sent again with the others
            return
        except asyncio.CancelledError:
            self.add(settlement)
            raise
        self._keep((settlement,))

    def logged(self, generation_ids: Iterable[str]) -> None:
        """These generations' records are in the request log (the recorder's listener)."""
        now = time.monotonic()
        for generation_id in generation_ids:
            self._logged[generation_id] = now

    def _keep(self, sent: Iterable[Settlement]) -> None:
        now = time.monotonic()
        for s in sent:
            if not s.is_release:
                self._landed[s.generation_id] = (s, now)
        while len(self._landed) > _KEPT:
            del self._landed[next(iter(self._landed))]

    async def check_epoch(self) -> bool:
        """Ask Redis for its epoch; when it changed (Redis lost its data), send every kept settlement again.
        Then let go of those whose records were in the log before the check. True if it changed."""
        checked_at = time.monotonic()
        fresh = secrets.token_hex(8)
        try:
            epoch = await self.link.call(lambda r: r.run(self._epoch_script, EPOCH_KEY, fresh))
        except RedisUnavailable:
            return False
        epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        changed = self._epoch is not None and epoch != self._epoch
        self._epoch = epoch
        if changed:
            log.warning(
                "Redis at %s lost its data; sending %d recent settlements again",
                self.link.where,
                len(self._landed),
            )
            self._queue.extend(s for s, _ in self._landed.values())
            self._wake.set()
        # Landed and logged before the check, whose epoch had not changed: a later seed reads them.
        for generation_id, logged_at in list(self._logged.items()):
            kept = self._landed.get(generation_id)
            if kept is not None and logged_at <= checked_at and kept[1] <= checked_at:
                del self._landed[generation_id]
                del self._logged[generation_id]
            elif kept is None and logged_at < checked_at - self._keep_s:
                del self._logged[generation_id]  # never settled here (another route, or long lost)
        too_old = time.time() - self._keep_s
        for generation_id in [g for g, (s, _) in self._landed.items() if s.at < too_old]:
            del self._landed[generation_id]
        return changed

    # -- the background sender ------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tokenmux-settle")

    async def close(self) -> None:
        self._closing = True
        if self._sending:
            await asyncio.wait(list(self._sending))
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._queue:
            log.warning(
                "%d settlements could not reach Redis at %s before shutdown; their charges are in the "
                "request log, which seeds the figures again if Redis loses them",
                len(self._queue),
                self.link.where,
            )

    async def _run(self) -> None:
        backoff = self._interval_s
        while True:
            if not self._queue:
                if self._closing:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._interval_s)
                self._wake.clear()
                continue
            batch = [self._queue[i] for i in range(min(_BATCH, len(self._queue)))]
            try:
                await self.link.call(lambda r, batch=batch: self._send(r, batch))  # type: ignore[misc]
            except RedisUnavailable:
                if self._closing:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = self._interval_s
            for _ in batch:
                self._queue.popleft()
            self._keep(batch)

    async def _send(self, r: RespClient, batch: list[Settlement]) -> None:
        replies = await r.run_many(self._script, [s.args() for s in batch])
        failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
        if failed is not None:
            # Settlements are idempotent: the whole batch is sent again, those already in are no-ops.
            raise failed
