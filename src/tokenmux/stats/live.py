"""Live figures for the pages, the endpoints API and routing: a snapshot of the aggregate tables, refreshed.

    stats = Stats(store)
    await stats.start()                        # first read, then a refresh every interval_s
    recorder.add_listener(stats.batch_written)  # and soon after this replica writes a batch
    stats.endpoint_figures("openai/gpt-4.1-nano@openai")
    await stats.aclose()

A refresh reads the last 30 minute buckets, the last 72 hour buckets and the last ``days`` day rows of
every endpoint and model: its cost depends on how many endpoints and models there are, never on how many
requests the log holds. It sees every replica's writes, since all write the same tables. The accessors
read the snapshot only, so the pages and routing never wait on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from tokenmux.stats.windows import (
    HOURLY_BARS,
    WINDOW_DAY_HOURS,
    Figures,
    Snapshot,
    build_snapshot,
    day_names,
    empty_figures,
    hour_window_start,
    minute_window_start,
)
from tokenmux.store.buckets import HOUR_S, MINUTE_S

if TYPE_CHECKING:
    from tokenmux.store.base import Store
    from tokenmux.store.records import GenerationRecord

log = logging.getLogger(__name__)

_ERROR_LOG_PERIOD_S = 60.0
_NO_FIGURES: tuple[None, None] = (None, None)


class Stats:
    """Per-endpoint, per-provider and per-model figures from the aggregate tables; see the module doc."""

    def __init__(
        self,
        store: Store,
        *,
        days: int = 30,
        interval_s: float = 5.0,
        min_interval_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``days``: how many UTC days of tokens the snapshot keeps (the longest ``tokens_per_day``).
        ``min_interval_s``: the shortest time between two refreshes, however often batches are written
        (a refresh costs ~40 ms of CPU with 30 endpoints, most of it in SQLite, outside the GIL)."""
        if days < 1:
            raise ValueError("days must be at least 1")
        self._store = store
        self.days = days
        self._interval_s = interval_s
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._snapshot: Snapshot = build_snapshot(clock(), (), (), (), (), days=days)
        self._refreshed = False
        self._lock = asyncio.Lock()
        self._written = asyncio.Event()  # a batch was written since the last refresh began
        self._task: asyncio.Task[None] | None = None
        self._last_error_log = -_ERROR_LOG_PERIOD_S
        self.failed_refreshes = 0

    # -- keeping the snapshot fresh -------------------------------------------------------------------

    async def refresh(self) -> None:
        """Read the aggregate tables and replace the snapshot. Raises what the store raises."""
        async with self._lock:
            now = self._clock()
            store = self._store
            recent, day, hourly, model_days = await asyncio.gather(
                store.endpoint_windows(MINUTE_S, minute_window_start(now)),
                store.endpoint_windows(HOUR_S, hour_window_start(now, WINDOW_DAY_HOURS)),
                store.endpoint_counts(HOUR_S, hour_window_start(now, HOURLY_BARS)),
                store.model_days(day_names(now, self.days)[0]),
            )
            # In a thread: with hundreds of endpoints this takes milliseconds, and there the event loop
            # gets the interpreter back at every switch interval instead of waiting for the end.
            self._snapshot = await asyncio.to_thread(
                build_snapshot, now, recent, day, hourly, model_days, days=self.days
            )
            self._refreshed = True

    @property
    def refreshed_at(self) -> float | None:
        """When the figures were read (the clock's time), None before the first refresh."""
        return self._snapshot.taken_at if self._refreshed else None

    async def start(self) -> None:
        """Read the figures once, then keep refreshing them in the background until ``aclose()``."""
        if self._task is None:
            await self._refresh_logged()
            self._task = asyncio.get_running_loop().create_task(
                self._refresh_after_wait(), name="tokenmux-stats-refresher"
            )

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def run_refresher(self, interval_s: float | None = None) -> None:
        """Refresh now, then every ``interval_s`` (default: the constructor's), and within
        ``min_interval_s`` of a batch written by this replica. Runs until cancelled; a failed refresh
        is logged and the previous figures stay."""
        while True:
            await self._refresh_logged()
            await self._wait_for_next(interval_s)

    def batch_written(self, batch: Sequence[GenerationRecord]) -> None:
        """A ``Recorder`` listener: bring the next refresh forward. Costs one flag, whatever the batch."""
        self._written.set()

    async def _refresh_after_wait(self) -> None:
        await self._wait_for_next(None)
        await self.run_refresher()

    async def _wait_for_next(self, interval_s: float | None) -> None:
        interval = self._interval_s if interval_s is None else interval_s
        pause = min(self._min_interval_s, interval)
        await asyncio.sleep(pause)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval - pause):
                await self._written.wait()
        self._written.clear()

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except Exception:
            self.failed_refreshes += 1
            now = time.monotonic()
            if now - self._last_error_log >= _ERROR_LOG_PERIOD_S:
                self._last_error_log = now
                log.exception("could not refresh the live figures; showing the previous ones")

    # -- the snapshot: no I/O, a dictionary lookup or two ------------------------------------------------

    def endpoint_figures(self, endpoint_key: str) -> Figures:
        """``uptime_last_30m``, ``uptime_last_1d``, ``uptime_hourly`` (72, oldest first), ``latency_*`` and
        ``throughput_*`` (``{"min", "max", "avg", "p50", "p90", "p99"}`` or None), ``requests_last_30m``,
        ``requests_last_1d``, ``cache_hit_last_30m`` and ``cache_hit_last_1d`` (percent of the successes'
        prompt tokens read from the provider's cache, None without any) and ``status`` of one endpoint ("model@provider"). A fresh dict each call."""
        figures = self._snapshot.endpoints.get(endpoint_key)
        if figures is None:
            return empty_figures()
        copy = dict(figures)
        copy["uptime_hourly"] = list(figures["uptime_hourly"])
        return copy

    def routing_figures(self, endpoint_key: str) -> tuple[float | None, float | None]:
        """(average first-token latency ms, average throughput tokens/s) over the last 30 minutes, each
        falling back to the last 24 hours: what ``Router(measured=...)`` expects."""
        return self._snapshot.routing.get(endpoint_key, _NO_FIGURES)

    def cache_hit_rate(self, endpoint_key: str) -> float | None:
        """The share (0..1) of the endpoint's prompt tokens read from the provider's prompt cache over the
        last 30 minutes, else the last 24 hours; None when it served no prompt tokens in either: what
        ``Router(cache_hit_rate=...)`` expects."""
        return self._snapshot.cache_hits.get(endpoint_key)

    def tokens_per_day(self, model_id: str, days: int = 30) -> list[dict[str, Any]]:
        """``[{"date": "YYYY-MM-DD", "tokens": n}]`` for the last ``days`` UTC days, oldest first, today
        last, days without traffic as 0."""
        if not 1 <= days <= self.days:
            raise ValueError(f"days must be between 1 and {self.days} (Stats(days=...))")
        snapshot = self._snapshot
        tokens = snapshot.tokens_by_model.get(model_id, {})
        return [{"date": day, "tokens": tokens.get(day, 0)} for day in snapshot.days[-days:]]

    def provider_uptime_hourly(self, provider: str) -> list[float | None]:
        """Uptime percent per hour for the last 72 hours, every endpoint of the provider pooled."""
        figures = self._snapshot.providers.get(provider)
        return list(figures.uptime_hourly) if figures is not None else [None] * HOURLY_BARS

    def provider_uptime(self, provider: str, window: Literal["30m", "1d"] = "30m") -> float | None:
        """The provider's uptime percent over the last 30 minutes or 24 hours, its endpoints pooled."""
        figures = self._snapshot.providers.get(provider)
        if figures is None:
            return None
        if window == "30m":
            return figures.uptime_last_30m
        if window == "1d":
            return figures.uptime_last_1d
        raise ValueError(f"window must be '30m' or '1d', not {window!r}")

    def provider_status(self, provider: str) -> str:
        """The provider's state from its pooled uptime over the last 30 minutes: "up" (>= 95 %),
        "degraded" (>= 50 %), "down", or "unknown" without traffic that counts. Cooldowns and open
        circuits are the health board's to add."""
        figures = self._snapshot.providers.get(provider)
        return figures.status if figures is not None else "unknown"

    # -- read on demand --------------------------------------------------------------------------------

    async def key_activity(self, key_id: str, days: int = 30) -> dict[str, list[dict[str, Any]]]:
        """One key's requests, tokens and cost: ``by_day`` for the last ``days`` UTC days (oldest first,
        quiet days as zeros) and ``by_model`` over those days (highest cost first)."""
        if days < 1:
            raise ValueError("days must be at least 1")
        dates = day_names(self._clock(), days)
        rows = await self._store.key_days(key_id, dates[0])
        by_day: dict[str, dict[str, Any]] = {date: _activity(date=date) for date in dates}
        by_model: dict[str, dict[str, Any]] = defaultdict(lambda: _activity())
        for row in rows:
            day = by_day.get(row.day)
            if day is None:  # after "today": another replica's clock runs ahead of this one
                continue
            for entry in (day, by_model[row.model]):
                entry["requests"] += row.requests
                entry["prompt_tokens"] += row.prompt_tokens
                entry["completion_tokens"] += row.completion_tokens
                entry["cost_usd"] += row.cost_usd
        models = [{"model": model, **entry} for model, entry in by_model.items()]
        models.sort(key=lambda m: (-m["cost_usd"], -m["requests"], m["model"]))
        for entry in (*by_day.values(), *models):
            entry["cost_usd"] = round(entry["cost_usd"], 10)  # sums of float prices: hide the noise
        return {"by_day": list(by_day.values()), "by_model": models}

    async def recent_generations(self, key_id: str, limit: int = 20) -> list[GenerationRecord]:
        """The key's latest generations with their attempts, newest first (as written: a generation the
        recorder still holds appears after its batch is written)."""
        if not 1 <= limit <= 1000:
            raise ValueError("limit must be between 1 and 1000")
        return await self._store.recent_generations(key_id, limit)


def _activity(**first: Any) -> dict[str, Any]:
    return {**first, "requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
