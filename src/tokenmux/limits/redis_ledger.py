"""The ledger of key limits kept in Redis, so every replica enforces one set of limits.

Admission is one script run (``redis_ledger_scripts.ADMIT``): one round trip checks concurrency, requests and tokens
per minute, credit and budget, and takes the reservation. A key's spend is seeded from the request log the
first time Redis is asked about it (``redis_ledger_scripts.SEED``; a replica that seeds second changes nothing).
Settlements are queued and sent in pipelined batches by a background task, so the response path never
waits on them; until a settlement lands its reservation still counts, so the delay can only refuse early,
never overspend. A settlement carries its generation id and is charged at most once however often it is
retried. A request of a key with a concurrency limit is settled at once instead, written to Redis as its
response ends and before this process reads another request, so a client that waits for its answers
before sending more is never refused for a slot it has given back.

Holds are leases: this replica renews those of its requests in flight every ``lease_s / 4`` (``RENEW``,
which also takes them again in a Redis that restarted empty), so the holds of a replica that died lapse
within ``lease_s``. An admission whose call failed or timed out (the script may still run in Redis) is
released by its id: the release is queued like a settlement, and one that arrives first leaves a tombstone
that refuses the admission when it comes.

If Redis fails or does not answer within ``gateway.redis_timeout_s``: requests are admitted by this
replica's own books (``LocalLedger``), seeded with the last figures Redis gave (or the request log), and
settlements wait in the queue until Redis is back. Limits then hold per replica: with N replicas a key can
spend up to N times its remaining credit during the outage. This is the stated policy (README "Faults").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from tokenmux.errors import RedisUnavailable
from tokenmux.limits import redis_ledger_scripts as scripts
from tokenmux.limits.key_limits import KeyLimits
from tokenmux.limits.ledger import (
    Admission,
    Ledger,
    LocalLedger,
    Spend,
    SpendSource,
    insufficient,
    too_many,
)
from tokenmux.limits.money import period_end, period_id, period_start
from tokenmux.limits.window import weighted_count
from tokenmux.redis.link import RedisLink
from tokenmux.redis.resp import RespClient, Script

log = logging.getLogger(__name__)

_BATCH = 500


def prefix(key_id: str) -> str:
    return f"tm:{{{key_id}}}:"


@dataclass(slots=True)
class _Settlement:
    key_id: str
    generation_id: str
    admission_id: str
    cost: int
    tokens: int
    period: str


class RedisLedger(Ledger):
    def __init__(
        self,
        link: RedisLink,
        source: SpendSource,
        *,
        settle_interval_s: float = 0.02,
        lease_s: float = 20.0,
    ) -> None:
        self.link = link
        self._source = source
        self._settle_interval_s = settle_interval_s
        self._lease_ms = round(lease_s * 1000)
        self._queue: deque[_Settlement] = deque()
        # This replica's shared holds of requests in flight, admission id -> (key id, units reserved): the
        # leases the heartbeat renews.
        self._mine: dict[str, tuple[str, int]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._sending: set[asyncio.Task[None]] = set()  # settlements written at once, until they land
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # The last spend Redis reported per key, (all time, period id, period spend): the local fallback
        # starts from these.
        self._known: dict[str, tuple[int, str | None, int]] = {}
        self._local = LocalLedger(self._known_or_logged)
        # Sent by digest (EVALSHA), loaded again when a restarted Redis has forgotten them.
        self._admit_script = Script(scripts.ADMIT)
        self._reserve_script = Script(scripts.RESERVE)
        self._settle_script = Script(scripts.SETTLE)
        self._seed_script = Script(scripts.SEED)
        self._standing_script = Script(scripts.STANDING)
        self._renew_script = Script(scripts.RENEW)

    # -- admission ----------------------------------------------------------------------------------

    async def admit(self, limits: KeyLimits, reserve: int) -> Admission:
        if self.link.up:
            try:
                return await self._admit_shared(limits, reserve)
            except RedisUnavailable:
                pass
        return await self._local.admit(limits, reserve)

    async def _admit_shared(self, limits: KeyLimits, reserve: int) -> Admission:
        now = time.time()
        pid = period_id(limits.budget_period, now) if limits.budget_period else None
        admission = Admission(
            f"adm-{_new_id()}", limits.key_id, reserve, pid, shared=True, slot=limits.concurrency is not None
        )
        args: list[str | int] = [
            prefix(limits.key_id),
            admission.id,
            reserve,
            _units(limits.credit_usd),
            _units(limits.budget_usd),
            pid or "",
            _count(limits.rpm),
            _count(limits.tpm),
            _count(limits.concurrency),
            self._lease_ms,
        ]
        for _ in range(2):
            try:
                reply = await self.link.call(lambda r: r.run(self._admit_script, *args))
            except (asyncio.CancelledError, RedisUnavailable):
                # The client went away or Redis did not answer in time: the script may still take the
                # reservation, so release it by its id (a tombstone if it was not taken yet).
                self._queue.append(
                    _Settlement(limits.key_id, f"release-{admission.id}", admission.id, 0, 0, "")
                )
                raise
            verdict = _text(reply[0])
            if verdict == "seed":
                await self._seed(limits.key_id, pid, now)
                continue
            if verdict == "ok":
                self._mine[admission.id] = (limits.key_id, reserve)
                self._remember(limits.key_id, reply, pid)
                if not self._local.empty:
                    # Redis is back: the fallback's books start over from its figures at the next outage.
                    self._local = LocalLedger(self._known_or_logged)
                return admission
            if verdict == "gone":  # pragma: no cover - ids are new per call, so only a late copy meets it
                raise RedisUnavailable("the admission was released before it was taken")
            if verdict in ("concurrency", "rpm", "tpm"):
                raise too_many(limits, verdict, float(_text(reply[1])))
            self._remember(limits.key_id, reply, pid)
            insufficient(limits, int(reply[1]), int(reply[2]), int(reply[3]), reserve)
            raise AssertionError("the script refused a reservation the limits allow")  # pragma: no cover
        raise RedisUnavailable("the key's spend could not be seeded in Redis")

    async def reserve(self, admission: Admission, limits: KeyLimits, amount: int) -> None:
        if not admission.shared:
            await self._local.reserve(admission, limits, amount)
            return
        try:
            await self._reserve_shared(admission, limits, amount)
        except RedisUnavailable:
            # The hold is in Redis, out of reach: checked against the last figures Redis gave, not held
            # (the over-spend bound of an outage, README "Faults").
            known = self._known.get(limits.key_id)
            if known is not None:
                insufficient(limits, known[0], known[2], 0, amount)

    async def _reserve_shared(self, admission: Admission, limits: KeyLimits, amount: int) -> None:
        args: list[str | int] = [
            prefix(limits.key_id),
            admission.id,
            amount,
            _units(limits.credit_usd),
            _units(limits.budget_usd),
            admission.period or "",
        ]
        for _ in range(2):
            reply = await self.link.call(lambda r: r.run(self._reserve_script, *args))
            verdict = _text(reply[0])
            if verdict == "seed":
                await self._seed(limits.key_id, admission.period, time.time())
                continue
            if verdict == "ok":
                admission.reserved += amount
                return
            if verdict == "gone":
                return
            self._remember(limits.key_id, reply, admission.period)
            insufficient(limits, int(reply[1]), int(reply[2]), int(reply[3]), amount)
            raise AssertionError("the script refused a reservation the limits allow")  # pragma: no cover
        raise RedisUnavailable("the key's spend could not be seeded in Redis")

    async def _seed(self, key_id: str, pid: str | None, now: float) -> None:
        total = await self._source(key_id, None)
        period_spent = 0
        left = 0
        if pid is not None:
            period = pid.split(":", 1)[0]
            period_spent = await self._source(key_id, period_start(period, now).isoformat())
            left = int(period_end(period, now).timestamp() - now)
        args: list[str | int] = [prefix(key_id), total, pid or "", period_spent, left]
        await self.link.call(lambda r: r.run(self._seed_script, *args))

    def _remember(self, key_id: str, reply: list[Any], pid: str | None) -> None:
        self._known[key_id] = (int(reply[1]), pid, int(reply[2]))

    async def _known_or_logged(self, key_id: str, since_day: str | None) -> int:
        known = self._known.get(key_id)
        if known is not None:
            if since_day is None:
                return known[0]
            if known[1] is not None and known[1].endswith(since_day):
                return known[2]
        return await self._source(key_id, since_day)

    # -- settlement ---------------------------------------------------------------------------------

    def settle(
        self, admission: Admission | None, key_id: str, generation_id: str, cost: int, tokens: int
    ) -> None:
        # The fallback's books must see every charge made while they are in use.
        local = None if admission is None or admission.shared else admission
        self._local.settle(local, key_id, generation_id, cost, tokens)
        settlement = _Settlement(
            key_id,
            generation_id,
            admission.id if admission is not None else "",
            cost,
            tokens,
            (admission.period or "") if admission is not None else "",
        )
        if admission is not None and admission.shared:
            self._mine.pop(admission.id, None)
            if admission.slot and self.link.up:
                # Its slot must be free before this client can ask again: the task's first step writes the
                # settlement to Redis before the event loop reads another request.
                task = asyncio.get_running_loop().create_task(self._settle_now(settlement))
                self._sending.add(task)
                task.add_done_callback(self._sending.discard)
                return
        self._queue.append(settlement)
        if len(self._queue) >= _BATCH:
            self._wake.set()

    async def _settle_now(self, settlement: _Settlement) -> None:
        s = settlement
        args = (prefix(s.key_id), s.generation_id, s.admission_id, s.cost, s.tokens, s.period)
        try:
            await self.link.call(lambda r: r.run(self._settle_script, *args))
        except RedisUnavailable:
            self._queue.append(settlement)  # idempotent: sent again with the others
        except asyncio.CancelledError:
            self._queue.append(settlement)
            raise

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="tokenmux-settle")
        self._heartbeat = asyncio.create_task(self._renew_leases(), name="tokenmux-leases")

    async def close(self) -> None:
        self._closing = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
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
        backoff = self._settle_interval_s
        while True:
            if not self._queue:
                if self._closing:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._settle_interval_s)
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
            backoff = self._settle_interval_s
            for _ in batch:
                self._queue.popleft()

    async def _send(self, r: RespClient, batch: list[_Settlement]) -> None:
        replies = await r.run_many(
            self._settle_script,
            [(prefix(s.key_id), s.generation_id, s.admission_id, s.cost, s.tokens, s.period) for s in batch],
        )
        failed = next((reply for reply in replies if isinstance(reply, Exception)), None)
        if failed is not None:
            # Settlements are idempotent: the whole batch is sent again, those already in are no-ops.
            raise failed

    @property
    def pending_settlements(self) -> int:
        return len(self._queue) + len(self._sending)

    # -- leases -------------------------------------------------------------------------------------

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 4000)
            await self.renew_leases()

    async def renew_leases(self) -> int:
        """Extend the leases of this replica's holds (taking again those Redis lost); how many were taken
        again. Never raises: a beat that fails is followed by the next."""
        by_key: dict[str, list[str | int]] = {}
        for admission_id, (key_id, reserve) in self._mine.items():
            by_key.setdefault(key_id, [prefix(key_id), self._lease_ms]).extend((admission_id, reserve))
        if not by_key or not self.link.up:
            return 0
        arg_lists = list(by_key.values())
        try:
            replies = await self.link.call(lambda r: r.run_many(self._renew_script, arg_lists))
        except RedisUnavailable:
            return 0
        return sum(r for r in replies if isinstance(r, int))

    # -- standing -----------------------------------------------------------------------------------

    async def spend(self, limits: KeyLimits) -> Spend:
        try:
            return await self._spend_shared(limits)
        except RedisUnavailable:
            return await self._local.spend(limits)

    async def _spend_shared(self, limits: KeyLimits) -> Spend:
        now = time.time()
        pid = period_id(limits.budget_period, now) if limits.budget_period else None
        args = [prefix(limits.key_id), pid or ""]
        reply = await self.link.call(lambda r: r.run(self._standing_script, *args))
        if reply[0] is None or (pid is not None and reply[1] is None):
            await self._seed(limits.key_id, pid, now)
            reply = await self.link.call(lambda r: r.run(self._standing_script, *args))
        elapsed = float(_text(reply[8]))
        return Spend(
            spent=int(reply[0] or 0),
            period_spent=int(reply[1] or 0) if pid is not None else None,
            reserved=int(reply[2]),
            in_flight=int(reply[3]),
            requests_last_minute=weighted_count(int(reply[4]), int(reply[5]), elapsed),
            tokens_last_minute=weighted_count(int(reply[6]), int(reply[7]), elapsed),
        )

    def forget(self, key_id: str) -> None:
        self._known.pop(key_id, None)
        self._local.forget(key_id)

    @property
    def state(self) -> str:
        return "shared" if self.link.up else "shared-unavailable"


def _units(usd: float | None) -> int:
    return -1 if usd is None else round(usd * 1e9)


def _count(limit: int | None) -> int:
    return -1 if limit is None else limit


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _new_id() -> str:
    return secrets.token_hex(10)
