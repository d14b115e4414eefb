"""The Anthropic Messages format, driven by the official ``anthropic`` SDK and checked with its types.

The format has one prefix for the whole session (``/anthropic``): every test starts from the defaults."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import msgspec
import pytest
from anthropic.types import Message, TextBlock, ThinkingBlock, ToolUseBlock

from tokenmux.server.runner import BackgroundServer
from tokenmux.simulator.control_client import PrefixControl, SimulatorControl

MODEL = "claude-haiku-4-5"
HELLO: list[Any] = [{"role": "user", "content": "Hello there"}]
PATH = "/anthropic/v1/messages"
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}

WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather at a place",
    "input_schema": {
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "days": {"type": "integer", "minimum": 1, "maximum": 7},
        },
        "required": ["city", "unit"],
    },
}
TIME_TOOL: Any = {
    "name": "get_time",
    "input_schema": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
}


@pytest.fixture
def control(sim_control: SimulatorControl) -> Iterator[PrefixControl]:
    control = sim_control.at("anthropic")
    control.set()
    control.clear()
    yield control
    control.set()


@pytest.fixture(scope="module")
def claude_client(sim_server: BackgroundServer) -> Iterator[anthropic.Anthropic]:
    # One client for the module: making one costs a quarter of a second (its TLS context).
    with anthropic.Anthropic(
        base_url=f"{sim_server.url}/anthropic", api_key="sk-ant-test", max_retries=0, timeout=10
    ) as client:
        yield client


@pytest.fixture
def claude(claude_client: anthropic.Anthropic, control: PrefixControl) -> anthropic.Anthropic:
    return claude_client


def _text(message: Message) -> str:
    return "".join(block.text for block in message.content if isinstance(block, TextBlock))


def _tool_uses(message: Message) -> list[ToolUseBlock]:
    return [block for block in message.content if isinstance(block, ToolUseBlock)]


# -- answers ------------------------------------------------------------------------------------------


def test_message_is_a_valid_anthropic_message(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=1024, messages=HELLO)

    assert isinstance(message, Message)
    assert message.id.startswith("msg_")
    assert message.model == MODEL and message.role == "assistant"
    [block] = message.content
    assert isinstance(block, TextBlock) and block.text.endswith(".")
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    usage = message.usage
    assert usage.output_tokens == 24
    assert usage.input_tokens == 3 + 3 + len("Hello there") // 4
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens == 0


def test_request_log_keeps_the_body_and_redacts_the_key(
    claude: anthropic.Anthropic, control: PrefixControl
) -> None:
    claude.messages.create(model=MODEL, max_tokens=64, messages=HELLO, system="Be brief.")

    [logged] = control.requests()
    assert logged["path"] == PATH
    assert logged["headers"]["authorization"] == "<redacted>"
    assert logged["headers"]["anthropic-version"]
    assert logged["body"] == {"model": MODEL, "max_tokens": 64, "messages": HELLO, "system": "Be brief."}


def test_max_tokens_below_the_answer_length_ends_with_max_tokens(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=5, messages=HELLO)

    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 5


def test_stop_sequence_is_named_in_the_answer(claude: anthropic.Anthropic) -> None:
    # Every token but the first starts with a space, so a space stops the answer after one word.
    message = claude.messages.create(model=MODEL, max_tokens=64, messages=HELLO, stop_sequences=["@@", " "])

    assert message.stop_reason == "stop_sequence" and message.stop_sequence == " "
    assert " " not in _text(message) and message.usage.output_tokens == 1


def test_cache_reads_and_writes_are_counted_apart_from_input_tokens(
    claude: anthropic.Anthropic, control: PrefixControl
) -> None:
    control.set(cached_ratio=0.5)
    plain = claude.messages.create(model=MODEL, max_tokens=64, messages=HELLO)
    system: Any = [
        {"type": "text", "text": "Be brief. " * 40, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    ]
    marked = claude.messages.create(model=MODEL, max_tokens=64, messages=HELLO, system=system)

    prompt = 3 + 3 + len("Hello there") // 4
    assert plain.usage.cache_read_input_tokens == prompt // 2
    assert plain.usage.input_tokens == prompt - prompt // 2
    assert plain.usage.cache_creation_input_tokens == 0

    prompt = 3 + 3 + (len("Hello there") + len("Be brief. ") * 40) // 4
    usage = marked.usage
    assert usage.cache_read_input_tokens == prompt // 2
    assert usage.cache_creation_input_tokens == prompt - prompt // 2
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_1h_input_tokens == usage.cache_creation_input_tokens
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens == prompt


def test_structured_output_fits_the_schema(claude: anthropic.Anthropic) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
        "required": ["name", "age"],
        "additionalProperties": False,
    }
    message = claude.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=HELLO,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )

    document = msgspec.json.decode(_text(message))
    assert set(document) == {"name", "age"}
    assert isinstance(document["name"], str) and isinstance(document["age"], int) and document["age"] >= 0


def test_thinking_comes_first_with_a_signature(claude: anthropic.Anthropic, control: PrefixControl) -> None:
    control.set(reasoning_tokens=30)
    message = claude.messages.create(
        model=MODEL, max_tokens=4096, messages=HELLO, thinking={"type": "enabled", "budget_tokens": 2048}
    )

    thinking, text = message.content
    assert isinstance(thinking, ThinkingBlock) and thinking.thinking and thinking.signature
    assert isinstance(text, TextBlock) and text.text != thinking.thinking
    assert message.usage.output_tokens == 24 + 30
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens == 30


def test_a_blocked_prompt_is_a_refusal_without_content(
    claude: anthropic.Anthropic, control: PrefixControl
) -> None:
    control.set(block_rate=1)
    message = claude.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert message.stop_reason == "refusal"
    assert message.content == [] and message.usage.output_tokens == 0


# -- tools --------------------------------------------------------------------------------------------


def test_tools_get_a_tool_use_block_with_input_from_the_schema(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=256, messages=HELLO, tools=[WEATHER_TOOL])

    assert message.stop_reason == "tool_use"
    [call] = _tool_uses(message)
    assert call.id.startswith("toolu_") and call.name == "get_weather"
    assert {"city", "unit"} <= set(call.input) and call.input["unit"] in ("celsius", "fahrenheit")


def test_tool_choice_any_with_two_tools_calls_both(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=HELLO,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "any"},
    )
    single = claude.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=HELLO,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
    )

    assert sorted(call.name for call in _tool_uses(message)) == ["get_time", "get_weather"]
    assert len(_tool_uses(single)) == 1


def test_a_named_tool_choice_calls_that_tool(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=MODEL,
        max_tokens=256,
        messages=HELLO,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "tool", "name": "get_time"},
    )

    [call] = _tool_uses(message)
    assert call.name == "get_time" and isinstance(call.input["zone"], str)


def test_a_tool_result_ends_the_round_trip_with_text(claude: anthropic.Anthropic) -> None:
    first = claude.messages.create(model=MODEL, max_tokens=256, messages=HELLO, tools=[WEATHER_TOOL])
    [call] = _tool_uses(first)
    turns: Any = [
        *HELLO,
        {"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "21 C, sunny"}],
        },
    ]
    second = claude.messages.create(model=MODEL, max_tokens=256, messages=turns, tools=[WEATHER_TOOL])

    assert second.stop_reason == "end_turn" and _text(second)
    assert _tool_uses(second) == []


# -- streams ------------------------------------------------------------------------------------------


def test_stream_is_anthropics_event_sequence(claude: anthropic.Anthropic) -> None:
    events = list(claude.messages.create(model=MODEL, max_tokens=1024, messages=HELLO, stream=True))

    types = [event.type for event in events]
    assert types == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 24,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[-2]
    assert start.type == "message_start" and start.message.content == []
    assert start.message.usage.input_tokens == 3 + 3 + len("Hello there") // 4
    assert delta.type == "message_delta" and delta.delta.stop_reason == "end_turn"
    assert delta.usage.output_tokens == 24


def test_raw_stream_names_each_event_and_pings(http: httpx.Client, control: PrefixControl) -> None:
    body = {"model": MODEL, "max_tokens": 64, "messages": HELLO, "stream": True}
    response = http.post(PATH, json=body, headers=HEADERS)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.text
    assert text.startswith("event: message_start\ndata: ")
    assert "event: ping\ndata: " in text
    assert text.endswith('event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_stream_helper_assembles_the_same_message_as_its_events(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=1024, messages=HELLO) as stream:
        streamed_text = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert _text(final) == streamed_text and len(streamed_text.split()) == 24
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 24 and final.usage.input_tokens == 3 + 3 + len("Hello there") // 4


def test_streamed_stop_sequence_and_max_tokens(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(model=MODEL, max_tokens=64, messages=HELLO, stop_sequences=[" "]) as stream:
        stopped = stream.get_final_message()
    with claude.messages.stream(model=MODEL, max_tokens=3, messages=HELLO) as stream:
        capped = stream.get_final_message()

    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == " "
    assert capped.stop_reason == "max_tokens" and capped.usage.output_tokens == 3


def test_streamed_tool_use_input_arrives_in_json_pieces(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MODEL,
        max_tokens=256,
        messages=HELLO,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "any"},
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    assert final.stop_reason == "tool_use"
    calls = _tool_uses(final)
    assert sorted(call.name for call in calls) == ["get_time", "get_weather"]
    assert all(call.id.startswith("toolu_") for call in calls)
    pieces = [e for e in events if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
    assert len(pieces) > 2 * len(calls)
    starts = [e for e in events if e.type == "content_block_start"]
    assert [e.index for e in starts] == [0, 1]


def test_streamed_thinking_has_thinking_and_signature_deltas(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MODEL, max_tokens=4096, messages=HELLO, thinking={"type": "enabled", "budget_tokens": 1024}
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()

    kinds = {e.delta.type for e in events if e.type == "content_block_delta"}
    assert kinds == {"thinking_delta", "signature_delta", "text_delta"}
    thinking, text = final.content
    assert isinstance(thinking, ThinkingBlock) and thinking.signature
    assert isinstance(text, TextBlock) and text.text
    stops = [e.index for e in events if e.type == "content_block_stop"]
    assert stops == [0, 1]


# -- errors and behaviour -----------------------------------------------------------------------------


def test_missing_key_is_401_in_anthropic_error_shape(http: httpx.Client, control: PrefixControl) -> None:
    response = http.post(
        PATH,
        json={"model": MODEL, "max_tokens": 8, "messages": HELLO},
        headers={"anthropic-version": "2023-06-01"},
    )

    assert response.status_code == 401
    assert response.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "x-api-key header is required"},
    }


def test_missing_version_is_400(http: httpx.Client, control: PrefixControl) -> None:
    response = http.post(
        PATH, json={"model": MODEL, "max_tokens": 8, "messages": HELLO}, headers={"x-api-key": "k"}
    )

    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"model": MODEL, "messages": HELLO}, "max_tokens"),
        ({"model": MODEL, "max_tokens": 8}, "messages"),
        ({"max_tokens": 8, "messages": HELLO}, "model"),
        ({"model": MODEL, "max_tokens": 8, "messages": [{"role": "system", "content": "x"}]}, "role"),
        ({"model": MODEL, "max_tokens": 8, "messages": HELLO, "temperature": 1.5}, "temperature"),
        (
            {
                "model": MODEL,
                "max_tokens": 8,
                "messages": HELLO,
                "tool_choice": {"type": "tool", "name": "x"},
            },
            "tool_choice",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 4096,
                "messages": HELLO,
                "thinking": {"type": "enabled", "budget_tokens": 100},
            },
            "budget_tokens",
        ),
        (
            {
                "model": MODEL,
                "max_tokens": 2000,
                "messages": HELLO,
                "thinking": {"type": "enabled", "budget_tokens": 2000},
            },
            "budget_tokens",
        ),
    ],
)
def test_invalid_requests_are_400_naming_the_field(
    http: httpx.Client, control: PrefixControl, body: dict[str, Any], named: str
) -> None:
    response = http.post(PATH, json=body, headers=HEADERS)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and named in error["message"]


def test_sdk_raises_overloaded_error_for_a_529(claude: anthropic.Anthropic, control: PrefixControl) -> None:
    control.set(error_rate=1, error_status=529)
    with pytest.raises(anthropic.OverloadedError) as caught:
        claude.messages.create(model=MODEL, max_tokens=8, messages=HELLO)

    assert caught.value.status_code == 529
    assert caught.value.body == {
        "type": "error",
        "error": {
            "type": "overloaded_error",
            "message": "The simulated provider failed this request with status 529 (error_rate).",
        },
    }


def test_sdk_raises_rate_limit_error_with_retry_after(
    claude: anthropic.Anthropic, control: PrefixControl
) -> None:
    control.set(rate_limit_rate=1, retry_after_s=3)
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model=MODEL, max_tokens=8, messages=HELLO)

    assert caught.value.response.headers["retry-after"] == "3"
    assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == "rate_limit_error"


def test_a_malformed_answer_fails_in_the_sdk(claude: anthropic.Anthropic, control: PrefixControl) -> None:
    control.set(malformed_rate=1)
    # The SDK documents no class for a 200 it cannot read: today the JSON parser's error reaches the
    # caller, and a release may wrap it in its APIError, which would be as right.
    unreadable = (json.JSONDecodeError, anthropic.APIError)
    with pytest.raises(unreadable):
        claude.messages.create(model=MODEL, max_tokens=8, messages=HELLO)
    with (
        pytest.raises(unreadable),
        claude.messages.stream(model=MODEL, max_tokens=8, messages=HELLO) as stream,
    ):
        stream.get_final_message()


def test_a_dropped_stream_breaks_after_that_many_chunks(
    claude: anthropic.Anthropic, control: PrefixControl
) -> None:
    control.set(drop_after_chunks=3)
    seen: list[str] = []
    with (
        pytest.raises(anthropic.APIConnectionError),  # the SDK's documented class for a cut connection
        claude.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream,
    ):
        seen.extend(stream.text_stream)

    assert len(seen) == 3


def test_first_token_latency_and_pace_apply(claude: anthropic.Anthropic, control: PrefixControl) -> None:
    control.set(ttft_ms=150, tokens_per_second=400)
    started = time.monotonic()
    with claude.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
        first = next(iter(stream.text_stream))
        first_at = time.monotonic() - started
        stream.get_final_message()
    total = time.monotonic() - started

    assert first and first_at >= 0.15
    assert total >= 0.15 + 23 / 400


def test_per_model_overrides_apply_to_that_model_only(
    claude: anthropic.Anthropic, control: PrefixControl
) -> None:
    control.set(models={"claude-opus-4-1": {"completion_tokens": 3}})

    assert (
        claude.messages.create(model="claude-opus-4-1", max_tokens=64, messages=HELLO).usage.output_tokens
        == 3
    )
    assert claude.messages.create(model=MODEL, max_tokens=64, messages=HELLO).usage.output_tokens == 24


def test_unknown_routes_and_methods(http: httpx.Client, control: PrefixControl) -> None:
    missing = http.post("/anthropic/v1/complete", json={}, headers=HEADERS)
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    wrong_method = http.get(PATH, headers=HEADERS)
    assert wrong_method.status_code == 405 and wrong_method.json()["type"] == "error"
    # The Chat Completions route is not served under this prefix.
    assert http.post("/anthropic/v1/chat/completions", json={}).status_code == 404
