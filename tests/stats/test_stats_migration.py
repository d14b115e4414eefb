"""Figures written before first-token latency came only from streamed calls, migrated (m004) on both stores.

Before, a non-streamed call was recorded with its whole latency as its first-token latency (and its tokens
over that time as its throughput), and the buckets counted that latency. The database is put in that state
by writing the old records through the store as if they had been streamed (which gives exactly the old
buckets, since the old rule counted every first token and left calls without generation time out of
throughput), then marking them not streamed in the log and forgetting the migration, so that reopening
the store applies it.
"""

from __future__ import annotations

import copy

from clock_support import Clock
from postgres_support import StoreDatabase
from records_support import HOUR, NOW, assert_same, expected_buckets, failure, stored_buckets, success
from tokenmux.stats import Stats
from tokenmux.store import GenerationRecord
from tokenmux.store.buckets import DAY_S, HOUR_S, MINUTE_S

A = "openai/gpt-4.1-nano@openai"
B = "openai/gpt-4.1-nano@azure"


def whole_answer(endpoint: str, started_at: float, latency_ms: float) -> GenerationRecord:
    """A non-streamed success as the relay recorded it before: first token = last byte."""
    record = success(endpoint, started_at, streamed=False, ttft_ms=latency_ms, completion_tokens=50)
    record.streamed = False
    record.ttft_ms = record.latency_ms = latency_ms
    record.generation_ms = 0.0
    record.throughput_tps = 50 / (latency_ms / 1000.0)
    served = record.attempts[0]
    served.ttft_ms = served.latency_ms = latency_ms
    served.generation_ms = 0.0
    served.throughput_tps = record.throughput_tps
    return record


def streamed(endpoint: str, started_at: float, ttft_ms: float, tps: float) -> GenerationRecord:
    record = success(endpoint, started_at, ttft_ms=ttft_ms, tps=tps, completion_tokens=50)
    record.streamed = True
    record.ttft_ms, record.throughput_tps = ttft_ms, tps
    record.generation_ms = record.attempts[0].generation_ms
    return record


def history() -> tuple[list[GenerationRecord], list[GenerationRecord]]:
    """(streamed and failed calls, non-streamed calls as recorded before), over the last few days."""
    calls = [
        streamed(A, NOW - 60, 300, 60),
        streamed(A, NOW - 120, 500, 40),
        streamed(A, NOW - 2 * HOUR, 250, 80),
        streamed(A, NOW - 30 * HOUR, 400, 20),  # its minute row is gone (kept a day), its hour row stays
        failure(B, NOW - 50),
    ]
    whole = [
        whole_answer(A, NOW - 90, 2000),  # in a minute of its own
        whole_answer(A, NOW - 61, 1500),  # in the same minute as a streamed call
        whole_answer(A, NOW - 2 * HOUR - 5, 3000),
        whole_answer(A, NOW - 30 * HOUR, 2500),
        whole_answer(B, NOW - 30, 1800),  # B has only non-streamed successes: no first-token figure
    ]
    return calls, whole


async def test_old_figures_are_rebuilt_from_streamed_calls_only(database: StoreDatabase) -> None:
    calls, whole = history()
    as_streamed = copy.deepcopy(whole)
    for record in as_streamed:
        record.streamed = True
        for attempt in record.attempts:
            attempt.streamed = True
    async with database.store() as store:
        for record in sorted(calls + as_streamed, key=lambda r: r.created_at):
            await store.write_batch([record])
    ids = ", ".join(f"'{r.id}'" for r in whole)
    await database.execute(f"UPDATE attempts SET streamed = FALSE WHERE generation_id IN ({ids})")
    await database.execute(f"UPDATE generations SET streamed = FALSE WHERE id IN ({ids})")
    before = await stored_buckets(database, HOUR_S)
    assert before[(A, int(NOW // HOUR_S * HOUR_S))].ttft.max == 2000.0  # the old, mixed figures
    await database.execute("DELETE FROM _migrations WHERE name = 'm004_observed_timing'")

    async with database.store() as store:  # migrates
        # Every hour row, and every minute row still kept, as if only streamed calls had been counted;
        # the attempt counts and throughput as they were.
        assert_same(await stored_buckets(database, HOUR_S), expected_buckets(calls + whole, HOUR_S))
        minutes = await stored_buckets(database, MINUTE_S)
        kept = {
            slot: bucket
            for slot, bucket in expected_buckets(calls + whole, MINUTE_S).items()
            if slot[1] > NOW - DAY_S
        }
        assert_same(minutes, kept)
        assert minutes[(A, int((NOW - 61) // 60 * 60))].ttft.count == 1
        assert minutes[(B, int(NOW // 60 * 60))].ttft.count == 0

        # The log: a non-streamed call has no first-token latency or throughput, its whole call as its
        # generation time; a streamed one is as it was.
        old = await store.get_generation(whole[0].id)
        assert old is not None
        assert (old.ttft_ms, old.throughput_tps, old.generation_ms, old.latency_ms) == (
            None,
            None,
            2000.0,
            2000.0,
        )
        attempt = old.attempts[0]
        assert (attempt.ttft_ms, attempt.throughput_tps, attempt.generation_ms) == (None, None, 2000.0)
        assert old.to_api()["observed"]["first_token_latency"] is False
        kept_streamed = await store.get_generation(calls[0].id)
        assert kept_streamed is not None
        assert (kept_streamed.ttft_ms, kept_streamed.throughput_tps) == (300.0, 60.0)
        assert kept_streamed.attempts[0].ttft_ms == 300.0

        # What the pages, the endpoints API and routing read.
        stats = Stats(store, clock=Clock(NOW))
        await stats.refresh()
        recent = stats.endpoint_figures(A)["latency_last_30m"]
        assert (recent["min"], recent["max"], recent["samples"]) == (300.0, 500.0, 2)
        day = stats.endpoint_figures(A)["latency_last_1d"]
        assert (day["min"], day["max"], day["samples"]) == (250.0, 500.0, 3)
        assert stats.routing_figures(A) == (400.0, 50.0)
        assert stats.endpoint_figures(B)["latency_last_30m"] is None
        assert stats.endpoint_figures(B)["requests_last_30m"] == 2
