"""The ledger: what each key has spent, holds in reservation, and sends per minute.

A request of a key with limits is *admitted* before its body is read: in one atomic step the key's
in-flight count, requests and tokens per minute are checked (and a key whose credit is spent refused).
Once the request is read and planned, its worst-case cost is *reserved* against the key's credit and
budget (``money.worst_case_usd``), again checked and taken in one step. When the request ends, it is
*settled*: the real cost of all its attempts is charged and the reservation released, once. Because a reservation counts against the
limit while the request runs, any number of concurrent requests can overspend a key by at most what one
request's real cost exceeds its reservation, which is nothing when providers report usage within the
request's own limits.

``LocalLedger`` keeps the books in this process (one replica); ``redis_ledger.RedisLedger`` keeps
them in Redis for all replicas. Spend is seeded from the request log the first time a key is seen, so a
restart loses nothing that was written.

``settle`` never waits and never raises: it runs on the way out of every request, cancelled ones included.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tokenmux.errors import DatabaseUnavailable, InsufficientCredit, RateLimited, StoreError
from tokenmux.limits.key_limits import KeyLimits
from tokenmux.limits.money import period_end, period_id, period_start, to_nano, to_usd
from tokenmux.limits.window import WINDOW_S, wait_s
from tokenmux.store.base import Store

# (key id, first UTC day "YYYY-MM-DD" or None for all time) -> spend in ledger units, from the request log
SpendSource = Callable[[str, str | None], Awaitable[int]]


@dataclass(slots=True)
class Seed:
    """A key's spend as the request log has it at one moment, and which recent generations it includes."""

    total: int  # all time, ledger units
    period: int  # since the budget period's first day (0 without one)
    ids: list[str]  # the generations created since the time asked for, all counted in the figures


# (key id, the period's first UTC day or None, ids of generations created since these unix seconds)
SeedSource = Callable[[str, str | None, float], Awaitable[Seed]]

_admission_ids = itertools.count(1)


@dataclass(slots=True)
class Admission:
    """One admitted request's claim on its key: released by ``settle``."""

    id: str
    key_id: str
    reserved: int  # ledger units held against credit and budget
    period: str | None  # the budget period charged ("month:2026-11-01"), None without a budget
    shared: bool = False  # admitted by the shared (Redis) ledger rather than this process's
    slot: bool = False  # holds one of the key's concurrency slots


@dataclass(slots=True)
class Spend:
    """A key's standing, for ``GET /api/v1/key``."""

    spent: int  # all time, ledger units
    period_spent: int | None  # in the current budget period
    reserved: int  # held by requests in flight
    in_flight: int
    requests_last_minute: float
    tokens_last_minute: float
    # "shared": every replica's, from Redis; "this_replica": this process's own books (no Redis, or
    # while it is unavailable, when each replica admits on its own)
    figures: str = "this_replica"


def insufficient(limits: KeyLimits, spent: int, period_spent: int, reserved: int, ask: int) -> None:
    """Raise the 402 that says which limit a reservation of ``ask`` units would cross, if any."""
    if limits.credit_usd is not None and spent + reserved + ask > round(limits.credit_usd * 1e9):
        raise InsufficientCredit(
            f"this API key's credit is spent or held by requests in flight: ${to_usd(spent):.6f} of "
            f"${limits.credit_usd:g} used, ${to_usd(reserved):.6f} reserved, and this request may cost up to "
            f"${to_usd(ask):.6f}; lower max_tokens or ask for more credit",
            code="credit_exhausted",
        )
    if limits.budget_usd is not None and period_spent + reserved + ask > round(limits.budget_usd * 1e9):
        period = limits.budget_period or "month"
        resets = period_end(period, time.time()).isoformat().replace("+00:00", "Z")
        raise InsufficientCredit(
            f"this API key's {period}ly budget of ${limits.budget_usd:g} is spent or held by requests in "
            f"flight (${to_usd(period_spent):.6f} used, ${to_usd(reserved):.6f} reserved, this request may "
            f"cost up to ${to_usd(ask):.6f}); it resets at {resets}, or lower max_tokens",
            code="budget_exhausted",
        )


def too_many(limits: KeyLimits, what: str, retry_after: float) -> RateLimited:
    if what == "concurrency":
        # The wait is when the oldest request in flight usually ends: often milliseconds, which
        # retry-after-ms says as it is.
        return RateLimited(
            f"this API key already has {limits.concurrency} requests in flight, its limit; retry when one "
            f"ends (expected in about {max(1, round(retry_after * 1000))} ms)",
            retry_after=retry_after,
            code="concurrency_limited",
        )
    limit = limits.rpm if what == "rpm" else limits.tpm
    unit = "requests" if what == "rpm" else "tokens"
    return RateLimited(
        f"this API key is limited to {limit} {unit} per minute; retry in {max(1, round(retry_after))} s",
        retry_after=max(retry_after, 1.0),
        code=f"{what}_limited",
    )


class Ledger(ABC):
    @abstractmethod
    async def admit(self, limits: KeyLimits, reserve: int) -> Admission:
        """Count the request against every limit of its key and reserve ``reserve`` units, atomically;
        raise ``RateLimited`` (429) or ``InsufficientCredit`` (402) instead when a limit would be crossed."""

    @abstractmethod
    async def reserve(self, admission: Admission, limits: KeyLimits, amount: int) -> None:
        """Hold ``amount`` more units for an admitted request, atomically with the check against its key's
        credit and budget; raise ``InsufficientCredit`` (402) instead when one would be crossed."""

    @abstractmethod
    def settle(
        self, admission: Admission | None, key_id: str, generation_id: str, cost: int, tokens: int
    ) -> None:
        """Charge ``cost`` units and ``tokens`` to the key and release the admission (None: the key has no
        limits and was not admitted; its spend is still counted). ``generation_id`` names the charge: the
        same one is never charged twice."""

    @abstractmethod
    async def spend(self, limits: KeyLimits) -> Spend:
        """The key's spend, reservations and rates now."""

    @abstractmethod
    def forget(self, key_id: str) -> None:
        """The key's limits changed: read its spend afresh next time."""

    async def start(self) -> None:
        """Begin background work (shared ledgers)."""
        return

    async def close(self) -> None:
        """Finish background work; settles already made are not lost."""
        return

    @property
    def state(self) -> str:
        """ "local", "shared" or "shared-unavailable" (for /ready)."""
        return "local"


@dataclass(slots=True)
class _Minute:
    """Two fixed one-minute counters: the sliding window of ``window.py``."""

    minute: int = 0
    previous: int = 0
    current: int = 0

    def roll(self, now: float) -> float:
        minute = int(now // WINDOW_S)
        if minute != self.minute:
            self.previous = self.current if minute == self.minute + 1 else 0
            self.current = 0
            self.minute = minute
        return now - minute * WINDOW_S

    def wait(self, now: float, limit: int) -> float:
        elapsed = self.roll(now)  # first: it may move the counters
        return wait_s(self.previous, self.current, elapsed, limit)

    def count(self, now: float) -> float:
        elapsed = self.roll(now)
        return self.previous * (1.0 - elapsed / WINDOW_S) + self.current


@dataclass(slots=True)
class _Book:
    spent: int
    periods: dict[str, int] = field(default_factory=dict)  # period id -> spent in it
    held: dict[str, int] = field(default_factory=dict)  # admission id -> units reserved
    since: dict[str, float] = field(default_factory=dict)  # admission id -> when it was admitted
    usual_s: float | None = None  # how long a request usually holds its slot (moving average)
    reserved: int = 0  # the sum of ``held`` and ``elsewhere``
    elsewhere: int = 0  # held by other replicas when Redis last said (the Redis ledger's fallback)
    requests: _Minute = field(default_factory=_Minute)
    tokens: _Minute = field(default_factory=_Minute)


class LocalLedger(Ledger):
    """The books of one process. Every step is synchronous between awaits, so admission is atomic."""

    def __init__(
        self,
        source: SpendSource,
        *,
        clock: Callable[[], float] = time.time,
        held_elsewhere: Callable[[str], int] | None = None,
    ) -> None:
        self._source = LogReads().spend(source)
        # Units of a key held by other replicas' requests, counted as reserved (the Redis ledger's fallback).
        self._held_elsewhere = held_elsewhere
        self._clock = clock
        self._books: dict[str, _Book] = {}
        self._seeding: dict[str, asyncio.Future[_Book]] = {}
        # Charges that arrive while a key's spend is being read are kept here and added once it is in.
        self._early: dict[str, list[tuple[int, int]]] = {}

    async def _book(self, key_id: str) -> _Book:
        book = self._books.get(key_id)
        if book is not None:
            return book
        pending = self._seeding.get(key_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[_Book] = asyncio.get_running_loop().create_future()
        self._seeding[key_id] = future
        self._early[key_id] = []
        try:
            spent = await self._source(key_id, None)
        except BaseException as exc:
            del self._seeding[key_id]
            self._early.pop(key_id, None)
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it through their own await
            raise
        book = _Book(spent=spent)
        if self._held_elsewhere is not None:
            book.reserved = book.elsewhere = self._held_elsewhere(key_id)
        self._books[key_id] = book
        for cost, tokens in self._early.pop(key_id):
            self._charge(book, cost, tokens)
        del self._seeding[key_id]
        future.set_result(book)
        return book

    async def _period_spent(self, key_id: str, book: _Book, period: str, now: float) -> tuple[str, int]:
        pid = period_id(period, now)
        spent = book.periods.get(pid)
        if spent is None:
            since = period_start(period, now).isoformat()
            spent = await self._source(key_id, since)
            # Charged while the figure was read: those are not in the log yet.
            spent += book.periods.get(pid, 0)
            book.periods = {pid: spent}  # older periods are over
        return pid, spent

    async def admit(self, limits: KeyLimits, reserve: int) -> Admission:
        book = await self._book(limits.key_id)
        now = self._clock()
        pid: str | None = None
        period_spent = 0
        if limits.budget_period is not None:
            pid, period_spent = await self._period_spent(limits.key_id, book, limits.budget_period, now)
        # Nothing below awaits: the checks and the taking are one step.
        if limits.concurrency is not None and len(book.held) >= limits.concurrency:
            raise too_many(limits, "concurrency", _slot_wait(book, now))
        if limits.rpm is not None:
            wait = book.requests.wait(now, limits.rpm)
            if wait > 0:
                raise too_many(limits, "rpm", wait)
        if limits.tpm is not None:
            wait = book.tokens.wait(now, limits.tpm)
            if wait > 0:
                raise too_many(limits, "tpm", wait)
        if limits.limits_spend:
            insufficient(limits, book.spent, period_spent, book.reserved, reserve)
        book.requests.roll(now)
        book.requests.current += 1
        admission = Admission(f"adm-{next(_admission_ids)}", limits.key_id, reserve, pid)
        book.held[admission.id] = reserve
        book.since[admission.id] = now
        book.reserved += reserve
        return admission

    async def reserve(self, admission: Admission, limits: KeyLimits, amount: int) -> None:
        book = await self._book(limits.key_id)
        period_spent = 0
        if limits.budget_period is not None:
            _, period_spent = await self._period_spent(
                limits.key_id, book, limits.budget_period, self._clock()
            )
        # Nothing below awaits: the check and the taking are one step.
        if admission.id not in book.held:
            return  # settled meanwhile: nothing to hold for
        insufficient(limits, book.spent, period_spent, book.reserved, amount)
        book.held[admission.id] += amount
        book.reserved += amount
        admission.reserved += amount

    @property
    def empty(self) -> bool:
        """No key has been admitted or asked about."""
        return not self._books

    def settle(
        self, admission: Admission | None, key_id: str, generation_id: str, cost: int, tokens: int
    ) -> None:
        book = self._books.get(key_id)
        if book is None:
            early = self._early.get(key_id)
            if early is not None:
                early.append((cost, tokens))
            # A key never admitted nor asked about: its spend is in the request log when it is first read.
            return
        if admission is not None:
            held = book.held.pop(admission.id, None)
            if held is None:
                return  # settled already: never charge twice
            book.reserved -= held
            took = self._clock() - book.since.pop(admission.id)
            book.usual_s = took if book.usual_s is None else book.usual_s * 0.8 + took * 0.2
        self._charge(book, cost, tokens)

    def _charge(self, book: _Book, cost: int, tokens: int) -> None:
        book.spent += cost
        for pid in book.periods:
            book.periods[pid] += cost
        if tokens:
            book.tokens.roll(self._clock())
            book.tokens.current += tokens

    async def spend(self, limits: KeyLimits) -> Spend:
        book = await self._book(limits.key_id)
        now = self._clock()
        period_spent = None
        if limits.budget_period is not None:
            _, period_spent = await self._period_spent(limits.key_id, book, limits.budget_period, now)
        return Spend(
            spent=book.spent,
            period_spent=period_spent,
            reserved=book.reserved,
            in_flight=len(book.held),
            requests_last_minute=book.requests.count(now),
            tokens_last_minute=book.tokens.count(now),
        )

    def forget(self, key_id: str) -> None:
        book = self._books.get(key_id)
        if book is not None:
            book.periods.clear()  # a new budget period setting reads its spend afresh


def _slot_wait(book: _Book, now: float) -> float:
    """When a slot is expected back: the oldest request's usual end (the Lua ``ADMIT`` does the same)."""
    usual = 1.0 if book.usual_s is None else book.usual_s
    oldest = min(book.since.values(), default=now)
    return max(usual - (now - oldest), usual / 10, 0.01)


R = TypeVar("R")


class LogReads:
    """Reads of the request log made on a request's way in: each waits at most ``timeout_s`` (a frozen
    database must not hold requests), and after a failed one the log is not asked again for ``retry_s``.
    A read that cannot be made is ``DatabaseUnavailable`` (503 with Retry-After); callers with figures of
    their own use those instead."""

    def __init__(self, *, timeout_s: float = 1.0, retry_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self._down_until = 0.0

    async def read(self, reading: Awaitable[R]) -> R:
        if time.monotonic() < self._down_until:
            if inspect.iscoroutine(reading):
                reading.close()
            raise DatabaseUnavailable(_NO_SPEND)
        try:
            async with asyncio.timeout(self.timeout_s):
                return await reading
        except DatabaseUnavailable:
            self._down_until = time.monotonic() + self.retry_s
            raise
        except (StoreError, TimeoutError) as exc:
            self._down_until = time.monotonic() + self.retry_s
            raise DatabaseUnavailable(_NO_SPEND) from exc

    def spend(self, source: SpendSource) -> SpendSource:
        async def read(key_id: str, since_day: str | None) -> int:
            return await self.read(source(key_id, since_day))

        return read

    def seed(self, source: SeedSource) -> SeedSource:
        async def read(key_id: str, since_day: str | None, ids_since: float) -> Seed:
            return await self.read(source(key_id, since_day, ids_since))

        return read


_NO_SPEND = "the key's spend cannot be read now: the database is unavailable; retry shortly"


def seed_from_log(store: Store) -> SeedSource:
    """A key's spend as ``spend_from_log`` has it, with the ids of its recent generations, read at once."""

    async def seed(key_id: str, since_day: str | None, ids_since: float) -> Seed:
        days, ids = await store.key_spend_log(key_id, ids_since)
        total = sum(to_nano(cost) for _, cost in days)
        period = sum(to_nano(cost) for day, cost in days if since_day is not None and day >= since_day)
        return Seed(total, period, ids)

    return seed


def spend_from_log(store: Store) -> SpendSource:
    """A key's spend as the request log's per-key daily figures have it."""

    async def spent(key_id: str, since_day: str | None) -> int:
        days = await store.key_days(key_id, since_day or "0000-00-00")
        return sum(to_nano(day.cost_usd) for day in days)

    return spent
