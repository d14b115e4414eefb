"""openai_chunks: a Chat Completions chunk read once, its choices passed on as they came."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tokenmux.protocols.openai_chat import ChunkEncoder
from tokenmux.protocols.openai_chunks import PassThroughChunk, chunk_of_events, read_plain_chunk
from tokenmux.protocols.sse import SSEEvent
from tokenmux.providers.base import ProviderConfig
from tokenmux.providers.openai import OpenAIProvider, parse_usage
from tokenmux.providers.transport import MockResponse, MockTransport

HEAD = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1-nano"}


def data(choices: Any = None, **fields: Any) -> str:
    body = {**HEAD, **fields}
    if choices is not None:
        body["choices"] = choices
    return msgspec.json.encode(body).decode()


def read(payload: str) -> PassThroughChunk | None:
    return read_plain_chunk(payload, parse_usage)


def test_a_content_chunk_keeps_its_choices_byte_for_byte() -> None:
    payload = (
        '{"id":"x","choices":[{"index":0,"delta":{"content":"Hi"},"logprobs":null,'
        '"finish_reason":null,"content_filter_results":{"hate":{"filtered":false}}}],"usage":null}'
    )
    chunk = read(payload)
    assert chunk is not None
    assert bytes(chunk.choices) == (
        b'[{"index":0,"delta":{"content":"Hi"},"logprobs":null,'
        b'"finish_reason":null,"content_filter_results":{"hate":{"filtered":false}}}]'
    )
    assert chunk.has_content and chunk.text == "Hi"
    assert chunk.finish_reason is None and chunk.usage is None


def test_what_the_gateway_needs_is_read_from_every_kind_of_chunk() -> None:
    role = read(data([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]))
    assert role is not None and not role.has_content and role.choices
    finish = read(data([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    assert finish is not None and finish.finish_reason == "stop" and not finish.has_content
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"q":'}}
    tool = read(data([{"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}]))
    assert tool is not None and tool.has_content and tool.text == '{"q":'
    for field in ("reasoning", "refusal"):
        other = read(data([{"index": 0, "delta": {field: "..."}, "finish_reason": None}]))
        assert other is not None and other.has_content and other.text == ""


def test_a_usage_chunk_has_nothing_to_send_but_its_usage() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 4}}
    chunk = read(data([], usage=usage))
    assert chunk is not None and not chunk.choices
    assert chunk.usage is not None
    assert (chunk.usage.prompt_tokens, chunk.usage.completion_tokens, chunk.usage.cached_tokens) == (12, 5, 4)
    assert read(data(usage=usage)) is not None  # no choices at all


@pytest.mark.parametrize(
    "payload",
    [
        "{not json",
        "[1, 2]",
        data(choices=None, error={"message": "overloaded", "type": "server_error"}),
        data([{"index": 0, "finish_reason": "stop"}]),  # no delta
        data([{"index": 0, "delta": {"content": ["a", "list"]}, "finish_reason": None}]),
        data(choices=3),
        data(choices=None, usage=[1]),
    ],
)
def test_anything_but_the_plain_shape_goes_to_the_general_path(payload: str) -> None:
    assert read(payload) is None


def test_a_chunk_rebuilt_from_events_tells_the_same_as_one_read_plainly() -> None:
    adapter = OpenAIProvider(
        ProviderConfig("openai", "openai", "http://x"), MockTransport(lambda r: MockResponse())
    )
    choices = [
        {"index": 0, "delta": {"content": "Hel"}, "finish_reason": None},
        {
            "index": 1,
            "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]},
            "finish_reason": "tool_calls",
        },
    ]
    payload = data(choices, usage={"prompt_tokens": 3, "completion_tokens": 2})
    plain = read(payload)
    rebuilt = chunk_of_events(adapter._stream_events(SSEEvent(None, payload), started=False))
    assert plain is not None
    for field in ("has_content", "finish_reason", "usage", "text"):
        assert getattr(rebuilt, field) == getattr(plain, field), field
    assert msgspec.json.decode(rebuilt.choices) == [
        {"index": 0, "delta": {"content": "Hel"}, "finish_reason": None},
        {"index": 1, "delta": choices[1]["delta"], "finish_reason": "tool_calls"},
    ]


def test_the_encoder_frames_passed_through_choices_under_the_gateways_names() -> None:
    encoder = ChunkEncoder(
        generation_id="gen-1", created=7, model="openai/gpt-4.1-nano", provider="openai", include_usage=False
    )
    chunk = read(data([{"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}]))
    assert chunk is not None
    frame = encoder.chunk(chunk.choices)
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    assert msgspec.json.decode(frame[6:]) == {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "openai/gpt-4.1-nano",
        "provider": "openai",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}],
    }
