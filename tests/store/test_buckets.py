"""``aggregate``: a batch of request records to the rows it adds, checked without a database."""

from __future__ import annotations

from records_support import HOUR, MINUTE, NOW, attempt, failure, generation, success
from tokenmux.store.buckets import (
    DAY_S,
    HOUR_S,
    MINUTE_S,
    EndpointBucket,
    KeyDay,
    ModelDay,
    aggregate,
    utc_day,
)

A = "openai/gpt-4.1-nano@openai"
B = "openai/gpt-4.1-nano@azure"
THIS_MINUTE = int(NOW // 60 * 60)  # 10:45
THIS_HOUR = int(NOW // 3600 * 3600)  # 10:00


def rows(buckets: list[EndpointBucket], span_s: int) -> dict[tuple[str, int], EndpointBucket]:
    return {(b.endpoint, b.start_s): b for b in buckets if b.span_s == span_s}


def test_attempts_count_in_their_minute_and_hour() -> None:
    deltas = aggregate(
        [
            success(A, NOW, ttft_ms=200, tps=50),
            success(A, NOW - 1, ttft_ms=400, tps=70),  # 10:45:29: same minute
            failure(A, NOW - MINUTE),  # 10:44:30: previous minute, same hour
            failure(B, NOW - HOUR),  # 09:45:30: another endpoint, another hour
        ]
    )
    minutes, hours = rows(deltas.endpoint_buckets, MINUTE_S), rows(deltas.endpoint_buckets, HOUR_S)
    assert minutes.keys() == {(A, THIS_MINUTE), (A, THIS_MINUTE - 60), (B, THIS_MINUTE - 3600)}
    assert hours.keys() == {(A, THIS_HOUR), (B, THIS_HOUR - 3600)}

    now = minutes[(A, THIS_MINUTE)]
    assert (now.attempts, now.successes, now.failures) == (2, 2, 0)
    assert (now.ttft.count, now.ttft.total, now.ttft.min, now.ttft.max) == (2, 600.0, 200.0, 400.0)
    assert (now.tps.count, now.tps.min, now.tps.max) == (2, 50.0, 70.0)
    earlier = minutes[(A, THIS_MINUTE - 60)]
    assert (earlier.attempts, earlier.successes, earlier.failures, earlier.ttft.count) == (1, 0, 1, 0)

    hour = hours[(A, THIS_HOUR)]
    assert (hour.attempts, hour.successes, hour.failures) == (3, 2, 1)
    assert hour.ttft == now.ttft and hour.tps == now.tps


def test_prompt_and_cached_tokens_of_successes_give_the_cache_hit_rate() -> None:
    deltas = aggregate(
        [
            success(A, NOW, prompt_tokens=2000, cached_tokens=1536),
            success(A, NOW - 1, prompt_tokens=100),
            failure(A, NOW - 2, prompt_tokens=5000, cached_tokens=4096),  # not processed: not counted
            success(A, NOW - MINUTE, prompt_tokens=1200, cached_tokens=1024),
        ]
    )
    minutes, hours = rows(deltas.endpoint_buckets, MINUTE_S), rows(deltas.endpoint_buckets, HOUR_S)
    now = minutes[(A, THIS_MINUTE)]
    assert (now.prompt_tokens, now.cached_tokens) == (2100, 1536)
    hour = hours[(A, THIS_HOUR)]
    assert (hour.prompt_tokens, hour.cached_tokens) == (3300, 2560)


def test_only_provider_caused_failures_count_against_uptime() -> None:
    deltas = aggregate(
        [
            failure(A, NOW, error_class="server_error"),
            failure(A, NOW, error_class="timeout"),
            failure(A, NOW, error_class="client_error", counts_for_uptime=False),
            failure(A, NOW, error_class="rate_limited", counts_for_uptime=False),
            generation(attempt(A, NOW, outcome="cancelled")),
        ]
    )
    bucket = rows(deltas.endpoint_buckets, MINUTE_S)[(A, THIS_MINUTE)]
    assert (bucket.attempts, bucket.successes, bucket.failures) == (5, 0, 2)


def test_first_token_latency_and_throughput_come_from_streamed_answers_only() -> None:
    deltas = aggregate(
        [
            success(A, NOW, ttft_ms=300, tps=80),
            success(A, NOW, streamed=False),  # not streamed: no first token seen, as the relay records it
            # As recorded before that rule (a record spooled across the upgrade): its "first token" was
            # its whole latency, its tokens/s over the whole call. Neither is a figure.
            success(A, NOW, ttft_ms=2000, tps=25, streamed=False),
            success(A, NOW, ttft_ms=None, tps=None),  # no content at all: nothing to measure
        ]
    )
    bucket = rows(deltas.endpoint_buckets, MINUTE_S)[(A, THIS_MINUTE)]
    assert (bucket.ttft.count, bucket.ttft.min, bucket.ttft.max) == (1, 300.0, 300.0)
    assert (bucket.tps.count, bucket.tps.min, bucket.tps.max) == (1, 80.0, 80.0)
    assert bucket.successes == 4


def test_a_fallback_counts_each_attempt_at_its_own_endpoint() -> None:
    tried = generation(
        attempt(A, NOW, outcome="error"),
        attempt(B, NOW + 0.5, ttft_ms=150, tps=120, prompt_tokens=10, completion_tokens=20),
    )
    deltas = aggregate([tried])
    minutes = rows(deltas.endpoint_buckets, MINUTE_S)
    assert (minutes[(A, THIS_MINUTE)].failures, minutes[(A, THIS_MINUTE)].successes) == (1, 0)
    assert (minutes[(B, THIS_MINUTE)].failures, minutes[(B, THIS_MINUTE)].successes) == (0, 1)
    assert deltas.key_days == [KeyDay("key_test", "2024-12-01", "openai/gpt-4.1-nano", 1, 10, 20, 0.0)]


def test_tokens_per_model_per_utc_day_from_successful_attempts() -> None:
    midnight = NOW - NOW % DAY_S
    deltas = aggregate(
        [
            success(A, midnight - 1, prompt_tokens=100, completion_tokens=10),  # 2024-11-30 23:59:59
            success(A, midnight, prompt_tokens=200, completion_tokens=20),
            success(B, NOW, prompt_tokens=300, completion_tokens=30),  # same model, other provider
            failure(A, NOW, prompt_tokens=5000, completion_tokens=7),  # failed: not processed
            success("openai/gpt-4.1-mini@openai", NOW, prompt_tokens=1, completion_tokens=2),
        ]
    )
    assert sorted(deltas.model_days, key=lambda d: (d.day, d.model)) == [
        ModelDay("2024-11-30", "openai/gpt-4.1-nano", 100, 10),
        ModelDay("2024-12-01", "openai/gpt-4.1-mini", 1, 2),
        ModelDay("2024-12-01", "openai/gpt-4.1-nano", 500, 50),
    ]
    assert deltas.model_days[0].tokens == 110


def test_key_days_by_served_model_or_the_name_asked_for() -> None:
    deltas = aggregate(
        [
            success(A, NOW, prompt_tokens=10, completion_tokens=1, cost_usd=0.5, key_id="key_a"),
            success(B, NOW, prompt_tokens=20, completion_tokens=2, cost_usd=0.25, key_id="key_a"),
            generation(
                attempt(A, NOW, outcome="error"), key_id="key_a", requested_model="openai/gpt-4.1-nano:floor"
            ),
            success(A, NOW, key_id="key_b"),
            success(A, NOW, key_id=None),  # no key, no activity row
        ]
    )
    assert sorted(deltas.key_days, key=lambda d: (d.key_id, d.model)) == [
        KeyDay("key_a", "2024-12-01", "openai/gpt-4.1-nano", 2, 30, 3, 0.75),
        KeyDay("key_a", "2024-12-01", "openai/gpt-4.1-nano:floor", 1, 0, 0, 0.0),
        KeyDay("key_b", "2024-12-01", "openai/gpt-4.1-nano", 1, 0, 0, 0.0),
    ]


def test_minute_rows_older_than_a_day_before_the_batch_may_go() -> None:
    deltas = aggregate([success(A, NOW - HOUR), success(A, NOW)])
    assert deltas.prune_minutes_before == THIS_MINUTE - DAY_S
    empty = aggregate([])
    assert empty.endpoint_buckets == empty.model_days == empty.key_days == []
    assert empty.prune_minutes_before is None


def test_utc_day() -> None:
    assert utc_day(NOW) == "2024-12-01"
    assert utc_day(NOW - NOW % DAY_S - 0.001) == "2024-11-30"
    assert utc_day(0) == "1970-01-01"
