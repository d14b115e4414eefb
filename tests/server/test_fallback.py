"""Failures before the first byte fall back to the next endpoint; after it nothing is retried."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from gateway_support import HELLO, NANO, generation, sim_config
from tokenmux.server.runner import free_port


@pytest.mark.parametrize(
    ("profile", "error_class"),
    [
        ({"error_rate": 1.0, "error_status": 500}, "server_error"),
        ({"error_rate": 1.0, "error_status": 503}, "server_error"),
        ({"error_rate": 1.0, "error_status": 529}, "server_error"),
        ({"rate_limit_rate": 1.0, "retry_after_s": 1}, "rate_limited"),
        ({"malformed_rate": 1.0}, "malformed"),
        ({"hang": True}, "timeout"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_failure_before_first_byte_falls_back(
    gateway: Any, sim: Any, profile: dict[str, Any], error_class: str, stream: bool
) -> None:
    sim.profile("openai", **profile)
    client = gateway.openai()
    if stream:
        raw = client.chat.completions.with_raw_response.create(model=NANO, messages=HELLO, stream=True)
        gen_id = raw.headers["x-generation-id"]
        chunks = list(raw.parse())
        assert {(c.model_extra or {}).get("provider") for c in chunks} == {"azure"}
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        out = client.chat.completions.create(model=NANO, messages=HELLO)
        assert (out.model_extra or {})["provider"] == "azure"
        gen_id = out.id
    record = generation(gateway, gen_id)
    assert [(a["provider"], a["outcome"]) for a in record["attempts"]] == [
        ("openai", "error"),
        ("azure", "success"),
    ]
    assert record["attempts"][0]["error_class"] == error_class
    assert record["provider"] == "azure" and record["status"] == "success"


def test_refused_connection_falls_back(gateway_factory: Any, sim: Any) -> None:
    config = sim_config(sim.url)
    config["providers"]["openai"]["base_url"] = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    gw = gateway_factory(config)
    out = gw.openai().chat.completions.create(model=NANO, messages=HELLO)
    assert (out.model_extra or {})["provider"] == "azure"
    record = generation(gw, out.id)
    assert record["attempts"][0]["error_class"] == "unreachable"


def test_nothing_is_retried_after_the_first_byte(gateway: Any, sim: Any) -> None:
    sim.profile("openai", drop_after_chunks=3)
    client = gateway.openai()
    raw = client.chat.completions.with_raw_response.create(
        model=NANO, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    gen_id = raw.headers["x-generation-id"]
    received: list[Any] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in raw.parse():
            received.append(chunk)
    assert "broke the stream" in str(info.value) or "stream" in str(info.value).lower()
    assert sum(1 for c in received if c.choices and c.choices[0].delta.content) >= 1
    assert sim.requests("azure") == []  # no second provider after content went out
    record = generation(gateway, gen_id)
    assert len(record["attempts"]) == 1
    assert record["status"] == "error" and record["finish_reason"] == "error"
    assert record["attempts"][0]["error_class"] == "stream_interrupted"
    # What was used is billed: the prompt and the tokens streamed before the break.
    assert record["tokens_prompt"] > 0 and record["tokens_completion"] >= 1 and record["usage"] > 0


def test_error_chunk_has_finish_reason_error(gateway: Any, sim: Any) -> None:
    sim.profile("openai", drop_after_chunks=2)
    with httpx.stream(
        "POST",
        f"{gateway.url}/api/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key}"},
        json={"model": NANO, "messages": HELLO, "stream": True},
        timeout=10,
    ) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    last = json.loads(lines[-2][len("data: ") :])
    assert last["choices"][0]["finish_reason"] == "error" and last["error"]["message"]


def test_all_attempts_failed_is_502_listing_each(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0, error_status=500)
    sim.profile("azure", error_rate=1.0, error_status=503)
    with pytest.raises(openai.APIStatusError) as info:
        gateway.openai().chat.completions.create(model=NANO, messages=HELLO)
    err = info.value
    assert err.status_code == 502
    body = err.body
    assert isinstance(body, dict)
    attempts = body["metadata"]["attempts"]
    assert [(a["provider"], a["status"]) for a in attempts] == [("openai", 500), ("azure", 503)]
    assert "openai" in body["message"] and "azure" in body["message"]
    assert err.response.headers.get("x-generation-id")


def test_non_retryable_provider_4xx_goes_back_to_the_client(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0, error_status=400)
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model=NANO, messages=HELLO)
    assert "openai rejected the request" in info.value.message
    assert sim.requests("azure") == []


def test_allow_fallbacks_false_tries_one_provider(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0)
    with pytest.raises(openai.APIStatusError) as info:
        gateway.openai().chat.completions.create(
            model=NANO, messages=HELLO, extra_body={"provider": {"allow_fallbacks": False}}
        )
    assert info.value.status_code == 502
    assert sim.requests("azure") == []


def test_retry_after_puts_the_endpoint_in_cooldown(gateway: Any, sim: Any) -> None:
    sim.profile("openai", rate_limit_rate=1.0, retry_after_s=30)
    client = gateway.openai()
    for _ in range(3):
        out = client.chat.completions.create(model=NANO, messages=HELLO)
        assert (out.model_extra or {})["provider"] == "azure"
    assert len(sim.requests("openai")) == 1  # asked once, then left alone until Retry-After passes


def test_endpoints_cooling_down_are_still_tried_the_soonest_free_first(gateway: Any, sim: Any) -> None:
    sim.profile("openai", rate_limit_rate=1.0, retry_after_s=30)
    sim.profile("azure", rate_limit_rate=1.0, retry_after_s=20)
    client = gateway.openai()
    with pytest.raises(openai.RateLimitError) as first:
        client.chat.completions.create(model=NANO, messages=HELLO)
    # Every provider rate-limited: 429 with the shortest wait any of them asked for.
    assert first.value.status_code == 429 and first.value.response.headers["retry-after"] == "20"
    # Both cool down now; neither is left out: azure's cooldown ends first, so it goes first.
    with pytest.raises(openai.RateLimitError) as second:
        client.chat.completions.create(model=NANO, messages=HELLO)
    assert second.value.status_code == 429
    body = second.value.body
    assert isinstance(body, dict)
    assert [a["provider"] for a in body["metadata"]["attempts"]] == ["azure", "openai"]
    # A provider back before its Retry-After says is used at once, as the fallback of last resort.
    sim.profile("azure")
    out = client.chat.completions.create(model=NANO, messages=HELLO)
    assert (out.model_extra or {})["provider"] == "azure"
    assert [a["provider"] for a in generation(gateway, out.id)["attempts"]] == ["azure"]


def test_one_deadline_covers_all_attempts(gateway_factory: Any, sim: Any) -> None:
    gw = gateway_factory(attempt_timeout_s=5.0, request_timeout_s=1.0)
    sim.profile("openai", hang=True)
    sim.profile("azure", hang=True)
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        gw.openai().chat.completions.create(model=NANO, messages=HELLO)
    assert info.value.status_code == 504
    assert time.monotonic() - started < 3.0


def test_keepalive_comments_while_waiting_for_the_first_token(gateway: Any, sim: Any) -> None:
    sim.profile("openai", ttft_ms=900)
    with httpx.stream(
        "POST",
        f"{gateway.url}/api/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key}"},
        json={"model": NANO, "messages": HELLO, "stream": True},
        timeout=10,
    ) as r:
        lines = list(r.iter_lines())
    assert ": tokenmux processing" in lines
    assert lines.index(": tokenmux processing") < next(
        i for i, x in enumerate(lines) if x.startswith("data: ")
    )


def test_all_fail_after_keepalive_ends_the_stream_with_an_error(gateway: Any, sim: Any) -> None:
    sim.profile("openai", ttft_ms=500, error_rate=1.0)
    sim.profile("azure", hang=True)
    with pytest.raises(openai.APIError):
        list(gateway.openai().chat.completions.create(model=NANO, messages=HELLO, stream=True))


def test_client_disconnect_cancels_the_upstream_call(gateway: Any, sim: Any) -> None:
    sim.profile("openai", tokens_per_second=5, completion_tokens=200)
    with httpx.stream(
        "POST",
        f"{gateway.url}/api/v1/chat/completions",
        headers={"Authorization": f"Bearer {gateway.key}"},
        json={"model": NANO, "messages": HELLO, "stream": True},
        timeout=10,
    ) as r:
        gen_id = r.headers["x-generation-id"]
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break
    closed = time.monotonic()
    record = None
    while time.monotonic() - closed < 1.0:
        resp = httpx.get(
            f"{gateway.url}/api/v1/generation?id={gen_id}", headers={"Authorization": f"Bearer {gateway.key}"}
        )
        if resp.status_code == 200:
            record = resp.json()["data"]
            break
        time.sleep(0.05)
    assert record is not None, "the generation was not recorded within a second of the disconnect"
    assert record["status"] == "cancelled" and record["attempts"][0]["outcome"] == "cancelled"
    assert record["tokens_completion"] >= 1  # what was used is recorded


def test_client_disconnect_cancels_a_non_streamed_upstream_call(
    gateway: Any, sim: Any, simulator: Any
) -> None:
    sim.profile("openai", ttft_ms=5000)
    upstream = simulator.server.config.app
    before = upstream.requests_in_flight
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gateway.url}/api/v1/chat/completions",
            headers={"Authorization": f"Bearer {gateway.key}"},
            json={"model": NANO, "messages": HELLO, "provider": {"only": ["openai"]}},
            timeout=0.5,
        )
    closed = time.monotonic()
    cancelled = (NANO, "none", "cancelled")
    while time.monotonic() - closed < 1.0:
        if gateway.app.parts.metrics.generations[cancelled] == 1 and upstream.requests_in_flight <= before:
            break
        time.sleep(0.02)
    assert gateway.app.parts.metrics.generations[cancelled] == 1, "no cancelled generation within a second"
    assert upstream.requests_in_flight <= before, "the upstream call outlived the client by a second"


def test_models_list_falls_back_to_the_next_model(gateway: Any, sim: Any) -> None:
    sim.profile("openai", models={"gpt-4.1-nano": {"error_rate": 1.0}})
    sim.profile("azure", models={"gpt-4.1-nano": {"error_rate": 1.0}})
    out = gateway.openai().chat.completions.create(
        model=NANO, messages=HELLO, extra_body={"models": ["openai/gpt-4o-mini"]}
    )
    assert out.model == "openai/gpt-4o-mini"
    record = generation(gateway, out.id)
    assert [a["model"] for a in record["attempts"]][-1] == "openai/gpt-4o-mini"
    assert record["requested_model"] == NANO and record["model"] == "openai/gpt-4o-mini"


def test_provider_order_and_only_are_honoured(gateway: Any) -> None:
    client = gateway.openai()
    out = client.chat.completions.create(
        model=NANO, messages=HELLO, extra_body={"provider": {"order": ["azure"]}}
    )
    assert (out.model_extra or {})["provider"] == "azure"
    out = client.chat.completions.create(model=NANO, messages=HELLO, extra_body={"provider": {"zdr": True}})
    assert (out.model_extra or {})["provider"] == "openai"  # azure keeps prompts 30 days


def test_unsupported_parameters_are_dropped_and_listed(gateway: Any, sim: Any) -> None:
    out = gateway.openai().chat.completions.create(model=NANO, messages=HELLO, extra_body={"top_k": 5})
    (received,) = sim.requests("openai")
    assert "top_k" not in received["body"]
    assert generation(gateway, out.id)["dropped_params"] == ["top_k"]
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(
            model=NANO, messages=HELLO, extra_body={"top_k": 5, "provider": {"require_parameters": True}}
        )
    assert "top_k" in info.value.message
