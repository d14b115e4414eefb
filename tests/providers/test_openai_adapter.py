"""The ``openai`` adapter over a MockTransport: what it sends, how it reads answers, streams and errors."""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from adapter_helpers import MESSAGES, Recorder, chat, chunk, collect, completion, config, context, delta

from tokenmux.errors import (
    ProviderMalformed,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnreachable,
    StreamInterrupted,
)
from tokenmux.protocols.sse import encode_data
from tokenmux.providers import build_provider
from tokenmux.providers.openai import OpenAIProvider
from tokenmux.providers.transport import HttpRequest, MockResponse, MockTransport
from tokenmux.types import StreamEvent, Usage

# Every chat parameter the gateway passes on, with values of the shapes clients send.
EVERY_PARAM: dict[str, Any] = {
    "max_completion_tokens": 256,
    "max_tokens": 256,
    "temperature": 0.2,
    "top_p": 0.9,
    "frequency_penalty": 0.5,
    "presence_penalty": -0.5,
    "seed": 42,
    "logit_bias": {"1734": -100},
    "logprobs": True,
    "top_logprobs": 3,
    "response_format": {
        "type": "json_schema",
        "json_schema": {
            "name": "answer",
            "strict": True,
            "schema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        },
    },
    "stop": ["\n\n", "END"],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "user": "user-7",
}


def sse_chunks(payloads: list[Any]) -> list[bytes]:
    return [encode_data(msgspec.json.encode(payload)) for payload in payloads]


def provider(handler: Any, **config_overrides: Any) -> OpenAIProvider:
    return OpenAIProvider(config(**config_overrides), MockTransport(handler))


# What goes out


async def test_non_streamed_request_is_exactly_the_chat_completions_call() -> None:
    recorder = Recorder(MockResponse.json(completion()))
    adapter = provider(recorder, headers=(("OpenAI-Organization", "org-1"),))
    await adapter.complete(chat(), context(EVERY_PARAM, timeout_s=12.5))

    [sent] = recorder.requests
    assert sent.method == "POST"
    assert sent.url == "https://api.example.test/v1/chat/completions"
    assert sent.headers == [
        ("Authorization", "Bearer sk-test-0123456789"),
        ("Content-Type", "application/json"),
        ("OpenAI-Organization", "org-1"),
    ]
    assert sent.timeout_s == 12.5
    assert msgspec.json.decode(sent.body) == {
        "model": "gpt-4.1-nano",
        "messages": MESSAGES,
        **EVERY_PARAM,
        "stream": False,
    }


async def test_streamed_request_always_asks_for_usage() -> None:
    recorder = Recorder(MockResponse.sse([chunk([delta(finish_reason="stop", content="hi")])]))
    await collect(provider(recorder).stream(chat(stream=True), context({"temperature": 1})))
    assert recorder.body == {
        "model": "gpt-4.1-nano",
        "messages": MESSAGES,
        "temperature": 1,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_no_key_means_no_authorization_header() -> None:
    recorder = Recorder(MockResponse.json(completion()))
    await provider(recorder, api_key=None).complete(chat(), context())
    assert recorder.requests[0].headers == [("Content-Type", "application/json")]


async def test_the_configured_timeout_caps_the_deadline() -> None:
    recorder = Recorder(MockResponse.json(completion()))
    await provider(recorder, timeout_s=5.0).complete(chat(), context(timeout_s=60.0))
    assert recorder.requests[0].timeout_s == 5.0


async def test_trailing_slash_in_base_url_is_ignored() -> None:
    recorder = Recorder(MockResponse.json(completion()))
    await provider(recorder, base_url="http://127.0.0.1:9100/openai/v1/").complete(chat(), context())
    assert recorder.requests[0].url == "http://127.0.0.1:9100/openai/v1/chat/completions"


# Non-streamed answers


async def test_non_streamed_answer_with_cached_and_reasoning_tokens() -> None:
    tool_call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    answer = completion(
        choices=[
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [tool_call]},
                "logprobs": {"content": []},
                "finish_reason": "tool_calls",
            }
        ]
    )
    response = await provider(Recorder(MockResponse.json(answer))).complete(chat(), context())
    assert response.id == "chatcmpl-1"
    assert response.created == 1_760_000_000
    assert response.model == "gpt-4.1-nano-2025-04-14"
    assert response.system_fingerprint == "fp_1"
    assert response.choices == answer["choices"]
    assert response.usage == Usage(
        prompt_tokens=1200, completion_tokens=40, cached_tokens=1024, reasoning_tokens=16
    )


async def test_missing_usage_is_none_and_missing_fields_are_filled() -> None:
    answer = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}]}
    before = int(time.time())
    response = await provider(Recorder(MockResponse.json(answer))).complete(chat(), context())
    assert response.usage is None
    assert response.model == "gpt-4.1-nano"
    assert response.id == ""
    assert response.created >= before


async def test_usage_without_details_counts_zero_cached_and_reasoning() -> None:
    answer = completion(usage={"prompt_tokens": 9, "completion_tokens": 2, "prompt_tokens_details": None})
    response = await provider(Recorder(MockResponse.json(answer))).complete(chat(), context())
    assert response.usage == Usage(prompt_tokens=9, completion_tokens=2)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"<html>502 Bad Gateway</html>", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"id": "x", "object": "chat.completion"}', "without choices"),
        (b'{"choices": []}', "without choices"),
        (b'{"choices": ["text"]}', "not an object"),
    ],
)
async def test_a_2xx_answer_we_cannot_read_is_malformed(body: bytes, fragment: str) -> None:
    adapter = provider(Recorder(MockResponse(200, {}, body)))
    with pytest.raises(ProviderMalformed, match=fragment):
        await adapter.complete(chat(), context())


async def test_an_error_object_in_a_200_answer_is_a_rejection() -> None:
    answer = {"error": {"message": "model overloaded", "type": "server_error", "code": None}}
    with pytest.raises(ProviderRejected) as caught:
        await provider(Recorder(MockResponse.json(answer))).complete(chat(), context())
    assert caught.value.message == "model overloaded"
    assert caught.value.upstream_status == 500
    assert caught.value.retryable


# Error statuses


def rate_limited(headers: dict[str, str]) -> MockResponse:
    error = {
        "message": "Rate limit reached for gpt-4.1-nano",
        "type": "tokens",
        "code": "rate_limit_exceeded",
    }
    return MockResponse.json({"error": error}, status=429, headers=headers)


@pytest.mark.parametrize("streamed", [False, True])
async def test_429_with_retry_after_is_retryable_with_its_delay(streamed: bool) -> None:
    adapter = provider(Recorder(rate_limited({"Retry-After": "7"})))
    with pytest.raises(ProviderRejected) as caught:
        if streamed:
            await collect(adapter.stream(chat(stream=True), context()))
        else:
            await adapter.complete(chat(), context())
    error = caught.value
    assert error.upstream_status == 429
    assert error.retryable
    assert error.retry_after == 7.0
    assert error.error_class == "rate_limited"
    assert error.message == "Rate limit reached for gpt-4.1-nano"
    assert error.upstream_type == "tokens"


async def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    with pytest.raises(ProviderRejected) as caught:
        await provider(Recorder(rate_limited({"retry-after": when}))).complete(chat(), context())
    assert caught.value.retry_after is not None
    assert 28.0 <= caught.value.retry_after <= 30.0


async def test_retry_after_ms_wins_over_retry_after() -> None:
    response = rate_limited({"retry-after-ms": "1500", "retry-after": "2"})
    with pytest.raises(ProviderRejected) as caught:
        await provider(Recorder(response)).complete(chat(), context())
    assert caught.value.retry_after == 1.5


async def test_unreadable_retry_after_is_ignored() -> None:
    with pytest.raises(ProviderRejected) as caught:
        await provider(Recorder(rate_limited({"retry-after": "soon"}))).complete(chat(), context())
    assert caught.value.retry_after is None


async def test_400_is_not_retryable_and_keeps_the_providers_words() -> None:
    error = {
        "message": "Invalid value for 'temperature': expected a number <= 2.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_value",
    }
    adapter = provider(Recorder(MockResponse.json({"error": error}, status=400)))
    with pytest.raises(ProviderRejected) as caught:
        await adapter.complete(chat(), context({"temperature": 3}))
    assert not caught.value.retryable
    assert caught.value.error_class == "client_error"
    assert caught.value.upstream_status == 400
    assert caught.value.message == error["message"]
    assert caught.value.param == "temperature"
    assert caught.value.upstream_type == "invalid_request_error"


@pytest.mark.parametrize("status", [408, 409, 500, 502, 503, 529])
async def test_provider_side_statuses_are_retryable(status: int) -> None:
    adapter = provider(Recorder(MockResponse(status, {"content-type": "text/plain"}, b"upstream overloaded")))
    with pytest.raises(ProviderRejected) as caught:
        await adapter.complete(chat(), context())
    assert caught.value.retryable
    assert caught.value.upstream_status == status
    assert caught.value.message == f"HTTP {status}: upstream overloaded"


@pytest.mark.parametrize("status", [401, 403, 404, 413, 422])
async def test_request_side_statuses_are_not_retryable(status: int) -> None:
    adapter = provider(Recorder(MockResponse(status, {}, b"")))
    with pytest.raises(ProviderRejected) as caught:
        await adapter.complete(chat(), context())
    assert not caught.value.retryable
    assert caught.value.message == f"HTTP {status}: empty body"


async def test_the_api_key_never_appears_in_an_error() -> None:
    error = {"message": "Incorrect API key provided: sk-test-0123456789.", "type": "invalid_request_error"}
    adapter = build_provider(
        config(), MockTransport(Recorder(MockResponse.json({"error": error}, status=401)))
    )
    with pytest.raises(ProviderRejected) as caught:
        await adapter.complete(chat(), context())
    assert "sk-test-0123456789" not in str(caught.value)
    assert caught.value.message == "Incorrect API key provided: ***."


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"error": "model \'x\' not found"}', "model 'x' not found"),  # Ollama
        (b'{"object": "error", "message": "bad model", "type": "NotFoundError"}', "bad model"),  # vLLM
        (b'{"detail": "Not Found"}', "Not Found"),  # FastAPI-based servers
        (b'[{"error": {"message": "in a list"}}]', "in a list"),
    ],
)
async def test_error_bodies_of_other_shapes_still_give_their_message(body: bytes, message: str) -> None:
    with pytest.raises(ProviderRejected) as caught:
        await provider(Recorder(MockResponse(404, {}, body))).complete(chat(), context())
    assert caught.value.message == message


async def test_a_redirect_is_a_rejection_naming_the_fix() -> None:
    response = MockResponse(308, {"Location": "https://api.example.test/v2/chat/completions"}, b"")
    with pytest.raises(ProviderRejected, match=r"redirected to https://api\.example\.test/v2.*base_url"):
        await provider(Recorder(response)).complete(chat(), context())


# Network failures (simulated by the handler, as the real transport would raise them)


async def test_unreachable_and_timeout_pass_through() -> None:
    def refuse(request: HttpRequest) -> MockResponse:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(ProviderUnreachable):
        await provider(refuse).complete(chat(), context())

    async def hang(request: HttpRequest) -> MockResponse:
        await asyncio.sleep(10)
        raise AssertionError("the timeout should have fired")

    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await provider(hang).complete(chat(), context(timeout_s=0.05))
    assert time.monotonic() - started < 1.0


# Streams


def tool_call_stream() -> list[Any]:
    return [
        chunk([delta(role="assistant", content=None, refusal=None)]),
        chunk(
            [
                delta(
                    tool_calls=[
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                )
            ]
        ),
        chunk([delta(tool_calls=[{"index": 0, "function": {"arguments": '{"city":'}}])]),
        chunk([delta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}])]),
        chunk([delta(finish_reason="tool_calls")]),
        chunk(
            [],
            usage={
                "prompt_tokens": 80,
                "completion_tokens": 12,
                "total_tokens": 92,
                "prompt_tokens_details": {"cached_tokens": 64},
                "completion_tokens_details": {"reasoning_tokens": 0},
            },
        ),
    ]


async def test_stream_of_tool_call_deltas_and_usage() -> None:
    payloads = tool_call_stream()
    adapter = provider(Recorder(MockResponse.sse(payloads)))
    events = await collect(adapter.stream(chat(stream=True), context()))

    def choice_event(delta: dict[str, Any], finish_reason: str | None = None) -> StreamEvent:
        return StreamEvent(
            delta=delta, finish_reason=finish_reason, id="chatcmpl-1", system_fingerprint="fp_1"
        )

    assert events == [
        choice_event({"role": "assistant", "content": None, "refusal": None}),
        choice_event(payloads[1]["choices"][0]["delta"]),
        choice_event({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        choice_event({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        choice_event({}, "tool_calls"),
        StreamEvent(usage=Usage(prompt_tokens=80, completion_tokens=12, cached_tokens=64), id="chatcmpl-1"),
    ]


async def test_stream_keeps_choice_index_and_logprobs() -> None:
    logprobs = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]}
    payloads = [
        chunk([{"index": 1, "delta": {"content": "Hi"}, "logprobs": logprobs, "finish_reason": None}]),
        chunk([delta(index=1, finish_reason="stop")]),
    ]
    events = await collect(provider(Recorder(MockResponse.sse(payloads))).stream(chat(True), context()))
    assert [(e.index, e.logprobs, e.finish_reason) for e in events] == [
        (1, logprobs, None),
        (1, None, "stop"),
    ]


async def test_stream_split_into_arbitrary_pieces_decodes_the_same() -> None:
    whole = b"".join(sse_chunks(tool_call_stream()))
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    split = await collect(provider(Recorder(MockResponse(200, {}, pieces))).stream(chat(True), context()))
    joined = await collect(
        provider(Recorder(MockResponse.sse(tool_call_stream()))).stream(chat(True), context())
    )
    assert split == joined
    assert len(split) == 6


async def test_an_error_status_on_a_stream_raises_on_first_iteration() -> None:
    body = b'{"error": {"message": "overloaded", "type": "server_error"}}'
    stream = provider(Recorder(MockResponse(503, {}, body))).stream(chat(True), context())
    with pytest.raises(ProviderRejected, match="overloaded") as caught:
        await anext(stream)
    assert caught.value.retryable


async def test_error_event_before_content_is_a_retryable_rejection() -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error", "code": None}}
    payloads = [chunk([delta(role="assistant", content="")]), error]
    stream = provider(Recorder(MockResponse.sse(payloads, done=False))).stream(chat(True), context())
    with pytest.raises(ProviderRejected) as caught:
        await collect(stream)
    assert caught.value.message == "The server had an error"
    assert caught.value.upstream_status == 500
    assert caught.value.retryable


async def test_error_event_with_its_own_code_uses_it() -> None:
    error = {"error": {"message": "slow down", "code": 429}}
    stream = provider(Recorder(MockResponse.sse([error], done=False))).stream(chat(True), context())
    with pytest.raises(ProviderRejected) as caught:
        await collect(stream)
    assert caught.value.upstream_status == 429
    assert caught.value.error_class == "rate_limited"


async def test_named_error_event_is_a_rejection() -> None:
    body = [b'event: error\ndata: {"message": "quota exceeded", "type": "rate_limit_error"}\n\n']
    stream = provider(Recorder(MockResponse(200, {}, body))).stream(chat(True), context())
    with pytest.raises(ProviderRejected, match="quota exceeded") as caught:
        await collect(stream)
    assert caught.value.upstream_status == 429


async def test_error_event_after_content_interrupts_the_stream() -> None:
    error = {"error": {"message": "The server had an error", "type": "server_error"}}
    payloads = [chunk([delta(role="assistant", content="Hel")]), error]
    stream = provider(Recorder(MockResponse.sse(payloads, done=False))).stream(chat(True), context())
    assert (await anext(stream)).delta == {"role": "assistant", "content": "Hel"}
    with pytest.raises(StreamInterrupted, match="The server had an error") as caught:
        await anext(stream)
    assert isinstance(caught.value.__cause__, ProviderRejected)
    assert not caught.value.retryable


async def test_stream_cut_after_content_without_done_is_interrupted() -> None:
    payloads = [chunk([delta(role="assistant", content="Hel")]), chunk([delta(content="lo")])]
    stream = provider(Recorder(MockResponse.sse(payloads, done=False))).stream(chat(True), context())
    received = []
    with pytest.raises(StreamInterrupted, match="before the answer was finished"):
        async for event in stream:
            received.append(event.delta)
    assert received == [{"role": "assistant", "content": "Hel"}, {"content": "lo"}]


async def test_stream_with_nothing_in_it_is_malformed() -> None:
    for body in ([], [b": keep-alive\n\n"], [b"data: [DONE]\n\n"]):
        stream = provider(Recorder(MockResponse(200, {}, body))).stream(chat(True), context())
        with pytest.raises(ProviderMalformed, match="without an answer"):
            await collect(stream)


async def test_stream_ending_after_its_finish_without_done_is_complete() -> None:
    payloads = [chunk([delta(content="Hi")]), chunk([delta(finish_reason="stop")])]
    events = await collect(
        provider(Recorder(MockResponse.sse(payloads, done=False))).stream(chat(True), context())
    )
    assert [e.finish_reason for e in events] == [None, "stop"]


async def test_undecodable_chunk_before_content_is_malformed_and_after_is_interrupted() -> None:
    body = [b"data: {not json\n\n"]
    with pytest.raises(ProviderMalformed, match="not JSON"):
        await collect(provider(Recorder(MockResponse(200, {}, body))).stream(chat(True), context()))

    body = [b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n', b"data: {not json\n\n"]
    with pytest.raises(StreamInterrupted, match="not JSON") as caught:
        await collect(provider(Recorder(MockResponse(200, {}, body))).stream(chat(True), context()))
    assert isinstance(caught.value.__cause__, ProviderMalformed)


async def test_chunk_of_the_wrong_shape_is_malformed() -> None:
    for body in ([b"data: [1, 2]\n\n"], [b'data: {"choices": ["x"]}\n\n'], [b'data: {"choices": 3}\n\n']):
        with pytest.raises(ProviderMalformed):
            await collect(provider(Recorder(MockResponse(200, {}, body))).stream(chat(True), context()))


async def test_network_failure_mid_stream_is_unreachable_before_content_and_interrupted_after() -> None:
    def failing_body(first: bytes) -> AsyncIterator[bytes]:
        async def body() -> AsyncIterator[bytes]:
            yield first
            raise ProviderUnreachable("the provider's answer was cut off")

        return body()

    [role_only] = sse_chunks([chunk([delta(role="assistant", content="")])])
    stream = provider(Recorder(MockResponse(200, {}, failing_body(role_only)))).stream(chat(True), context())
    with pytest.raises(ProviderUnreachable) as unreachable:
        await collect(stream)
    assert type(unreachable.value) is ProviderUnreachable

    [content] = sse_chunks([chunk([delta(content="Hi")])])
    stream = provider(Recorder(MockResponse(200, {}, failing_body(content)))).stream(chat(True), context())
    with pytest.raises(StreamInterrupted) as interrupted:
        await collect(stream)
    assert isinstance(interrupted.value.__cause__, ProviderUnreachable)


async def test_a_stalled_stream_times_out() -> None:
    async def stalled() -> AsyncIterator[bytes]:
        yield b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n'
        await asyncio.sleep(10)

    stream = provider(Recorder(MockResponse(200, {}, stalled()))).stream(chat(True), context(timeout_s=0.05))
    assert (await anext(stream)).delta == {"content": "a"}
    with pytest.raises(StreamInterrupted) as caught:
        await anext(stream)
    assert isinstance(caught.value.__cause__, ProviderTimeout)


async def test_closing_the_stream_early_closes_the_upstream_response() -> None:
    upstream_closed = asyncio.Event()

    async def endless() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b'data: {"choices": [{"index": 0, "delta": {"content": "x"}}]}\n\n'
                await asyncio.sleep(0)
        finally:
            upstream_closed.set()

    stream = provider(Recorder(MockResponse(200, {}, endless()))).stream(chat(True), context())
    assert (await anext(stream)).delta == {"content": "x"}
    await stream.aclose()
    assert upstream_closed.is_set()


async def test_cancelling_the_consumer_closes_the_upstream_response() -> None:
    upstream_closed = asyncio.Event()
    first_sent = asyncio.Event()

    async def slow() -> AsyncIterator[bytes]:
        try:
            yield b'data: {"choices": [{"index": 0, "delta": {"content": "x"}}]}\n\n'
            first_sent.set()
            await asyncio.sleep(10)
        finally:
            upstream_closed.set()

    adapter = provider(Recorder(MockResponse(200, {}, slow())))

    async def consume() -> None:
        async for _ in adapter.stream(chat(True), context()):
            pass

    task = asyncio.create_task(consume())
    await first_sent.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert upstream_closed.is_set()


# Batches and pass-through chunks


async def test_stream_batches_group_events_as_they_arrived() -> None:
    first, second, finish, usage = sse_chunks(
        [
            chunk([delta(role="assistant", content="")]),
            chunk([delta(content="Hi")]),
            chunk([delta(finish_reason="stop")]),
            chunk([], usage={"prompt_tokens": 3, "completion_tokens": 1}),
        ]
    )
    body = [first + second, finish + usage + b"data: [DONE]\n\n"]  # two network reads
    batches = provider(Recorder(MockResponse(200, {}, body))).stream_batches(chat(True), context())
    grouped = [batch async for batch in batches]
    assert [[e.delta for e in batch] for batch in grouped] == [
        [{"role": "assistant", "content": ""}, {"content": "Hi"}],
        [{}, None],
    ]
    assert grouped[1][1].usage == Usage(prompt_tokens=3, completion_tokens=1)


async def test_what_came_before_a_broken_chunk_in_the_same_read_still_comes_first() -> None:
    [content] = sse_chunks([chunk([delta(content="a")])])
    body = [content + b"data: {not json\n\n"]
    batches = provider(Recorder(MockResponse(200, {}, body))).stream_batches(chat(True), context())
    assert [e.delta for e in await anext(batches)] == [{"content": "a"}]
    with pytest.raises(StreamInterrupted, match="not JSON"):
        await anext(batches)


async def test_stream_chunks_pass_plain_choices_through_and_read_usage() -> None:
    filtered = delta(content="Hi") | {"content_filter_results": {"hate": {"filtered": False}}}
    body = sse_chunks(
        [
            chunk([delta(role="assistant", content="")]),
            chunk([filtered]),
            chunk([delta(finish_reason="stop")]),
            chunk([], usage={"prompt_tokens": 3, "completion_tokens": 1}),
        ]
    )
    body.append(b"data: [DONE]\n\n")
    chunks = provider(Recorder(MockResponse(200, {}, body))).stream_chunks(chat(True), context())
    units = [unit async for batch in chunks for unit in batch]
    assert [[msgspec.json.decode(a) for a in u.choices] or None for u in units] == [
        [[delta(role="assistant", content="")]],
        [[filtered]],  # every field of the provider's choice, as it came
        [[delta(finish_reason="stop")]],
        None,  # the usage chunk: nothing to send
    ]
    assert [u.has_content for u in units] == [False, True, False, False]
    assert units[2].finish_reason == "stop"
    assert units[3].usage == Usage(prompt_tokens=3, completion_tokens=1)


async def test_stream_chunks_rebuild_what_is_not_plain_and_keep_its_errors() -> None:
    body = [b'data: {"choices": [{"index": 0, "delta": {"content": "a"}}]}\n\n', b'data: {"choices": 3}\n\n']
    chunks = provider(Recorder(MockResponse(200, {}, body))).stream_chunks(chat(True), context())
    [first] = await anext(chunks)
    assert [msgspec.json.decode(a) for a in first.choices] == [[{"index": 0, "delta": {"content": "a"}}]]
    with pytest.raises(StreamInterrupted):
        await anext(chunks)

    no_delta = [b'data: {"choices": [{"index": 0, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n']
    chunks = provider(Recorder(MockResponse(200, {}, no_delta))).stream_chunks(chat(True), context())
    [[rebuilt]] = [batch async for batch in chunks]
    assert [msgspec.json.decode(a) for a in rebuilt.choices] == [
        [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    ]
