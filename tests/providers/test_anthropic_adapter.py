"""The ``anthropic`` adapter over a MockTransport: the Messages request it sends, how it reads answers,
streams and errors, and the round trip Anthropic in -> hub -> Anthropic out."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx2
import msgspec
import pytest
from adapter_helpers import Recorder, collect, config

from tokenmux.catalog.model import Endpoint, Price
from tokenmux.errors import ProviderMalformed, ProviderRejected, StreamInterrupted
from tokenmux.protocols.anthropic_messages import (
    MessagesStreamEncoder,
    decode_messages_request,
    encode_message_response,
)
from tokenmux.providers import Provider, build_provider, provider_kinds
from tokenmux.providers.anthropic import AnthropicProvider
from tokenmux.providers.base import CallContext
from tokenmux.providers.transport import MockResponse, MockTransport
from tokenmux.types import ChatRequest, StreamEvent, Usage

PNG = "iVBORw0KGgo="
CACHE = {"type": "ephemeral"}
SIGNATURE = "EqQBCkYIARgCKkBsig=="
KEY = "sk-ant-test-0123456789"


def endpoint(upstream_model: str = "claude-sonnet-4-5", max_output: int = 64_000) -> Endpoint:
    return Endpoint(
        model_id="anthropic/claude-sonnet-4.5",
        provider="anthropic",
        upstream_model=upstream_model,
        context_length=200_000,
        max_output=max_output,
        price=Price(input=3.0, output=15.0, cache_read=0.3, cache_write_5m=3.75, cache_write_1h=6.0),
        supported_parameters=frozenset(),
    )


def context(params: dict[str, Any] | None = None, **endpoint_kw: Any) -> CallContext:
    return CallContext(endpoint=endpoint(**endpoint_kw), params=params or {}, timeout_s=30.0)


def chat(messages: list[dict[str, Any]] | None = None, stream: bool = False) -> ChatRequest:
    return ChatRequest(
        model="anthropic/claude-sonnet-4.5",
        messages=messages or [{"role": "user", "content": "Hi"}],
        params={},
        stream=stream,
    )


def provider(handler: Any) -> AnthropicProvider:
    return AnthropicProvider(
        config("anthropic", base_url="https://api.anthropic.test/", api_key=KEY), MockTransport(handler)
    )


def redacted(handler: Any) -> Provider:
    """The adapter as the gateway builds it: its errors scrubbed of its key."""
    return build_provider(
        config("anthropic", base_url="https://api.anthropic.test/", api_key=KEY), MockTransport(handler)
    )


def message(**overrides: Any) -> dict[str, Any]:
    """A non-streamed Messages answer as Anthropic sends it."""
    body: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "A cat."}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 5},
    }
    body.update(overrides)
    return body


def sse(*events: dict[str, Any]) -> MockResponse:
    frames = [b"event: %s\ndata: %s\n\n" % (e["type"].encode(), msgspec.json.encode(e)) for e in events]
    return MockResponse(200, {"content-type": "text/event-stream"}, frames)


def message_start(**usage: Any) -> dict[str, Any]:
    start = message(content=[], stop_reason=None, usage={"input_tokens": 12, "output_tokens": 1, **usage})
    return {"type": "message_start", "message": start}


def block_start(index: int, block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": block}


def block_delta(index: int, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}


def block_stop(index: int) -> dict[str, Any]:
    return {"type": "content_block_stop", "index": index}


def message_delta(stop_reason: str, output_tokens: int, stop_sequence: str | None = None) -> dict[str, Any]:
    return {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
        "usage": {"output_tokens": output_tokens},
    }


PING = {"type": "ping"}
STOP = {"type": "message_stop"}


# --- what goes out ------------------------------------------------------------------------------


def test_the_adapter_is_registered_as_anthropic() -> None:
    assert provider_kinds()["anthropic"].adapter is AnthropicProvider


async def test_request_url_headers_and_a_translated_body() -> None:
    recorder = Recorder(MockResponse.json(message()))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Cached rules.", "cache_control": CACHE}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are these?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "https://example.test/cat.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_abc", "type": "function", "function": {"name": "look", "arguments": '{"n": 2}'}},
                {"id": "call_def", "type": "function", "function": {"name": "look", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": "a cat"},
        {"role": "tool", "tool_call_id": "call_def", "content": [{"type": "text", "text": "a dog"}]},
        {"role": "user", "content": "And now?"},
        {"role": "user", "content": "Quickly."},
    ]
    params = {
        "max_completion_tokens": 300,
        "temperature": 1.6,
        "top_p": 0.9,
        "top_k": 5,
        "stop": "END",
        "user": "user-7",
        "tools": [
            {
                "type": "function",
                "function": {"name": "look", "description": "Look", "parameters": {"type": "object"}},
            },
            {"type": "function", "function": {"name": "bare"}},
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        # OpenAI parameters Anthropic does not take: never sent.
        "seed": 1,
        "frequency_penalty": 0.5,
        "presence_penalty": 0.5,
        "logit_bias": {"1": 1},
        "logprobs": True,
        "top_logprobs": 2,
        "n": 1,
    }
    await provider(recorder).complete(chat(messages), context(params))

    [sent] = recorder.requests
    assert sent.method == "POST"
    assert sent.url == "https://api.anthropic.test/v1/messages"
    assert sent.headers == [
        ("x-api-key", KEY),
        ("anthropic-version", "2023-06-01"),
        ("content-type", "application/json"),
    ]
    assert not any(name.lower() == "authorization" for name, _ in sent.headers)
    assert recorder.body == {
        "model": "claude-sonnet-4-5",
        "system": [
            {"type": "text", "text": "Be brief."},
            {"type": "text", "text": "Cached rules.", "cache_control": CACHE},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What are these?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "call_abc", "name": "look", "input": {"n": 2}},
                    {"type": "tool_use", "id": "call_def", "name": "look", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_abc", "content": "a cat"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_def",
                        "content": [{"type": "text", "text": "a dog"}],
                    },
                    {"type": "text", "text": "And now?"},
                    {"type": "text", "text": "Quickly."},
                ],
            },
        ],
        "max_tokens": 300,
        "temperature": 1.0,
        "top_k": 5,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-7"},
        "tools": [
            {"name": "look", "input_schema": {"type": "object"}, "description": "Look"},
            {"name": "bare", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "stream": False,
    }


@pytest.mark.parametrize(
    ("params", "max_output", "expected"),
    [({}, 64_000, 8192), ({}, 4096, 4096), ({"max_tokens": 100}, 64_000, 100)],
)
async def test_max_tokens_has_a_default_within_the_endpoints_max_output(
    params: dict[str, Any], max_output: int, expected: int
) -> None:
    recorder = Recorder(MockResponse.json(message()))
    await provider(recorder).complete(chat(), context(params, max_output=max_output))
    assert recorder.body["max_tokens"] == expected


async def test_system_strings_join_into_one_string() -> None:
    recorder = Recorder(MockResponse.json(message()))
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "One."},
        {"role": "system", "content": "Two."},
        {"role": "user", "content": "Hi"},
    ]
    await provider(recorder).complete(chat(messages), context())
    assert recorder.body["system"] == "One.\n\nTwo."
    assert recorder.body["messages"] == [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize(
    ("params", "thinking", "max_tokens"),
    [
        # The client's max_tokens is for the answer: a bigger budget comes on top of it.
        (
            {"reasoning": {"max_tokens": 2000}, "max_tokens": 1000},
            {"type": "enabled", "budget_tokens": 2000},
            3000,
        ),
        (
            {"reasoning_effort": "high", "max_tokens": 10_000},
            {"type": "enabled", "budget_tokens": 8000},
            10_000,
        ),
        (
            {"reasoning": {"effort": "low"}, "max_tokens": 1000},
            {"type": "enabled", "budget_tokens": 1024},
            2024,
        ),
        ({"reasoning": {"enabled": False}, "max_tokens": 1000}, None, 1000),
        (
            {
                "thinking": {"type": "enabled", "budget_tokens": 1500},
                "reasoning": {"max_tokens": 1500},
                "max_tokens": 4000,
            },
            {"type": "enabled", "budget_tokens": 1500},
            4000,
        ),
    ],
)
async def test_reasoning_becomes_thinking_without_the_sampling_knobs_it_refuses(
    params: dict[str, Any], thinking: dict[str, Any] | None, max_tokens: int
) -> None:
    recorder = Recorder(MockResponse.json(message()))
    await provider(recorder).complete(
        chat(), context({**params, "temperature": 0.2, "top_k": 3, "top_p": 0.5})
    )
    body = recorder.body
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == max_tokens
    sampling = {k: body[k] for k in ("temperature", "top_k", "top_p") if k in body}
    assert sampling == ({} if thinking else {"temperature": 0.2, "top_k": 3, "top_p": 0.5})


SCHEMA = {
    "type": "object",
    "properties": {"a": {"type": "string"}},
    "required": ["a"],
    "additionalProperties": False,
}
JSON_SCHEMA_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "strict": True, "schema": SCHEMA},
}


async def test_json_schema_uses_structured_outputs_where_the_model_has_them() -> None:
    recorder = Recorder(MockResponse.json(message(content=[{"type": "text", "text": '{"a":"x"}'}])))
    response = await provider(recorder).complete(chat(), context({"response_format": JSON_SCHEMA_FORMAT}))
    assert recorder.body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in recorder.body
    assert response.choices[0]["message"]["content"] == '{"a":"x"}'


@pytest.mark.parametrize(
    ("model", "response_format", "schema"),
    [
        ("claude-3-5-haiku-20241022", JSON_SCHEMA_FORMAT, SCHEMA),
        ("claude-sonnet-4-20250514", JSON_SCHEMA_FORMAT, SCHEMA),
        ("claude-sonnet-4-5", {"type": "json_object"}, {"type": "object"}),
    ],
)
async def test_json_output_elsewhere_is_a_forced_tool_whose_input_is_the_answer(
    model: str, response_format: dict[str, Any], schema: dict[str, Any]
) -> None:
    tool_use = {"type": "tool_use", "id": "toolu_1", "name": "json_output", "input": {"a": "x"}}
    recorder = Recorder(MockResponse.json(message(content=[tool_use], stop_reason="tool_use")))
    response = await provider(recorder).complete(
        chat(), context({"response_format": response_format}, upstream_model=model)
    )
    assert recorder.body["tools"] == [
        {
            "name": "json_output",
            "description": "Give the answer as a JSON object with exactly these fields.",
            "input_schema": schema,
        }
    ]
    assert recorder.body["tool_choice"] == {"type": "tool", "name": "json_output"}
    assert "output_config" not in recorder.body
    [choice] = response.choices
    assert choice["message"] == {"role": "assistant", "content": '{"a":"x"}'}
    assert choice["finish_reason"] == "stop"


async def test_a_forced_json_tool_streams_as_text() -> None:
    recorder = Recorder(
        sse(
            message_start(),
            block_start(0, {"type": "tool_use", "id": "toolu_1", "name": "json_output", "input": {}}),
            block_delta(0, {"type": "input_json_delta", "partial_json": '{"a": '}),
            block_delta(0, {"type": "input_json_delta", "partial_json": '"x"}'}),
            block_stop(0),
            message_delta("tool_use", 9),
            STOP,
        )
    )
    stream = provider(recorder).stream(
        chat(stream=True),
        context({"response_format": {"type": "json_object"}}, upstream_model="claude-3-haiku-20240307"),
    )
    events = await collect(stream)
    assert "".join((e.delta or {}).get("content") or "" for e in events) == '{"a": "x"}'
    assert not any((e.delta or {}).get("tool_calls") for e in events)
    assert [e.finish_reason for e in events if e.finish_reason] == ["stop"]


async def test_json_output_beside_client_tools_leaves_them_callable() -> None:
    recorder = Recorder(MockResponse.json(message()))
    tools = [{"type": "function", "function": {"name": "look", "parameters": {"type": "object"}}}]
    params = {"tools": tools, "response_format": {"type": "json_object"}, "parallel_tool_calls": False}
    await provider(recorder).complete(chat(), context(params, upstream_model="claude-3-5-haiku-20241022"))
    assert [t["name"] for t in recorder.body["tools"]] == ["look", "json_output"]
    assert recorder.body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


TOOL_LOOP: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "w", "arguments": "{}"}}],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
]


async def test_thinking_is_left_out_when_the_tool_turn_lost_its_signed_thinking() -> None:
    recorder = Recorder(MockResponse.json(message()), MockResponse.json(message()))
    params = {"reasoning_effort": "medium", "max_tokens": 4000, "temperature": 0.5}
    await provider(recorder).complete(chat(TOOL_LOOP), context(params))
    assert "thinking" not in recorder.body
    assert recorder.body["temperature"] == 0.5

    signed = [dict(m) for m in TOOL_LOOP]
    signed[1]["reasoning_blocks"] = [{"type": "thinking", "thinking": "w", "signature": SIGNATURE}]
    await provider(recorder).complete(chat(signed), context(params))
    assert recorder.body["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert recorder.body["messages"][1]["content"][0] == signed[1]["reasoning_blocks"][0]


async def test_an_unreadable_tool_argument_is_refused_before_sending() -> None:
    recorder = Recorder()
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "Hi"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{oops"}}],
        },
    ]
    with pytest.raises(ProviderRejected) as caught:
        await provider(recorder).complete(chat(messages), context())
    assert caught.value.upstream_status == 400
    assert caught.value.param == "messages[1].tool_calls[0].function.arguments"
    assert not recorder.requests


# --- round trip: Anthropic in, hub, Anthropic out -----------------------------------------------

ROUND_TRIP_REQUEST: dict[str, Any] = {
    "model": "anthropic/claude-sonnet-4.5",
    "max_tokens": 4096,
    "system": [
        {"type": "text", "text": "You are a weather bot."},
        {"type": "text", "text": "Long reference text.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather where this photo was taken?", "cache_control": CACHE},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.test/paris.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Looks like Paris.", "signature": SIGNATURE},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                {"type": "text", "text": "Checking Paris."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": "18 C",
                    "is_error": False,
                },
                {"type": "text", "text": "And tomorrow?"},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            "cache_control": CACHE,
        }
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["END", "STOP"],
    "metadata": {"user_id": "user-7"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "high"},
    "service_tier": "standard_only",
}


async def test_an_anthropic_request_comes_out_of_the_adapter_as_it_went_in() -> None:
    hub = decode_messages_request(msgspec.json.encode(ROUND_TRIP_REQUEST))
    recorder = Recorder(MockResponse.json(message()))
    await provider(recorder).complete(hub, context(hub.params))

    expected = copy.deepcopy(ROUND_TRIP_REQUEST)
    # is_error: false says nothing; Anthropic's default is the same.
    del expected["messages"][2]["content"][0]["is_error"]
    assert recorder.body == {**expected, "model": "claude-sonnet-4-5", "stream": False}
    assert hub.params["response_format"]["json_schema"]["schema"] == SCHEMA  # what other providers get


# --- what comes back ----------------------------------------------------------------------------


async def test_an_answer_with_cache_reads_and_both_cache_writes() -> None:
    usage = {
        "input_tokens": 50,
        "output_tokens": 30,
        "cache_read_input_tokens": 1000,
        "cache_creation_input_tokens": 300,
        "cache_creation": {"ephemeral_5m_input_tokens": 200, "ephemeral_1h_input_tokens": 100},
        "output_tokens_details": {"thinking_tokens": 12},
    }
    response = await provider(Recorder(MockResponse.json(message(usage=usage)))).complete(chat(), context())
    assert response.usage == Usage(
        prompt_tokens=1350,
        completion_tokens=30,
        cached_tokens=1000,
        cache_write_5m_tokens=200,
        cache_write_1h_tokens=100,
        reasoning_tokens=12,
    )
    assert (response.id, response.model) == ("msg_01", "claude-sonnet-4-5-20250929")
    assert response.choices == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "A cat."},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]


async def test_cache_writes_without_a_breakdown_count_as_five_minute_writes() -> None:
    usage = {"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": 300}
    response = await provider(Recorder(MockResponse.json(message(usage=usage)))).complete(chat(), context())
    assert response.usage == Usage(prompt_tokens=305, completion_tokens=1, cache_write_5m_tokens=300)


async def test_thinking_and_tool_use_answer() -> None:
    content = [
        {"type": "thinking", "thinking": "Need ", "signature": SIGNATURE},
        {"type": "redacted_thinking", "data": "EmwK"},
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "toolu_7", "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    response = await provider(
        Recorder(MockResponse.json(message(content=content, stop_reason="tool_use")))
    ).complete(chat(), context())
    [choice] = response.choices
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "toolu_7",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
            }
        ],
        "reasoning": "Need ",
        "reasoning_blocks": content[:2],
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
    ],
)
async def test_stop_reasons_become_finish_reasons(stop_reason: str, finish_reason: str) -> None:
    answer = message(stop_reason=stop_reason, stop_sequence="END" if stop_reason == "stop_sequence" else None)
    [choice] = (await provider(Recorder(MockResponse.json(answer))).complete(chat(), context())).choices
    assert choice["finish_reason"] == finish_reason
    assert choice.get("stop_sequence") == ("END" if stop_reason == "stop_sequence" else None)


# --- streams ------------------------------------------------------------------------------------

THINKING_TOOL_STREAM = (
    message_start(cache_read_input_tokens=1000, cache_creation_input_tokens=0),
    PING,
    block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
    block_delta(0, {"type": "thinking_delta", "thinking": "Need the weather."}),
    block_delta(0, {"type": "signature_delta", "signature": SIGNATURE}),
    block_stop(0),
    block_start(1, {"type": "text", "text": ""}),
    block_delta(1, {"type": "text_delta", "text": "Checking."}),
    block_stop(1),
    block_start(2, {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {}}),
    block_delta(2, {"type": "input_json_delta", "partial_json": ""}),
    block_delta(2, {"type": "input_json_delta", "partial_json": '{"city": '}),
    block_delta(2, {"type": "input_json_delta", "partial_json": '"Oslo"}'}),
    block_stop(2),
    block_start(3, {"type": "tool_use", "id": "toolu_10", "name": "get_time", "input": {}}),
    block_delta(3, {"type": "input_json_delta", "partial_json": "{}"}),
    block_stop(3),
    message_delta("tool_use", 80),
    STOP,
)


async def test_a_stream_with_thinking_text_and_tool_use() -> None:
    recorder = Recorder(sse(*THINKING_TOOL_STREAM))
    events = await collect(provider(recorder).stream(chat(stream=True), context({"max_tokens": 100})))
    assert recorder.body["stream"] is True
    assert [(e.delta, e.finish_reason) for e in events[:-1]] == [
        ({"role": "assistant", "content": ""}, None),
        ({"reasoning": "Need the weather."}, None),
        ({"reasoning_signature": SIGNATURE}, None),
        ({"content": "Checking."}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "toolu_10",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}, None),
        (None, "tool_calls"),
    ]
    assert events[0].id == "msg_01"
    assert events[-1].usage == Usage(prompt_tokens=1012, completion_tokens=80, cached_tokens=1000)


async def test_a_stream_stopped_by_a_stop_sequence_names_it() -> None:
    recorder = Recorder(
        sse(
            message_start(),
            block_start(0, {"type": "text", "text": ""}),
            block_delta(0, {"type": "text_delta", "text": "1, 2, 3"}),
            block_stop(0),
            message_delta("stop_sequence", 7, stop_sequence="4"),
            STOP,
        )
    )
    events = await collect(provider(recorder).stream(chat(stream=True), context()))
    [finish] = [e for e in events if e.finish_reason]
    assert (finish.finish_reason, finish.delta) == ("stop", {"stop_sequence": "4"})


def error_event(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


async def test_an_error_event_before_content_is_a_retryable_rejection() -> None:
    recorder = Recorder(sse(message_start(), PING, error_event("overloaded_error", "Overloaded")))
    with pytest.raises(ProviderRejected) as caught:
        await collect(provider(recorder).stream(chat(stream=True), context()))
    assert (caught.value.upstream_status, caught.value.upstream_type, caught.value.message) == (
        529,
        "overloaded_error",
        "Overloaded",
    )
    assert caught.value.retryable


async def test_an_error_event_after_content_interrupts_the_stream() -> None:
    recorder = Recorder(
        sse(
            message_start(),
            block_start(0, {"type": "text", "text": ""}),
            block_delta(0, {"type": "text_delta", "text": "Hal"}),
            error_event("api_error", "Internal server error"),
        )
    )
    events: list[StreamEvent] = []
    with pytest.raises(StreamInterrupted) as caught:
        async for event in provider(recorder).stream(chat(stream=True), context()):
            events.append(event)
    assert events[-1].delta == {"content": "Hal"}
    assert "Internal server error" in caught.value.message


async def test_a_stream_that_just_ends_is_malformed_before_content_and_interrupted_after() -> None:
    with pytest.raises(ProviderMalformed):
        await collect(provider(Recorder(sse(message_start(), PING))).stream(chat(stream=True), context()))
    cut = sse(
        message_start(),
        block_start(0, {"type": "text", "text": ""}),
        block_delta(0, {"type": "text_delta", "text": "Hi"}),
    )
    with pytest.raises(StreamInterrupted):
        await collect(provider(Recorder(cut)).stream(chat(stream=True), context()))


async def test_closing_the_stream_closes_the_upstream_response() -> None:
    upstream_closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            yield b"event: message_start\ndata: " + msgspec.json.encode(message_start()) + b"\n\n"
            yield (
                b"event: content_block_start\ndata: "
                + msgspec.json.encode(block_start(0, {"type": "text", "text": ""}))
                + b"\n\n"
            )
            while True:
                yield (
                    b"event: content_block_delta\ndata: "
                    + msgspec.json.encode(block_delta(0, {"type": "text_delta", "text": "x"}))
                    + b"\n\n"
                )
                await asyncio.sleep(0)
        finally:
            upstream_closed.set()

    stream = provider(Recorder(MockResponse(200, {}, endless()))).stream(chat(stream=True), context())
    assert (await anext(stream)).delta == {"role": "assistant", "content": ""}
    assert (await anext(stream)).delta == {"content": "x"}
    await stream.aclose()
    assert upstream_closed.is_set()


# --- HTTP errors --------------------------------------------------------------------------------


def error_response(
    status: int, error_type: str, message: str, headers: dict[str, str] | None = None
) -> MockResponse:
    return MockResponse.json(
        {"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_1"},
        status,
        headers,
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_529_overloaded_is_a_retryable_rejection(stream: bool) -> None:
    recorder = Recorder(error_response(529, "overloaded_error", "Overloaded"))
    adapter = provider(recorder)
    with pytest.raises(ProviderRejected) as caught:
        if stream:
            await collect(adapter.stream(chat(stream=True), context()))
        else:
            await adapter.complete(chat(), context())
    assert (caught.value.upstream_status, caught.value.upstream_type, caught.value.retryable) == (
        529,
        "overloaded_error",
        True,
    )
    assert caught.value.error_class == "server_error"


async def test_429_carries_retry_after() -> None:
    recorder = Recorder(
        error_response(
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
            {"retry-after": "17"},
        )
    )
    with pytest.raises(ProviderRejected) as caught:
        await provider(recorder).complete(chat(), context())
    assert (caught.value.upstream_status, caught.value.retry_after, caught.value.retryable) == (
        429,
        17.0,
        True,
    )


async def test_a_400_keeps_anthropics_message_and_never_the_key() -> None:
    recorder = Recorder(error_response(400, "invalid_request_error", f"messages.1: bad block (key {KEY})"))
    with pytest.raises(ProviderRejected) as caught:
        await redacted(recorder).complete(chat(), context())
    assert (caught.value.upstream_status, caught.value.retryable) == (400, False)
    assert caught.value.message == "messages.1: bad block (key ***)"


async def test_a_200_that_is_not_a_message_is_malformed() -> None:
    with pytest.raises(ProviderMalformed):
        await provider(Recorder(MockResponse(200, {}, b"<html>"))).complete(chat(), context())
    with pytest.raises(ProviderMalformed):
        await provider(Recorder(MockResponse.json({"id": "x"}))).complete(chat(), context())


# --- Anthropic in, Anthropic out: the SDK sees the provider's message unchanged ------------------


@pytest.fixture
def sdk_stream() -> Iterator[Any]:
    served: list[bytes] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=served.pop())

    with (
        httpx2.Client(transport=httpx2.MockTransport(handler)) as http,
        anthropic.Anthropic(
            api_key="k", base_url="http://gateway.test", http_client=http, max_retries=0
        ) as client,
    ):

        def final_message(frames: bytes) -> anthropic.types.Message:
            served.append(frames)
            with client.messages.stream(
                model="m", max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
            ) as s:
                return s.get_final_message()

        yield final_message


async def test_a_relayed_claude_stream_reaches_the_sdk_as_claude_sent_it(sdk_stream: Any) -> None:
    events = await collect(
        provider(Recorder(sse(*THINKING_TOOL_STREAM))).stream(chat(stream=True), context())
    )
    encoder = MessagesStreamEncoder("msg_01", "claude-sonnet-4-5-20250929", "anthropic", 12)
    usage = next(e.usage for e in events if e.usage)
    finish = next(e.finish_reason for e in events if e.finish_reason)
    frames = b"".join(encoder.event(e) for e in events if e.delta or e.finish_reason) + encoder.finish(
        usage, 0.0, finish
    )
    streamed = sdk_stream(frames)

    whole = await provider(
        Recorder(
            MockResponse.json(
                message(
                    content=[
                        {"type": "thinking", "thinking": "Need the weather.", "signature": SIGNATURE},
                        {"type": "text", "text": "Checking."},
                        {
                            "type": "tool_use",
                            "id": "toolu_9",
                            "name": "get_weather",
                            "input": {"city": "Oslo"},
                        },
                        {"type": "tool_use", "id": "toolu_10", "name": "get_time", "input": {}},
                    ],
                    stop_reason="tool_use",
                    usage={"input_tokens": 12, "output_tokens": 80, "cache_read_input_tokens": 1000},
                )
            )
        )
    ).complete(chat(), context())
    body = msgspec.json.decode(
        encode_message_response(
            whole,
            message_id="msg_01",
            model="claude-sonnet-4-5-20250929",
            provider="anthropic",
            usage=whole.usage or Usage(),
            cost=0.0,
        )
    )
    expected = anthropic.types.Message.model_validate(body)
    assert [b.to_dict() for b in streamed.content] == [b.to_dict() for b in expected.content]
    assert streamed.content[0].to_dict() == {
        "type": "thinking",
        "thinking": "Need the weather.",
        "signature": SIGNATURE,
    }
    assert streamed.stop_reason == expected.stop_reason == "tool_use"
    assert (
        streamed.usage.input_tokens,
        streamed.usage.cache_read_input_tokens,
        streamed.usage.output_tokens,
    ) == (12, 1000, 80)
