"""openai_chunks: a Chat Completions chunk read once, its choices passed on as they came."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from tokenmux.protocols.openai_chat import ChunkEncoder
from tokenmux.protocols.openai_chunks import (
    PassThroughChunk,
    chunk_of_events,
    read_plain_chunk,
    read_plain_run,
)
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
    [choices] = chunk.choices
    assert bytes(choices) == (
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
    assert [msgspec.json.decode(a) for a in rebuilt.choices] == [
        [
            {"index": 0, "delta": {"content": "Hel"}, "finish_reason": None},
            {"index": 1, "delta": choices[1]["delta"], "finish_reason": "tool_calls"},
        ]
    ]


def test_the_encoder_frames_passed_through_choices_under_the_gateways_names() -> None:
    encoder = ChunkEncoder(
        generation_id="gen-1", created=7, model="openai/gpt-4.1-nano", provider="openai", include_usage=False
    )
    chunk = read(data([{"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}]))
    assert chunk is not None
    frame = encoder.chunks(chunk.choices)
    assert frame.startswith(b"data: ") and frame.endswith(b"\n\n")
    assert msgspec.json.decode(frame[6:]) == {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 7,
        "model": "openai/gpt-4.1-nano",
        "provider": "openai",
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": None, "finish_reason": None}],
    }


RUN = [
    data(
        [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}]
    ),
    data([{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}], usage=None),
    data(
        [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}}],
        system_fingerprint="fp",
    ),
    data([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
    data([], usage={"prompt_tokens": 3, "completion_tokens": 2}),
]


def as_run(payloads: list[str]) -> bytes:
    return ("[" + ",".join(payloads) + "]").encode()


def test_a_run_of_chunks_tells_what_its_chunks_tell_one_by_one() -> None:
    one_by_one = [read(payload) for payload in RUN]
    run = read_plain_run(as_run(RUN), parse_usage)
    assert run is not None and all(chunk is not None for chunk in one_by_one)
    assert [bytes(a) for a in run.choices] == [bytes(a) for c in one_by_one if c for a in c.choices]
    assert run.has_content
    assert run.finish_reason == "stop"
    assert run.usage == parse_usage({"prompt_tokens": 3, "completion_tokens": 2})
    assert run.text == "Hel{}"
    empty = read_plain_run(b"[]", parse_usage)
    assert empty is not None and not empty.choices and empty.usage is None and not empty.has_content


@pytest.mark.parametrize(
    "odd",
    [
        "42",
        data(choices=None, error={"message": "overloaded", "type": "server_error"}),
        data([{"index": 0, "finish_reason": "stop"}]),  # no delta
        data(choices=3),
    ],
)
def test_a_run_holding_a_chunk_that_is_not_plain_is_read_chunk_by_chunk(odd: str) -> None:
    assert read_plain_run(as_run([RUN[1], odd, RUN[3]]), parse_usage) is None


def test_the_encoder_frames_each_chunk_of_a_run_in_one_piece() -> None:
    encoder = ChunkEncoder(generation_id="gen-1", created=7, model="m", provider="p", include_usage=False)
    run = read_plain_run(as_run(RUN), parse_usage)
    assert run is not None
    frames = encoder.chunks(run.choices)
    assert frames == b"".join(encoder.chunks([array]) for array in run.choices)
    assert frames.count(b"data: ") == 4 and encoder.chunks([]) == b""
