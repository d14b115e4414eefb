"""The ``openai-compatible`` adapter: the OpenAI adapter plus the deviations of vLLM, DeepSeek, Groq, ..."""

from __future__ import annotations

from typing import Any

import msgspec
from adapter_helpers import MESSAGES, Recorder, chat, chunk, collect, completion, config, context, delta

from tokenmux.providers.openai import OpenAIProvider
from tokenmux.providers.openai_compatible import OpenAICompatibleProvider
from tokenmux.providers.transport import MockResponse, MockTransport
from tokenmux.types import Usage


def compatible(recorder: Recorder, **overrides: Any) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(config("openai-compatible", **overrides), MockTransport(recorder))


async def test_request_goes_to_the_configured_base_url_without_a_key() -> None:
    recorder = Recorder(MockResponse.json(completion()))
    adapter = compatible(recorder, base_url="http://127.0.0.1:11434/v1", api_key=None)
    await adapter.complete(chat(), context({"seed": 1}, upstream_model="llama3.1:8b"))
    [sent] = recorder.requests
    assert sent.url == "http://127.0.0.1:11434/v1/chat/completions"
    assert sent.headers == [("Content-Type", "application/json")]
    assert recorder.body == {"model": "llama3.1:8b", "messages": MESSAGES, "seed": 1, "stream": False}


async def test_reasoning_content_becomes_reasoning() -> None:
    message = {"role": "assistant", "content": "4", "reasoning_content": "2+2 is 4"}
    answer = completion(choices=[{"index": 0, "message": message, "finish_reason": "stop"}])
    response = await compatible(Recorder(MockResponse.json(answer))).complete(chat(), context())
    assert response.choices[0]["message"] == {"role": "assistant", "content": "4", "reasoning": "2+2 is 4"}

    payloads = [
        chunk([delta(role="assistant", content=None, reasoning_content="think")]),
        chunk([delta(content="4", reasoning_content=None)]),
        chunk([delta(finish_reason="stop")]),
    ]
    events = await collect(compatible(Recorder(MockResponse.sse(payloads))).stream(chat(True), context()))
    assert [e.delta for e in events] == [
        {"role": "assistant", "content": None, "reasoning": "think"},
        {"content": "4"},
        {},
    ]
    assert events[0].has_content


async def test_deepseek_cache_hit_tokens_count_as_cached() -> None:
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 5,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 36,
        "completion_tokens_details": {"reasoning_tokens": 3},
    }
    response = await compatible(Recorder(MockResponse.json(completion(usage=usage)))).complete(
        chat(), context()
    )
    assert response.usage == Usage(
        prompt_tokens=100, completion_tokens=5, cached_tokens=64, reasoning_tokens=3
    )


async def test_usage_on_the_last_content_chunk_is_read() -> None:
    usage = {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8}
    payloads = [chunk([delta(content="a")]), chunk([delta(finish_reason="stop")], usage=usage)]
    for adapter_class in (OpenAICompatibleProvider, OpenAIProvider):
        adapter = adapter_class(config(), MockTransport(Recorder(MockResponse.sse(payloads))))
        events = await collect(adapter.stream(chat(True), context()))
        assert [(e.finish_reason, e.usage) for e in events] == [
            (None, None),
            ("stop", None),
            (None, Usage(prompt_tokens=7, completion_tokens=1)),
        ]


async def test_groq_usage_under_x_groq_is_read() -> None:
    usage = {"prompt_tokens": 12, "completion_tokens": 3}
    payloads = [chunk([delta(content="a")]), chunk([delta(finish_reason="stop")], x_groq={"usage": usage})]
    events = await collect(compatible(Recorder(MockResponse.sse(payloads))).stream(chat(True), context()))
    assert events[-1].usage == Usage(prompt_tokens=12, completion_tokens=3)


async def test_stream_without_usage_without_done_and_without_final_blank_line() -> None:
    body = [
        b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n',
        b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}',
    ]
    events = await collect(compatible(Recorder(MockResponse(200, {}, body))).stream(chat(True), context()))
    assert [(e.delta, e.finish_reason, e.usage) for e in events] == [
        ({"content": "Hi"}, None, None),
        ({}, "stop", None),
    ]


async def test_stream_chunks_go_through_the_adapters_seams() -> None:
    body = [
        b'data: {"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]}\n\n',
        b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "x_groq": {"usage": '
        b'{"prompt_tokens": 4, "completion_tokens": 2}}}\n\n',
        b"data: [DONE]\n\n",
    ]
    adapter = compatible(Recorder(MockResponse(200, {}, body)))
    units = [unit async for batch in adapter.stream_chunks(chat(True), context()) for unit in batch]
    assert [msgspec.json.decode(a) for a in units[0].choices] == [
        [{"index": 0, "delta": {"reasoning": "hmm"}, "finish_reason": None}]
    ]
    assert units[0].has_content
    assert units[1].usage == Usage(prompt_tokens=4, completion_tokens=2)
