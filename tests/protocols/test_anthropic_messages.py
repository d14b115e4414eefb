"""The Anthropic Messages inbound protocol: requests into the hub shape, answers and streams back out,
checked against the official ``anthropic`` SDK's own types and stream accumulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import msgspec
import pytest
from anthropic.types import Message, ModelInfo

from tokenmux.catalog.model import Catalog, Endpoint, Model, Price
from tokenmux.errors import (
    AllAttemptsFailed,
    AuthenticationFailed,
    DatabaseUnavailable,
    DeadlineExceeded,
    InsufficientCredit,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    StreamInterrupted,
    TokenmuxError,
)
from tokenmux.protocols.anthropic_messages import (
    MessagesStreamEncoder,
    decode_messages_request,
    encode_error,
    encode_message_response,
    models_json,
)
from tokenmux.protocols.sse import SSEDecoder
from tokenmux.types import ChatResponse, StreamEvent, Usage

PNG = "iVBORw0KGgo="
CACHE = {"type": "ephemeral"}
CACHE_1H = {"type": "ephemeral", "ttl": "1h"}
SIGNATURE = "EqQBCkYIARgCKkBsig=="

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "cache_control": CACHE,
}

# An Anthropic request using every feature the hub shape has to carry.
FULL_REQUEST: dict[str, Any] = {
    "model": "anthropic/claude-sonnet-4.5",
    "max_tokens": 2048,
    "system": [
        {"type": "text", "text": "You are a weather bot."},
        {"type": "text", "text": "Long reference text.", "cache_control": CACHE_1H},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these, and the weather in Paris?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {
                    "type": "image",
                    "source": {"type": "url", "url": "https://example.test/cat.jpg"},
                    "cache_control": CACHE,
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": SIGNATURE},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"city": "Paris"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18 C, sunny"},
                {"type": "text", "text": "Thanks!", "cache_control": CACHE},
            ],
        },
    ],
    "tools": [WEATHER_TOOL],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    "temperature": 0.3,
    "top_p": 0.9,
    "top_k": 40,
    "metadata": {"user_id": "user-7"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "stream": True,
}


def decode(body: dict[str, Any]) -> Any:
    return decode_messages_request(msgspec.json.encode(body))


def request(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "anthropic/claude-sonnet-4.5",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    body.update(fields)
    return body


# --- requests -----------------------------------------------------------------------------------


def test_a_full_request_becomes_the_hub_shape() -> None:
    body = msgspec.json.encode(FULL_REQUEST)
    chat = decode_messages_request(body)

    assert chat.model == "anthropic/claude-sonnet-4.5"
    assert chat.inbound == "anthropic"
    assert chat.stream is True
    assert chat.max_output_tokens == 2048
    assert chat.body_bytes == len(body)
    assert chat.messages == [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "You are a weather bot."},
                {"type": "text", "text": "Long reference text.", "cache_control": CACHE_1H},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these, and the weather in Paris?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://example.test/cat.jpg"},
                    "cache_control": CACHE,
                },
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "toolu_01A",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
            "reasoning_blocks": [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": SIGNATURE},
                {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A", "content": "18 C, sunny"},
        {"role": "user", "content": [{"type": "text", "text": "Thanks!", "cache_control": CACHE}]},
    ]
    assert chat.params == {
        "max_tokens": 2048,
        "temperature": 0.3,
        "top_p": 0.9,
        "top_k": 40,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": WEATHER_TOOL["input_schema"],
                    "description": "Weather for a city",
                },
                "cache_control": CACHE,
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "user-7",
        "reasoning": {"max_tokens": 1024},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }


def test_plain_strings_stay_plain() -> None:
    chat = decode(request(system="Be brief.", messages=[{"role": "user", "content": "Hi"}]))
    assert chat.messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert chat.params == {"max_tokens": 100}
    assert chat.stream is False


def test_system_blocks_without_cache_control_join_into_one_string() -> None:
    system = [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]
    assert decode(request(system=system)).messages[0] == {"role": "system", "content": "One.\nTwo."}


def test_tool_results_come_first_as_tool_messages_with_error_flag_and_parts() -> None:
    messages = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "a", "input": {}},
                {"type": "tool_use", "id": "toolu_2", "name": "b", "input": {"x": [1, 2]}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "boom", "is_error": True},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "ok"}],
                    "cache_control": CACHE,
                },
            ],
        },
    ]
    hub = decode(request(messages=messages)).messages
    assert hub[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
            {"id": "toolu_2", "type": "function", "function": {"name": "b", "arguments": '{"x":[1,2]}'}},
        ],
    }
    assert hub[2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "boom", "is_error": True},
        {
            "role": "tool",
            "tool_call_id": "toolu_2",
            "content": [{"type": "text", "text": "ok"}],
            "cache_control": CACHE,
        },
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        (
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            {
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "parallel_tool_calls": False,
            },
        ),
    ],
)
def test_tool_choice_becomes_openai_tool_choice(choice: dict[str, Any], expected: dict[str, Any]) -> None:
    params = decode(request(tools=[WEATHER_TOOL], tool_choice=choice)).params
    assert {k: v for k, v in params.items() if k in ("tool_choice", "parallel_tool_calls")} == expected


def test_structured_output_becomes_response_format_and_unknown_fields_pass_through() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    params = decode(
        request(
            output_config={"format": {"type": "json_schema", "schema": schema}, "effort": "high"},
            service_tier="auto",
            top_k=None,
            thinking={"type": "adaptive"},
        )
    ).params
    assert params == {
        "max_tokens": 100,
        "service_tier": "auto",
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": schema, "strict": True},
        },
        "output_config": {"effort": "high"},
        "reasoning": {"enabled": True},
        "reasoning_effort": "high",  # thinking is on: the effort is also how hard to think
        "thinking": {"type": "adaptive"},
    }


def test_routing_extensions_are_read_like_on_the_openai_route() -> None:
    chat = decode(request(model=None, models=["a/b", "c/d"], provider={"order": ["anthropic"]}))
    assert (chat.model, chat.fallback_models, chat.provider.order) == ("a/b", ("c/d",), ("anthropic",))


def test_a_pdf_document_becomes_a_file_part() -> None:
    doc = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="},
        "title": "a.pdf",
    }
    [message] = decode(request(messages=[{"role": "user", "content": [doc]}])).messages
    assert message["content"] == [
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"}}
    ]


BAD_REQUESTS = [
    (request(max_tokens=None), "max_tokens"),
    (request(max_tokens=0), "max_tokens"),
    (request(max_tokens="100"), "max_tokens"),
    (request(model=""), "model"),
    (request(messages=[]), "messages"),
    (request(messages=[{"role": "tool", "content": "x"}]), "messages[0].role"),
    (request(messages=[{"role": "system", "content": [{"type": "image"}]}]), "messages[0].content[0]"),
    (request(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
    (request(messages=[{"role": "user", "content": [{"type": "tool_use"}]}]), "messages[0].content[0]"),
    (
        request(messages=[{"role": "assistant", "content": [{"type": "image", "source": {}}]}]),
        "messages[0].content[0]",
    ),
    (
        request(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}]),
        "messages[0].content[0].source",
    ),
    (
        request(messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]),
        "messages[0].content[0].tool_use_id",
    ),
    (
        request(
            messages=[{"role": "assistant", "content": [{"type": "tool_use", "name": "a", "input": {}}]}]
        ),
        "messages[0].content[0]",
    ),
    (request(temperature=1.5), "temperature"),
    (request(top_p=-0.1), "top_p"),
    (request(top_k=1.5), "top_k"),
    (request(stop_sequences="END"), "stop_sequences"),
    (request(system=[{"type": "image"}]), "system[0]"),
    (request(tools=[{"name": "t"}]), "tools[0].input_schema"),
    (request(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools[0].type"),
    (request(tool_choice={"type": "sometimes"}), "tool_choice"),
    (request(thinking={"type": "enabled", "budget_tokens": 100}), "thinking.budget_tokens"),
    (request(thinking={"type": "deep"}), "thinking"),
    (request(metadata={"user_id": 7}), "metadata.user_id"),
    (request(output_config={"format": {"type": "xml"}}), "output_config.format"),
    (request(stream="yes"), "stream"),
    (request(base_url="https://evil.test"), "base_url"),
]


@pytest.mark.parametrize(("body", "param"), BAD_REQUESTS)
def test_invalid_requests_are_400s_naming_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode(body)
    assert caught.value.status == 400
    assert caught.value.param == param
    assert param.split("[")[0].split(".")[0] in caught.value.message


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]"])
def test_a_body_that_is_not_a_json_object_is_a_400(body: bytes) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode_messages_request(body)
    assert caught.value.code == "invalid_json"


# --- answers ------------------------------------------------------------------------------------

USAGE = Usage(
    prompt_tokens=1000,
    completion_tokens=60,
    cached_tokens=600,
    cache_write_5m_tokens=100,
    cache_write_1h_tokens=50,
    reasoning_tokens=20,
)


def answer(message: dict[str, Any], finish_reason: str = "stop", **choice: Any) -> ChatResponse:
    return ChatResponse(
        id="upstream-1",
        created=1_760_000_000,
        model="claude-sonnet-4-5-20250929",
        choices=[
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None, **choice}
        ],
        usage=USAGE,
    )


def encode(response: ChatResponse, usage: Usage = USAGE) -> dict[str, Any]:
    body = encode_message_response(
        response,
        message_id="gen-1",
        model="anthropic/claude-sonnet-4.5",
        provider="anthropic",
        usage=usage,
        cost=0.5,
    )
    decoded: dict[str, Any] = msgspec.json.decode(body)
    return decoded


THINKING_ANSWER: dict[str, Any] = {
    "role": "assistant",
    "content": "Checking.",
    "reasoning": "Need the weather.",
    "reasoning_blocks": [{"type": "thinking", "thinking": "Need the weather.", "signature": SIGNATURE}],
    "tool_calls": [
        {
            "id": "toolu_9",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}},
    ],
}


def test_a_response_is_an_anthropic_message_the_sdk_reads() -> None:
    body = encode(answer(THINKING_ANSWER, "tool_calls"))
    message = Message.model_validate(body)
    assert message.id == "gen-1"
    assert message.model == "anthropic/claude-sonnet-4.5"
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert body["content"][0] == {"type": "thinking", "thinking": "Need the weather.", "signature": SIGNATURE}
    assert body["content"][2] == {
        "type": "tool_use",
        "id": "toolu_9",
        "name": "get_weather",
        "input": {"city": "Oslo"},
    }
    assert body["content"][3]["input"] == {}
    assert message.stop_reason == "tool_use"
    assert body["provider"] == "anthropic"


def test_usage_counts_input_tokens_the_way_anthropic_does() -> None:
    usage = Message.model_validate(encode(answer({"role": "assistant", "content": "Hi"}))).usage
    assert usage.input_tokens == 1000 - 600 - 100 - 50
    assert usage.cache_read_input_tokens == 600
    assert usage.cache_creation_input_tokens == 150
    assert usage.cache_creation is not None
    assert (
        usage.cache_creation.ephemeral_5m_input_tokens,
        usage.cache_creation.ephemeral_1h_input_tokens,
    ) == (100, 50)
    assert usage.output_tokens == 60
    assert usage.output_tokens_details is not None and usage.output_tokens_details.thinking_tokens == 20
    assert encode(answer({"role": "assistant", "content": "Hi"}))["usage"]["cost"] == 0.5


@pytest.mark.parametrize(
    ("finish_reason", "extra", "stop_reason", "stop_sequence"),
    [
        ("stop", {}, "end_turn", None),
        ("stop", {"stop_sequence": "END"}, "stop_sequence", "END"),
        ("length", {}, "max_tokens", None),
        ("tool_calls", {}, "tool_use", None),
        ("content_filter", {}, "refusal", None),
        (None, {}, "end_turn", None),
    ],
)
def test_finish_reasons_become_stop_reasons(
    finish_reason: str | None, extra: dict[str, Any], stop_reason: str, stop_sequence: str | None
) -> None:
    body = encode(answer({"role": "assistant", "content": "x"}, finish_reason, **extra))  # type: ignore[arg-type]
    assert (body["stop_reason"], body["stop_sequence"]) == (stop_reason, stop_sequence)


def test_reasoning_without_signature_and_an_openai_refusal() -> None:
    body = encode(answer({"role": "assistant", "content": None, "reasoning": "hmm", "refusal": "I can't."}))
    assert body["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": ""},
        {"type": "text", "text": "I can't."},
    ]
    assert body["stop_reason"] == "refusal"


# --- streams ------------------------------------------------------------------------------------


def encoder() -> MessagesStreamEncoder:
    return MessagesStreamEncoder("gen-1", "anthropic/claude-sonnet-4.5", "anthropic", 321)


def run(events: list[StreamEvent], usage: Usage = USAGE, finish_reason: str | None = "stop") -> bytes:
    enc = encoder()
    return b"".join(enc.event(ev) for ev in events) + enc.finish(usage, 0.5, finish_reason)


def sse_events(frames: bytes) -> list[tuple[str | None, dict[str, Any]]]:
    return [(e.event, msgspec.json.decode(e.data)) for e in SSEDecoder().feed(frames)]


@pytest.fixture
def sdk() -> Iterator[Any]:
    """Serves SSE bytes to the official SDK and returns what its stream accumulator assembles."""
    served: list[bytes] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=served.pop())

    with (
        httpx2.Client(transport=httpx2.MockTransport(handler)) as http,
        anthropic.Anthropic(
            api_key="k", base_url="http://gateway.test", http_client=http, max_retries=0
        ) as client,
    ):

        def final_message(frames: bytes) -> Message:
            served.append(frames)
            with client.messages.stream(
                model="anthropic/claude-sonnet-4.5",
                max_tokens=100,
                messages=[{"role": "user", "content": "Hi"}],
            ) as stream:
                return stream.get_final_message()

        yield final_message


def same_message(streamed: Message, whole: dict[str, Any]) -> None:
    """The SDK's streamed result equals the non-streamed encoding of the same answer. ``cost`` and the
    cache_creation breakdown ride on message_delta, which the SDK's snapshot does not copy."""
    expected = Message.model_validate(whole)
    assert streamed.id == expected.id
    assert streamed.model == expected.model
    assert [b.to_dict() for b in streamed.content] == [b.to_dict() for b in expected.content]
    assert (streamed.stop_reason, streamed.stop_sequence) == (expected.stop_reason, expected.stop_sequence)
    fields = ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    assert {f: getattr(streamed.usage, f) for f in fields} == {f: getattr(expected.usage, f) for f in fields}
    assert streamed.usage.output_tokens_details == expected.usage.output_tokens_details


def test_a_text_stream_is_anthropics_event_sequence() -> None:
    frames = run(
        [StreamEvent(delta={"role": "assistant", "content": "Hel"}), StreamEvent(delta={"content": "lo"})]
    )
    events = sse_events(frames)
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(name == data["type"] for name, data in events)
    start = events[0][1]["message"]
    assert (start["id"], start["content"], start["stop_reason"], start["usage"]["input_tokens"]) == (
        "gen-1",
        [],
        None,
        321,
    )
    assert events[2][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    assert events[3][1] == {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Hel"},
    }
    assert events[6][1]["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert events[6][1]["usage"]["output_tokens"] == 60


def test_the_sdk_assembles_a_streamed_text_answer_equal_to_the_whole_one(sdk: Any) -> None:
    streamed = sdk(
        run(
            [
                StreamEvent(delta={"role": "assistant", "content": ""}),
                StreamEvent(delta={"content": "Hi there"}),
            ]
        )
    )
    same_message(streamed, encode(answer({"role": "assistant", "content": "Hi there"})))


def test_the_sdk_assembles_thinking_text_and_parallel_tool_calls(sdk: Any) -> None:
    events = [
        StreamEvent(delta={"role": "assistant", "reasoning": "Need the "}),
        StreamEvent(delta={"reasoning": "weather."}),
        StreamEvent(delta={"reasoning_signature": SIGNATURE}),
        StreamEvent(delta={"content": "Checking."}),
        StreamEvent(
            delta={
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_9",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        StreamEvent(delta={"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        StreamEvent(delta={"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]}),
        StreamEvent(
            delta={
                "tool_calls": [
                    {"index": 1, "id": "call_2", "function": {"name": "get_time", "arguments": "{}"}}
                ]
            }
        ),
        StreamEvent(finish_reason="tool_calls"),
    ]
    frames = run(events, finish_reason="tool_calls")
    names = [(n, d.get("index")) for n, d in sse_events(frames) if n.startswith("content_block")]  # type: ignore[union-attr]
    assert names == [
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("content_block_start", 3),
        ("content_block_delta", 3),
        ("content_block_stop", 3),
    ]
    whole = dict(THINKING_ANSWER)
    whole["tool_calls"] = [
        THINKING_ANSWER["tool_calls"][0],
        {**THINKING_ANSWER["tool_calls"][1], "function": {"name": "get_time", "arguments": "{}"}},
    ]
    same_message(sdk(frames), encode(answer(whole, "tool_calls")))


def test_a_stop_sequence_and_redacted_thinking_reach_the_sdk(sdk: Any) -> None:
    events = [
        StreamEvent(delta={"reasoning_redacted": "EmwKAhgBEgy3va3pzix"}),
        StreamEvent(delta={"content": "1, 2, 3"}),
        StreamEvent(delta={"stop_sequence": "4"}, finish_reason="stop"),
    ]
    whole = answer(
        {
            "role": "assistant",
            "content": "1, 2, 3",
            "reasoning_blocks": [{"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"}],
        },
        stop_sequence="4",
    )
    same_message(sdk(run(events)), encode(whole))


def test_an_answer_without_content_still_makes_a_whole_message(sdk: Any) -> None:
    streamed = sdk(run([], usage=Usage(prompt_tokens=5), finish_reason="length"))
    assert (streamed.content, streamed.stop_reason, streamed.usage.input_tokens) == ([], "max_tokens", 5)


@pytest.mark.parametrize(
    ("err", "error_type"),
    [
        (StreamInterrupted("openai broke the stream"), "api_error"),
        (AllAttemptsFailed("every provider attempt failed"), "api_error"),
        (DatabaseUnavailable("the database is down"), "overloaded_error"),
        (DeadlineExceeded("too slow"), "timeout_error"),
    ],
)
def test_a_broken_stream_ends_with_an_error_event_the_sdk_raises(
    sdk: Any, err: TokenmuxError, error_type: str
) -> None:
    enc = encoder()
    frames = enc.event(StreamEvent(delta={"content": "Hal"})) + enc.error(err)
    assert sse_events(frames)[-1] == (
        "error",
        {"type": "error", "error": {"type": error_type, "message": err.message}},
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk(frames)
    assert caught.value.body == {"type": "error", "error": {"type": error_type, "message": err.message}}


# --- errors and models --------------------------------------------------------------------------


def http_error(status: int) -> TokenmuxError:
    err = TokenmuxError("the provider rejected the request")
    err.status = status
    return err


@pytest.mark.parametrize(
    ("err", "error_type"),
    [
        (InvalidRequest("bad", param="max_tokens"), "invalid_request_error"),
        (AuthenticationFailed("no key"), "authentication_error"),
        (InsufficientCredit("spent"), "billing_error"),
        (PermissionDenied("not this model"), "permission_error"),
        (ModelNotFound("no such model"), "not_found_error"),
        (PayloadTooLarge("too big"), "request_too_large"),
        (RateLimited("slow down", retry_after=2), "rate_limit_error"),
        (http_error(422), "invalid_request_error"),
        (http_error(500), "api_error"),
        (DatabaseUnavailable("the database is down"), "overloaded_error"),
        (http_error(529), "overloaded_error"),
        (DeadlineExceeded("late"), "timeout_error"),
    ],
)
def test_errors_take_anthropics_shape_and_types(err: TokenmuxError, error_type: str) -> None:
    assert msgspec.json.decode(encode_error(err)) == {
        "type": "error",
        "error": {"type": error_type, "message": err.message},
    }


def test_an_all_attempts_failed_error_keeps_its_attempts() -> None:
    attempts = [{"provider": "anthropic", "error": "overloaded", "status": 529}]
    body = msgspec.json.decode(
        encode_error(AllAttemptsFailed("every attempt failed", metadata={"attempts": attempts}))
    )
    assert body["error"] == {
        "type": "api_error",
        "message": "every attempt failed",
        "metadata": {"attempts": attempts},
    }


def model(model_id: str, created: str, protocols: tuple[str, ...] = ("openai", "anthropic")) -> Model:
    endpoint = Endpoint(
        model_id=model_id,
        provider="p",
        upstream_model=model_id,
        context_length=200_000,
        max_output=64_000,
        price=Price(input=1.0, output=5.0),
        supported_parameters=frozenset(),
        protocols=protocols,
    )
    return Model(
        id=model_id,
        name=f"Name of {model_id}",
        author=model_id.split("/")[0],
        description="",
        created=created,
        input_modalities=("text",),
        output_modalities=("text",),
        context_length=200_000,
        max_output=64_000,
        tokenizer="claude",
        endpoints=(endpoint,),
    )


def test_the_model_list_is_anthropics_shape_newest_first() -> None:
    catalog = Catalog(
        models={
            m.id: m
            for m in (
                model("anthropic/claude-haiku-4.5", "2025-10-15"),
                model("openai/gpt-4.1-nano", "2025-04-14"),
                model("x/openai-only", "2025-12-01", protocols=("openai",)),
            )
        },
        providers={},
        prices_as_of="2026-01-01",
    )
    body = msgspec.json.decode(models_json(catalog))
    assert [m["id"] for m in body["data"]] == ["anthropic/claude-haiku-4.5", "openai/gpt-4.1-nano"]
    assert (body["has_more"], body["first_id"], body["last_id"]) == (
        False,
        "anthropic/claude-haiku-4.5",
        "openai/gpt-4.1-nano",
    )
    info = ModelInfo.model_validate(body["data"][0])
    assert (info.display_name, info.created_at.isoformat(), info.max_input_tokens) == (
        "Name of anthropic/claude-haiku-4.5",
        "2025-10-15T00:00:00+00:00",
        200_000,
    )


def test_each_signed_thinking_block_stays_a_block_of_its_own(sdk: Any) -> None:
    events = [
        StreamEvent(delta={"reasoning": "First."}),
        StreamEvent(delta={"reasoning_signature": "sig-1"}),
        StreamEvent(delta={"reasoning": "Second."}),
        StreamEvent(delta={"reasoning_signature": "sig-2"}),
        StreamEvent(delta={"content": "Done."}),
    ]
    streamed = sdk(run(events))
    assert [b.to_dict() for b in streamed.content] == [
        {"type": "thinking", "thinking": "First.", "signature": "sig-1"},
        {"type": "thinking", "thinking": "Second.", "signature": "sig-2"},
        {"type": "text", "text": "Done."},
    ]
