"""Key limits through the real gateway, with the official SDKs: credit, budget, rates, concurrency,
allowed models and providers, data policy and expiry, on the first endpoint and on every fallback."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway_support import HELLO, NANO


def key_info(gw: Any, key: str) -> dict[str, Any]:
    r = httpx.get(f"{gw.url}/api/v1/key", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def at_once(gw: Any, key: str, count: int, max_tokens: int) -> list[int]:
    """The statuses of ``count`` requests sent at the same time, each on its own client."""

    def call(_: int) -> int:
        with gw.openai(key) as client:
            try:
                client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=max_tokens)
            except openai.APIStatusError as e:
                return int(e.status_code)
        return 200

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(call, range(count)))


def test_get_key_shows_limits_usage_and_remaining_credit(gateway: Any) -> None:
    key = gateway.new_key("team-a", credit=2.5, rpm=100, tpm=50_000, models="openai/*", concurrency=4)
    info = key_info(gateway, key)
    assert info["name"] == "team-a"
    assert info["limit"] == 2.5 and info["limit_remaining"] == 2.5 and info["usage"] == 0
    assert info["rate_limit"] == {"rpm": 100, "tpm": 50_000, "concurrency": 4}
    assert info["limits"]["models"] == ["openai/*"]
    assert key not in str(info) and "digest" not in info
    answer = gateway.openai(key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=50)
    cost = answer.model_extra["usage"]["cost"] if "cost" in (answer.model_extra or {}) else answer.usage.cost  # type: ignore[union-attr]
    info = key_info(gateway, key)
    assert info["usage"] == pytest.approx(cost, abs=1e-9)
    assert info["limit_remaining"] == pytest.approx(2.5 - cost, abs=1e-9)
    assert info["reserved"] == 0 and info["in_flight"] == 0


def test_spent_credit_is_a_402_in_both_protocols(gateway: Any) -> None:
    key = gateway.new_key("broke", credit=0.0)
    with pytest.raises(openai.APIStatusError) as err:
        gateway.openai(key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert err.value.status_code == 402
    assert err.value.body["code"] == "credit_exhausted"  # type: ignore[index]
    client = anthropic.Anthropic(base_url=f"{gateway.url}/api/anthropic", api_key=key, max_retries=0)
    with client, pytest.raises(anthropic.APIStatusError) as aerr:
        client.messages.create(model=NANO, max_tokens=5, messages=[{"role": "user", "content": "hi"}])
    assert aerr.value.status_code == 402
    assert aerr.value.body["error"]["type"] == "billing_error"  # type: ignore[index]


def test_a_request_whose_worst_case_exceeds_the_credit_is_refused_with_the_fix(gateway: Any) -> None:
    # Worst case at nano: 32,768 output tokens at $0.40/M is about $0.013, so $0.001 admits max_tokens only.
    key = gateway.new_key("small", credit=0.001)
    client = gateway.openai(key)
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model=NANO, messages=HELLO)
    assert err.value.status_code == 402 and "max_tokens" in err.value.message
    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=100)


def test_twenty_concurrent_requests_against_credit_for_one(gateway_factory: Any, sim: Any) -> None:
    # The first answer comes after 2 s, so that all twenty are admitted before it settles, even on a busy
    # machine that takes a while to start twenty clients; the attempt timeout waits for it.
    gateway = gateway_factory(attempt_timeout_s=5.0)
    sim.profile("openai", ttft_ms=2000)
    sim.profile("azure", ttft_ms=2000)
    # One request may cost up to ~$0.0004 (1000 output tokens at $0.40/M): credit for one, not two.
    key = gateway.new_key("race", credit=0.0006)
    statuses = at_once(gateway, key, 20, max_tokens=1000)
    assert statuses.count(200) == 1 and statuses.count(402) == 19
    info = key_info(gateway, key)
    assert 0 < info["usage"] <= 0.0006 and info["reserved"] == 0 and info["in_flight"] == 0


def test_streamed_and_whole_answers_cost_the_same_and_are_charged_once(gateway: Any, sim: Any) -> None:
    sim.profile("openai", cached_ratio=0.5, reasoning_tokens=8, completion_tokens=30)
    key = gateway.new_key("same", credit=1.0, providers="openai")
    client = gateway.openai(key)
    whole = client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=100)
    after_whole = key_info(gateway, key)["usage"]
    stream = client.chat.completions.create(
        model=NANO, messages=HELLO, max_tokens=100, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.model_dump()["cost"] == pytest.approx(whole.usage.model_dump()["cost"])  # type: ignore[union-attr]
    assert usage.prompt_tokens_details.cached_tokens == whole.usage.prompt_tokens_details.cached_tokens  # type: ignore[union-attr]
    after_stream = key_info(gateway, key)["usage"]
    assert after_stream == pytest.approx(2 * after_whole, abs=1e-12)


def test_retries_and_fallbacks_are_charged_once(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0, error_status=503)
    key = gateway.new_key("fallback", credit=1.0)
    answer = gateway.openai(key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=50)
    r = httpx.get(
        f"{gateway.url}/api/v1/generation?id={answer.id}", headers={"Authorization": f"Bearer {key}"}
    )
    gen = r.json()["data"]
    assert [a["outcome"] for a in gen["attempts"]] == ["error", "success"]
    assert key_info(gateway, key)["usage"] == pytest.approx(gen["usage"], abs=1e-9)


def test_a_model_not_allowed_is_a_403(gateway: Any) -> None:
    key = gateway.new_key("only-claude", models="anthropic/*")
    with pytest.raises(openai.PermissionDeniedError) as err:
        gateway.openai(key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert err.value.body["param"] == "model"  # type: ignore[index]


def test_a_fallback_model_not_allowed_is_never_tried(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0, error_status=503)
    sim.profile("azure", error_rate=1.0, error_status=503)
    key = gateway.new_key("nano-only", models=NANO)
    with pytest.raises(openai.APIStatusError) as err:
        gateway.openai(key).chat.completions.create(
            model=NANO, messages=HELLO, max_tokens=5, extra_body={"models": ["openai/gpt-4.1-mini"]}
        )
    assert err.value.status_code == 502
    tried = {a["model"] for a in err.value.body["metadata"]["attempts"]}  # type: ignore[index]
    assert tried == {NANO}


def test_allowed_providers_hold_on_every_fallback(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0, error_status=503)
    key = gateway.new_key("openai-only", providers="openai")
    with pytest.raises(openai.APIStatusError) as err:
        gateway.openai(key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert err.value.status_code == 502
    assert sim.requests("azure") == []  # the fallback the key may not use was never called


def test_a_key_whose_providers_cannot_serve_the_model_gets_403(gateway: Any) -> None:
    key = gateway.new_key("groq-only", providers="groq")
    with pytest.raises(openai.PermissionDeniedError) as err:
        gateway.openai(key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert err.value.body["code"] == "provider_not_allowed"  # type: ignore[index]


def test_a_zdr_key_only_reaches_zero_retention_endpoints(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0, error_status=503)  # the zero-retention endpoint of nano fails
    key = gateway.new_key("zdr", data_policy="zdr")
    with pytest.raises(openai.APIStatusError):
        gateway.openai(key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert sim.requests("azure") == []  # Azure keeps prompts 30 days: never tried for this key
    sim.profile("openai")
    answer = gateway.openai(key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert answer.model_extra["provider"] == "openai"  # type: ignore[index]


def test_rpm_is_a_429_with_retry_after(gateway: Any) -> None:
    key = gateway.new_key("slow", rpm=2)
    client = gateway.openai(key)
    for _ in range(2):
        client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert 1 <= int(err.value.response.headers["retry-after"]) <= 120
    assert err.value.body["code"] == "rpm_limited"  # type: ignore[index]


def test_tpm_is_a_429_once_a_minute_used_its_tokens(gateway: Any) -> None:
    key = gateway.new_key("tokens", tpm=20)
    client = gateway.openai(key)
    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=30)  # ~24 + prompt tokens
    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert err.value.body["code"] == "tpm_limited"  # type: ignore[index]


def test_concurrency_limit(gateway: Any, sim: Any) -> None:
    sim.profile("openai", ttft_ms=600)
    sim.profile("azure", ttft_ms=600)
    key = gateway.new_key("one-at-a-time", concurrency=1)
    assert sorted(at_once(gateway, key, 3, max_tokens=5)) == [200, 429, 429]
    assert at_once(gateway, key, 1, max_tokens=5) == [200]  # the slot is free again


def test_an_expired_key_is_refused(gateway: Any) -> None:
    key = gateway.new_key("old", expires=time.time() - 1)
    with pytest.raises(openai.AuthenticationError) as err:
        gateway.openai(key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert "expired" in err.value.message


def test_a_budget_is_a_402_once_spent(gateway: Any) -> None:
    key = gateway.new_key("daily", budget=0.0005, period="day")
    client = gateway.openai(key)
    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=1000)  # reserve ~$0.0004
    info = key_info(gateway, key)
    assert info["budget"]["period"] == "day" and info["budget"]["usage"] > 0
    assert info["budget"]["resets_at"].endswith("T00:00:00Z")
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=1250)  # $0.0005 + spent
    assert err.value.status_code == 402 and err.value.body["code"] == "budget_exhausted"  # type: ignore[index]


def test_a_stream_cut_short_is_charged_for_what_it_used(gateway: Any, sim: Any) -> None:
    sim.profile("openai", drop_after_chunks=3, completion_tokens=40)
    key = gateway.new_key("cut", credit=1.0, providers="openai")
    stream = gateway.openai(key).chat.completions.create(
        model=NANO, messages=HELLO, max_tokens=100, stream=True
    )
    with pytest.raises(openai.APIError):
        for _ in stream:
            pass
    info = key_info(gateway, key)
    assert info["usage"] > 0 and info["reserved"] == 0 and info["in_flight"] == 0
    full_price = 40 * 0.40 / 1e6  # what the whole answer's output alone would have cost
    assert info["usage"] < full_price
