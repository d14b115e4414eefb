"""POST /api/v1/chat/completions through the real gateway and simulator, with the official openai SDK."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from gateway_support import HELLO, NANO, generation, raw_get, scrape

# Tests that only look at their own answers and records share a gateway; those that read which endpoint an
# unpinned request reached, or count what the gateway served, have their own (see own_gateway).
pytestmark = pytest.mark.shared_gateway


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_non_streamed_answer_has_provider_cost_and_generation_id(gateway: Any, sim: Any) -> None:
    client = gateway.openai()
    raw = client.chat.completions.with_raw_response.create(model=NANO, messages=HELLO)
    completion = raw.parse()
    assert isinstance(completion, ChatCompletion)
    assert raw.headers["x-generation-id"] == completion.id
    assert completion.model == NANO
    extra = completion.model_extra or {}
    assert extra["provider"] == "openai"  # equal prices, openai has the lower latency by default
    assert completion.choices[0].message.content
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    expected = (usage.prompt_tokens * 0.10 + usage.completion_tokens * 0.40) / 1e6
    assert (usage.model_extra or {})["cost"] == pytest.approx(expected, rel=1e-9)
    record = generation(gateway, completion.id)
    assert record["provider"] == "openai" and record["status"] == "success"
    assert record["usage"] == pytest.approx(expected, rel=1e-9)
    assert [a["outcome"] for a in record["attempts"]] == ["success"]


ALL_PARAMS: dict[str, Any] = {
    "max_completion_tokens": 17,
    "temperature": 0.3,
    "top_p": 0.9,
    "frequency_penalty": 0.5,
    "presence_penalty": -0.5,
    "seed": 1234,
    "logit_bias": {"50256": -100},
    "logprobs": True,
    "top_logprobs": 2,
    "stop": ["\n\n", "END"],
    "parallel_tool_calls": False,
    "user": "user-42",
}


@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_every_parameter_reaches_the_provider_unchanged(gateway: Any, sim: Any, provider: str) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "description": "Find a thing",
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
            },
        }
    ]
    fmt = {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    client = gateway.openai()
    client.chat.completions.create(
        model=NANO,
        messages=HELLO,
        tools=tools,
        tool_choice="auto",
        response_format=fmt,
        extra_body={"provider": {"only": [provider]}},
        **ALL_PARAMS,
    )
    (received,) = sim.requests(provider)
    body = received["body"]
    for name, value in ALL_PARAMS.items():
        assert body[name] == value, name
    assert body["tools"] == tools and body["tool_choice"] == "auto" and body["response_format"] == fmt
    assert body["messages"] == HELLO
    assert "provider" not in body and "models" not in body
    if provider == "azure":
        assert received["path"] == "/azure/openai/deployments/gpt-4.1-nano/chat/completions"
        assert received["headers"]["api-key"] == "<redacted>" and "authorization" not in received["headers"]
    else:
        assert body["model"] == "gpt-4.1-nano"


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_max_tokens_older_name_is_sent_as_given(gateway: Any, sim: Any) -> None:
    gateway.openai().chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    (received,) = sim.requests("openai")
    assert received["body"]["max_tokens"] == 5


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_image_parts_pass_through(gateway: Any, sim: Any) -> None:
    content = [
        {"type": "text", "text": "What is in this image?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    messages = [{"role": "user", "content": content}]
    gateway.openai().chat.completions.create(model=NANO, messages=messages)
    (received,) = sim.requests("openai")
    assert received["body"]["messages"] == messages


def test_tool_call_round_trip(gateway: Any) -> None:
    client = gateway.openai()
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                    "required": ["city", "days"],
                },
            },
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model=NANO, messages=messages, tools=tools)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    args = json.loads(call.function.arguments)
    assert call.function.name == "get_weather" and set(args) >= {"city", "days"}
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp_c": 21}'},
    ]
    second = client.chat.completions.create(model=NANO, messages=messages, tools=tools)
    assert second.choices[0].finish_reason == "stop" and second.choices[0].message.content


def test_json_schema_output(gateway: Any) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    out = gateway.openai().chat.completions.create(
        model=NANO,
        messages=HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )
    data = json.loads(out.choices[0].message.content or "")
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


def test_stream_with_usage(gateway: Any) -> None:
    client = gateway.openai()
    raw = client.chat.completions.with_raw_response.create(
        model=NANO, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    gen_id = raw.headers["x-generation-id"]
    chunks = list(raw.parse())
    assert all(isinstance(c, ChatCompletionChunk) for c in chunks)
    assert all(c.id == gen_id and c.model == NANO for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    cost = (last.usage.model_extra or {})["cost"]
    assert cost == pytest.approx((last.usage.prompt_tokens * 0.1 + last.usage.completion_tokens * 0.4) / 1e6)
    record = generation(gateway, gen_id)
    assert record["streamed"] is True and record["tokens_completion"] == last.usage.completion_tokens
    assert record["first_token_latency_ms"] is not None


def test_stream_without_include_usage_has_no_usage_chunk(gateway: Any) -> None:
    chunks = list(gateway.openai().chat.completions.create(model=NANO, messages=HELLO, stream=True))
    assert chunks and all(c.usage is None for c in chunks) and all(c.choices for c in chunks)


def test_streamed_tool_call_and_logprobs(gateway: Any) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]},
            },
        }
    ]
    chunks = list(
        gateway.openai().chat.completions.create(model=NANO, messages=HELLO, tools=tools, stream=True)
    )
    args = "".join(
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in (c.choices[0].delta.tool_calls or [])
    )
    assert "x" in json.loads(args)
    chunks = list(
        gateway.openai().chat.completions.create(
            model=NANO, messages=HELLO, stream=True, logprobs=True, top_logprobs=1
        )
    )
    assert any(c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content for c in chunks)


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_cached_tokens_are_charged_at_the_cache_price(gateway: Any, sim: Any) -> None:
    sim.profile("openai", cached_ratio=0.5)
    long_prompt = [{"role": "user", "content": "word " * 4000}]
    out = gateway.openai().chat.completions.create(model=NANO, messages=long_prompt)
    usage = out.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    assert cached > 0
    expected = ((usage.prompt_tokens - cached) * 0.10 + cached * 0.025 + usage.completion_tokens * 0.40) / 1e6
    assert (usage.model_extra or {})["cost"] == pytest.approx(expected, rel=1e-9)
    assert generation(gateway, out.id)["tokens_cached"] == cached


def test_models_list_and_endpoints(gateway: Any) -> None:
    models = gateway.openai().models.list()
    ids = {m.id for m in models.data}
    assert NANO in ids and len(ids) >= 25
    r = raw_get(gateway, "/api/v1/models/openai/gpt-4.1-nano/endpoints")
    data = r.json()["data"]
    by_provider = {e["provider_name"]: e for e in data["endpoints"]}
    assert set(by_provider) == {"openai", "azure"}
    assert by_provider["openai"]["pricing"]["input_cache_read"] == "0.000000025"
    assert by_provider["azure"]["data_policy"]["prompt_logging"] == "30 day retention"
    assert by_provider["openai"]["data_policy"]["prompt_logging"] == "zero retention"
    assert data["context_length"] == 1_047_576 and data["max_output_tokens"] == 32_768
    assert len(by_provider["openai"]["uptime_hourly"]) == 72
    assert raw_get(gateway, "/api/v1/models/nope/nothing/endpoints").status_code == 404


# Counts the generations the gateway has served.
@pytest.mark.own_gateway
def test_health_ready_metrics(gateway: Any) -> None:
    assert raw_get(gateway, "/health").status_code == 200
    assert raw_get(gateway, "/ready").status_code == 200
    gateway.openai().chat.completions.create(model=NANO, messages=HELLO)
    samples = scrape(gateway.url)
    served = (("model", NANO), ("provider", "openai"), ("status", "success"))
    assert samples[("tokenmux_generations_total", served)] == 1
