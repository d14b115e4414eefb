"""First-token latency and throughput only from calls where they were seen, end to end.

A streamed call shows its first token and its pace; a non-streamed one arrives whole, so it is recorded
with its total latency and generation time only, says so in its generation record, and stays out of the
first-token and throughput figures that the endpoints API, the pages and routing read.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from gateway_support import HELLO, NANO, generation

ENDPOINT = f"{NANO}@openai"
TTFT_MS = 150
TOKENS_PER_SECOND = 50
TOKENS = 20  # 400 ms of tokens after the first


def figures(gateway: Any, samples: int) -> dict[str, Any]:
    """The openai endpoint's entry once its first-token latency rests on ``samples`` calls."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        data = httpx.get(f"{gateway.url}/api/v1/models/{NANO}/endpoints").json()["data"]
        entry = next(e for e in data["endpoints"] if e["provider_name"] == "openai")
        latency = entry["latency_last_30m"]
        if latency and latency["samples"] >= samples and entry["requests_last_30m"] >= 2 * samples:
            return entry  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"the figures did not reach {samples} calls within 15 s")


def test_only_streamed_calls_give_first_token_latency_and_throughput(gateway: Any, sim: Any) -> None:
    sim.profile("openai", ttft_ms=TTFT_MS, tokens_per_second=TOKENS_PER_SECOND, completion_tokens=TOKENS)
    client = gateway.openai()
    order = {"provider": {"order": ["openai"]}}

    whole = client.chat.completions.with_raw_response.create(model=NANO, messages=HELLO, extra_body=order)
    assert whole.parse().usage.completion_tokens == TOKENS
    record = generation(gateway, whole.headers["x-generation-id"])
    assert record["streamed"] is False
    assert record["first_token_latency_ms"] is None and record["throughput_tps"] is None
    assert record["observed"] == {"first_token_latency": False, "throughput": False, "generation_time": True}
    attempt = record["attempts"][0]
    # The whole call, first-token latency and the tokens' time included, is its generation time.
    assert attempt["generation_ms"] == attempt["latency_ms"] >= TTFT_MS + 1000 * TOKENS / TOKENS_PER_SECOND
    assert attempt["ttft_ms"] is None and attempt["throughput_tps"] is None

    raw = client.chat.completions.with_raw_response.create(
        model=NANO, messages=HELLO, stream=True, extra_body=order
    )
    assert len([c for c in raw.parse() if c.choices and c.choices[0].delta.content]) == TOKENS
    record = generation(gateway, raw.headers["x-generation-id"])
    assert record["observed"] == {"first_token_latency": True, "throughput": True, "generation_time": True}
    assert TTFT_MS <= record["first_token_latency_ms"] < record["latency_ms"]
    # The simulator ends a stream one token time after its last token: completion tokens over the time
    # after the first one is its pace (give or take a late wake-up on a busy machine).
    assert record["throughput_tps"] == pytest.approx(TOKENS_PER_SECOND, rel=0.15)

    entry = figures(gateway, samples=1)
    latency, throughput = entry["latency_last_30m"], entry["throughput_last_30m"]
    assert latency["samples"] == throughput["samples"] == 1  # of two calls, only the streamed one
    assert latency["max"] == pytest.approx(record["first_token_latency_ms"], abs=0.01)
    assert throughput["max"] == pytest.approx(record["throughput_tps"], abs=0.01)
    # Routing reads the same figures.
    ttft, tps, _ = gateway.app.parts.router.figures(ENDPOINT)
    assert ttft == pytest.approx(latency["avg"], abs=0.01) and tps == pytest.approx(
        throughput["avg"], abs=0.01
    )


def test_a_model_page_says_non_streamed_calls_are_left_out(gateway: Any) -> None:
    page = httpx.get(f"{gateway.url}/{NANO}").text
    assert "streamed calls only" in page
