"""The ledger of key limits kept in Redis, so every replica enforces one set of limits.

Admission is one script run (``redis_ledger_scripts.ADMIT``): one round trip checks concurrency, requests and tokens
per minute, credit and budget, and takes the reservation. A key's spend is seeded from the request log the
first time Redis is asked about it (``redis_ledger_scripts.SEED``; a replica that seeds second changes nothing).
The seed names the generations it counted, so that a settlement of one of them, still on its way, is not
charged on top (``redis_settlement.py`` sends settlements, and again when Redis lost them): spend stays
equal to the request log through a Redis restart, unless the database lagged more than ``keep_s`` behind
at the same time.

A request of a key with a concurrency limit is settled at once, written to Redis as its response ends and
before this process reads another request, so a client that waits for its answers before sending more is
never refused for a slot it has given back.

Holds are leases: this replica renews those of its requests in flight every ``lease_s / 4`` (``RENEW``,
which also takes them again in a Redis that restarted empty), so the holds of a replica that died lapse
within ``lease_s``. An admission whose call failed or timed out (the script may still run in Redis) is
released by its id: the release is queued like a settlement, and one that arrives first leaves a tombstone
that refuses the admission when it comes.

If Redis fails or does not answer within ``gateway.redis_timeout_s``: requests are admitted by this
replica's own books (``LocalLedger``), which start from the spend and the holds Redis last reported (or
the request log), and settlements wait until Redis is back. Limits then hold per replica: N replicas spend
at most N times the credit that was neither spent nor held. This is the stated policy (README "Replicas
and faults"). A seed that cannot read the database is not made: the key is admitted by the local books
from the figures last known, or refused with 503 ``database_unavailable`` when there are none.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import Any

from tokenmux.errors import DatabaseUnavailable, RedisUnavailable
from tokenmux.limits import redis_ledger_scripts as scripts
from tokenmux.limits.key_limits import KeyLimits
from tokenmux.limits.ledger import (
    Admission,
    Ledger,
    LocalLedger,
    LogReads,
    Seed,
    SeedSource,
    Spend,
    SpendSource,
    insufficient,
    too_many,
)
from tokenmux.limits.money import period_end, period_id, period_start
from tokenmux.limits.redis_settlement import Settlement, Settlements, prefix, release
from tokenmux.limits.window import weighted_count
from tokenmux.redis.link import RedisLink
from tokenmux.redis.resp import Script

__all__ = ["RedisLedger", "prefix"]


class RedisLedger(Ledger):
    def __init__(
        self,
        link: RedisLink,
        source: SpendSource,
        *,
        seed_source: SeedSource | None = None,
        settle_interval_s: float = 0.02,
        lease_s: float = 20.0,
        keep_s: float = 300.0,
        longest_request_s: float = 600.0,
    ) -> None:
        self.link = link
        reads = LogReads()
        self._source = reads.spend(source)
        self._seed_source = reads.seed(seed_source) if seed_source is not None else None
        self._lease_ms = round(lease_s * 1000)
        # A settlement of a request that ended more than keep_s before a seed is taken as counted by it.
        self._keep_s = keep_s
        self._longest_request_s = longest_request_s
        self.settlements = Settlements(link, interval_s=settle_interval_s, keep_s=keep_s)
        # This replica's shared holds of requests in flight, admission id -> (key id, units reserved): the
        # leases the heartbeat renews.
        self._mine: dict[str, tuple[str, int]] = {}
        self._heartbeat: asyncio.Task[None] | None = None
        self._beat_now = asyncio.Event()
        # The last figures Redis reported per key, (all time, period id, period spend, held by requests in
        # flight): the local fallback starts from these.
        self._known: dict[str, tuple[int, str | None, int, int]] = {}
        self._local = self._new_local()
        # Sent by digest (EVALSHA), loaded again when a restarted Redis has forgotten them.
        self._admit_script = Script(scripts.ADMIT)
        self._reserve_script = Script(scripts.RESERVE)
        self._seed_script = Script(scripts.SEED)
        self._standing_script = Script(scripts.STANDING)
        self._renew_script = Script(scripts.RENEW)

    def _new_local(self) -> LocalLedger:
        return LocalLedger(self._known_or_logged, held_elsewhere=self._held_elsewhere)

    # -- admission ----------------------------------------------------------------------------------

    async def admit(self, limits: KeyLimits, reserve: int) -> Admission:
        if self.link.up:
            try:
                return await self._admit_shared(limits, reserve)
            except (RedisUnavailable, DatabaseUnavailable):
                pass  # Redis is unavailable, or the key cannot be seeded in it now
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
        seeded = pushed = False
        while True:
            try:
                reply = await self.link.call(lambda r: r.run(self._admit_script, *args))
            except (asyncio.CancelledError, RedisUnavailable):
                # The client went away or Redis did not answer in time: the script may still take the
                # reservation, so release it by its id (a tombstone if it was not taken yet).
                self.settlements.add(release(limits.key_id, admission.id))
                raise
            verdict = _text(reply[0])
            if verdict == "seed":
                if seeded:
                    raise RedisUnavailable("the key's spend could not be seeded in Redis")
                seeded = True
                await self._seed(limits.key_id, pid, now)
                continue
            if verdict == "ok":
                self._mine[admission.id] = (limits.key_id, reserve)
                self._remember(limits.key_id, reply, pid)
                if not self._local.empty:
                    # Redis is back: the fallback's books start over from its figures at the next outage.
                    self._local = self._new_local()
                return admission
            if verdict == "gone":  # pragma: no cover - ids are new per call, so only a late copy meets it
                raise RedisUnavailable("the admission was released before it was taken")
            if verdict == "concurrency" and not pushed:
                # Slots this replica has given back may still be queued for Redis (held back by a hiccup
                # of the link, or waiting for the next batch): this key's own client, asking again as its
                # last answer ended, must not be refused for them. A refusal takes nothing, so ask again.
                pushed = True
                if await self.settlements.push(limits.key_id):
                    continue
            if verdict in ("concurrency", "rpm", "tpm"):
                raise too_many(limits, verdict, float(_text(reply[1])))
            self._remember(limits.key_id, reply, pid)
            insufficient(limits, int(reply[1]), int(reply[2]), int(reply[3]), reserve)
            raise AssertionError("the script refused a reservation the limits allow")  # pragma: no cover

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
                insufficient(limits, known[0], known[2], known[3], amount)

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
                if admission.id in self._mine:  # what the lease renews, or takes again after a restart
                    self._mine[admission.id] = (limits.key_id, admission.reserved)
                self._remember(limits.key_id, reply, admission.period)
                return
            if verdict == "gone":
                return
            self._remember(limits.key_id, reply, admission.period)
            insufficient(limits, int(reply[1]), int(reply[2]), int(reply[3]), amount)
            raise AssertionError("the script refused a reservation the limits allow")  # pragma: no cover
        raise RedisUnavailable("the key's spend could not be seeded in Redis")

    async def _seed(self, key_id: str, pid: str | None, now: float) -> None:
        """Seed the key's figures from the request log; DatabaseUnavailable if it cannot be read."""
        # Redis may have restarted empty: this replica's holds and recent settlements go back first.
        self._beat_now.set()
        since = now - self._keep_s
        seed = await self._read_seed(key_id, pid, now, since - self._longest_request_s)
        left = int(period_end(pid.split(":", 1)[0], now).timestamp() - now) if pid is not None else 0
        args: list[str | int] = [
            prefix(key_id),
            seed.total,
            pid or "",
            seed.period,
            left,
            repr(since),
            *seed.ids,
        ]
        await self.link.call(lambda r: r.run(self._seed_script, *args))

    async def _read_seed(self, key_id: str, pid: str | None, now: float, ids_since: float) -> Seed:
        since_day = period_start(pid.split(":", 1)[0], now).isoformat() if pid is not None else None
        if self._seed_source is not None:
            return await self._seed_source(key_id, since_day, ids_since)
        total = await self._source(key_id, None)
        return Seed(total, await self._source(key_id, since_day) if since_day is not None else 0, [])

    def _remember(self, key_id: str, reply: list[Any], pid: str | None) -> None:
        # Every hold counts in an outage, this replica's too: what its requests in flight then spend is
        # charged to the local books on top, which can only refuse early.
        self._known[key_id] = (int(reply[1]), pid, int(reply[2]), int(reply[3]))

    async def _known_or_logged(self, key_id: str, since_day: str | None) -> int:
        known = self._known.get(key_id)
        if known is not None:
            if since_day is None:
                return known[0]
            if known[1] is not None and known[1].endswith(since_day):
                return known[2]
        return await self._source(key_id, since_day)

    def _held_elsewhere(self, key_id: str) -> int:
        known = self._known.get(key_id)
        return known[3] if known is not None else 0

    # -- settlement ---------------------------------------------------------------------------------

    def settle(
        self, admission: Admission | None, key_id: str, generation_id: str, cost: int, tokens: int
    ) -> None:
        # The fallback's books must see every charge made while they are in use.
        local = None if admission is None or admission.shared else admission
        self._local.settle(local, key_id, generation_id, cost, tokens)
        settlement = Settlement(
            key_id,
            generation_id,
            admission.id if admission is not None else "",
            cost,
            tokens,
            (admission.period or "") if admission is not None else "",
            time.time(),
        )
        if admission is not None and admission.shared:
            self._mine.pop(admission.id, None)
            if admission.slot:
                # Its slot must be free before this client can ask again.
                self.settlements.send_now(settlement)
                return
        self.settlements.add(settlement)

    def logged(self, generation_ids: list[str]) -> None:
        """These generations' records are in the request log (called by the recorder's listener)."""
        self.settlements.logged(generation_ids)

    async def start(self) -> None:
        self.settlements.start()
        self._heartbeat = asyncio.create_task(self._beat(), name="tokenmux-leases")

    async def close(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        await self.settlements.close()

    @property
    def pending_settlements(self) -> int:
        return self.settlements.pending

    # -- leases and Redis's epoch -------------------------------------------------------------------

    async def _beat(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._beat_now.wait(), self._lease_ms / 4000)
            self._beat_now.clear()
            await self.renew_leases()
            await self.settlements.check_epoch()

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
        if self.link.up:
            try:
                return await self._spend_shared(limits)
            except (RedisUnavailable, DatabaseUnavailable):
                pass
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
            figures="shared",
        )

    def forget(self, key_id: str) -> None:
        self._known.pop(key_id, None)
        self._local.forget(key_id)

    @property
    def state(self) -> str:
        return "shared" if self.link.answering else "shared-unavailable"


def _units(usd: float | None) -> int:
    return -1 if usd is None else round(usd * 1e9)


def _count(limit: int | None) -> int:
    return -1 if limit is None else limit


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _new_id() -> str:
    return secrets.token_hex(10)
