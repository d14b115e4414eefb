"""Endpoint buckets written before they counted prompt and cached tokens get them from the request log
(m005) on both stores, so the cache-hit rate is known at the first start after the upgrade.

The database is put in the old state by writing the records through the store, then dropping the two
columns and forgetting the migration, so that reopening the store applies it.
"""

from __future__ import annotations

from clock_support import Clock
from postgres_support import StoreDatabase
from records_support import HOUR, NOW, assert_same, expected_buckets, failure, stored_buckets, success
from tokenmux.stats import Stats
from tokenmux.store.buckets import DAY_S, HOUR_S, MINUTE_S

A = "openai/gpt-4.1-nano@openai"
B = "openai/gpt-4.1-nano@azure"


async def test_old_buckets_get_their_prompt_and_cached_tokens_from_the_log(database: StoreDatabase) -> None:
    calls = [
        success(A, NOW - 60, prompt_tokens=2000, cached_tokens=1536),
        success(A, NOW - 61, prompt_tokens=2000),
        success(A, NOW - 2 * HOUR, prompt_tokens=1200, cached_tokens=1024),
        success(A, NOW - 30 * HOUR, prompt_tokens=1500, cached_tokens=1280),  # its minute row is gone
        failure(A, NOW - 50, prompt_tokens=9000, cached_tokens=8192),  # a failure's prompt does not count
        success(B, NOW - 30, prompt_tokens=3000),
        failure(B, NOW - 40),
    ]
    async with database.store() as store:
        for record in sorted(calls, key=lambda r: r.created_at):  # old minute rows go as time passes
            await store.write_batch([record])
    expected_hours = expected_buckets(calls, HOUR_S)
    assert expected_hours[(A, int(NOW // HOUR_S * HOUR_S))].cached_tokens == 1536
    for column in ("prompt_tokens", "cached_tokens"):
        await database.execute(f"ALTER TABLE stats_endpoint_buckets DROP COLUMN {column}")
    await database.execute("DELETE FROM _migrations WHERE name = 'm005_cache_hits'")

    async with database.store() as store:  # migrates
        assert_same(await stored_buckets(database, HOUR_S), expected_hours)
        kept = {
            slot: bucket
            for slot, bucket in expected_buckets(calls, MINUTE_S).items()
            if slot[1] > NOW - DAY_S
        }
        assert_same(await stored_buckets(database, MINUTE_S), kept)

        stats = Stats(store, clock=Clock(NOW))
        await stats.refresh()
        figures = stats.endpoint_figures(A)
        assert figures["cache_hit_last_30m"] == 38.4  # 1536 / 4000
        assert figures["cache_hit_last_1d"] == 49.23  # (1536 + 1024) / 5200
        assert stats.cache_hit_rate(A) == 1536 / 4000
        assert stats.endpoint_figures(B)["cache_hit_last_30m"] == 0.0
