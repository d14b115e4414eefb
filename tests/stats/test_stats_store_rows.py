"""The aggregate tables as each store writes them: in the log's transaction, once per generation."""

from __future__ import annotations

import pytest

from postgres_support import StoreDatabase
from records_support import HOUR, NOW, assert_same, expected_buckets, failure, stored_buckets, success
from tokenmux.store import Store
from tokenmux.store.buckets import (
    DAY_S,
    ENDPOINT_BUCKET_COLUMNS,
    HOUR_S,
    KEY_DAY_COLUMNS,
    MINUTE_S,
    MODEL_DAY_COLUMNS,
    BucketCounts,
)
from tokenmux.store.distribution import TTFT_BINS, Distribution

A = "openai/gpt-4.1-nano@openai"
B = "openai/gpt-4.1-nano@azure"
THIS_MINUTE = int(NOW // 60 * 60)


@pytest.fixture
def db(store: Store, database: StoreDatabase) -> StoreDatabase:
    """The database under ``store``, opened (so migrated) first."""
    return database


async def test_tables_have_the_columns_the_rows_name(db: StoreDatabase) -> None:
    for table, columns in (
        ("stats_endpoint_buckets", ENDPOINT_BUCKET_COLUMNS),
        ("stats_model_days", MODEL_DAY_COLUMNS),
        ("stats_key_days", KEY_DAY_COLUMNS),
    ):
        assert await db.columns(table) == columns


async def test_batches_add_to_the_stored_rows(db: StoreDatabase, store: Store) -> None:
    first = [success(A, NOW - 10, ttft_ms=300, tps=60), failure(B, NOW - 9)]
    # Minimum and maximum widen; a delta without samples (all failures) leaves them; a first sample
    # fills a bucket that had none.
    second = [success(A, NOW - 8, ttft_ms=100, tps=90), success(A, NOW - 7, ttft_ms=500, tps=30)]
    third = [failure(A, NOW - 6), success(B, NOW - 5, ttft_ms=250, tps=45)]
    for batch in (first, second, third):
        await store.write_batch(batch)
    everything = first + second + third
    for span in (MINUTE_S, HOUR_S):
        assert_same(await stored_buckets(db, span), expected_buckets(everything, span))
    a_now = (await stored_buckets(db, MINUTE_S))[(A, THIS_MINUTE)]
    assert (a_now.attempts, a_now.successes, a_now.failures) == (4, 3, 1)
    assert (a_now.ttft.min, a_now.ttft.max, a_now.tps.min, a_now.tps.max) == (100.0, 500.0, 30.0, 90.0)
    assert sum(a_now.ttft.counts) == 3


async def test_a_generation_counts_once_however_often_it_is_written(db: StoreDatabase, store: Store) -> None:
    one, two, three = (success(A, NOW - i, ttft_ms=100 * i, tps=10 * i, key_id="key_a") for i in (1, 2, 3))
    await store.write_batch([one, two])
    await store.write_batch([one, two])  # retried after an ambiguous failure
    await store.write_batch([two, three])  # partly new
    await store.write_batch([three, three])  # an id twice in one batch
    await store.write_batch([])
    assert_same(await stored_buckets(db, MINUTE_S), expected_buckets([one, two, three], MINUTE_S))
    days = await store.key_days("key_a", "2024-12-01")
    assert [(d.model, d.requests) for d in days] == [("openai/gpt-4.1-nano", 3)]


async def test_the_first_of_a_repeated_id_is_the_one_counted(db: StoreDatabase, store: Store) -> None:
    first = success(A, NOW, ttft_ms=100, tps=10)
    second = success(B, NOW, ttft_ms=900, tps=90)
    second.id = first.id
    for a in second.attempts:
        a.generation_id = first.id
    await store.write_batch([first, second])
    assert_same(await stored_buckets(db, MINUTE_S), expected_buckets([first], MINUTE_S))
    stored = await store.get_generation(first.id)
    assert stored is not None and stored.attempts[0].endpoint == A


async def test_minute_rows_older_than_a_day_are_dropped_and_hours_kept(
    db: StoreDatabase, store: Store
) -> None:
    old = success(A, NOW - DAY_S - HOUR, ttft_ms=100)
    await store.write_batch([old])
    await store.write_batch([success(A, NOW - DAY_S + HOUR, ttft_ms=100)])  # within the day: both stay
    assert len(await stored_buckets(db, MINUTE_S)) == 2
    await store.write_batch([success(A, NOW, ttft_ms=100)])
    assert [start for _, start in await stored_buckets(db, MINUTE_S)] == [
        THIS_MINUTE - DAY_S + 3600,
        THIS_MINUTE,
    ]
    assert len(await stored_buckets(db, HOUR_S)) == 3


async def test_windows_and_counts_read_back_as_summed(store: Store) -> None:
    batch = [
        success(A, NOW - 2 * HOUR, ttft_ms=100, tps=10),
        failure(A, NOW - HOUR),
        success(A, NOW, ttft_ms=300, tps=30),
        success(B, NOW, ttft_ms=700, tps=70),
    ]
    await store.write_batch(batch)
    this_hour = int(NOW // 3600 * 3600)

    windows = await store.endpoint_windows(HOUR_S, this_hour - 3600)  # the last two hours
    assert [w.endpoint for w in windows] == [B, A]  # by endpoint key
    a = windows[1]
    assert (a.span_s, a.start_s, a.attempts, a.successes, a.failures) == (HOUR_S, this_hour - 3600, 2, 1, 1)
    assert (a.ttft.count, a.ttft.min, a.ttft.max, a.ttft.total) == (1, 300.0, 300.0, 300.0)
    everything = (await store.endpoint_windows(HOUR_S, 0))[1]
    assert (everything.ttft.count, everything.ttft.min, everything.ttft.max) == (2, 100.0, 300.0)
    assert everything.ttft.counts == Distribution.of(TTFT_BINS, [100.0, 300.0]).counts

    assert await store.endpoint_counts(HOUR_S, this_hour - 3600) == [
        BucketCounts(A, this_hour - 3600, 1, 0, 1),
        BucketCounts(B, this_hour, 1, 1, 0),
        BucketCounts(A, this_hour, 1, 1, 0),
    ]
    assert await store.endpoint_windows(MINUTE_S, THIS_MINUTE + 60) == []
