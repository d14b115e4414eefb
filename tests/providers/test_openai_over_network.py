"""The OpenAI adapter on each real transport against a loopback server: the whole upstream path."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec
import pytest
from adapter_helpers import MESSAGES, chat, chunk, completion, config, context, delta
from loopback_http import LoopbackServer, each_request, full_response, read_request, response_head
from loopback_http import chunk as http_chunk

from tokenmux.errors import ProviderUnreachable
from tokenmux.protocols.sse import DONE, encode_data
from tokenmux.providers.aiohttp_transport import AiohttpTransport
from tokenmux.providers.base import FinalBatch
from tokenmux.providers.http1 import Http1Transport
from tokenmux.providers.openai import OpenAIProvider
from tokenmux.providers.transport import Transport
from tokenmux.types import Usage

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(params=[AiohttpTransport, Http1Transport])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    transport: Transport = request.param()
    yield transport
    await transport.aclose()


def sse(payload: object) -> bytes:
    return http_chunk(encode_data(msgspec.json.encode(payload)))


STREAM = [
    sse(chunk([delta(role="assistant", content="")])),
    sse(chunk([delta(content="Hello")])),
    sse(chunk([delta(finish_reason="stop")])),
    sse(chunk([], usage={"prompt_tokens": 5, "completion_tokens": 1})),
    http_chunk(DONE),
]


async def test_non_streamed_call_over_the_network(transport: Transport) -> None:
    received = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_request(reader))
        writer.write(
            full_response(200, msgspec.json.encode(completion()), [("Content-Type", "application/json")])
        )
        await writer.drain()

    async with LoopbackServer(handler) as server:
        adapter = OpenAIProvider(config(base_url=f"{server.url}/openai/v1"), transport)
        response = await adapter.complete(chat(), context({"seed": 3}))
    assert response.usage is not None and response.usage.cached_tokens == 1024
    [request] = received
    assert request.target == "/openai/v1/chat/completions"
    assert request.header("authorization") == "Bearer sk-test-0123456789"
    assert msgspec.json.decode(request.body) == {
        "model": "gpt-4.1-nano",
        "messages": MESSAGES,
        "seed": 3,
        "stream": False,
    }


async def test_streams_read_to_done_reuse_one_connection(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in each_request(reader):
            writer.write(response_head(200, [("Content-Type", "text/event-stream")], chunked=True))
            for piece in STREAM:
                writer.write(piece)
                await writer.drain()
            await asyncio.sleep(0.005)  # the body's terminator comes a moment after [DONE]
            writer.write(http_chunk(b""))
            await writer.drain()

    async with LoopbackServer(handler) as server:
        adapter = OpenAIProvider(config(base_url=server.url), transport)
        for _ in range(3):
            events = [event async for event in adapter.stream(chat(True), context())]
            assert [e.delta for e in events[:3]] == [
                {"role": "assistant", "content": ""},
                {"content": "Hello"},
                {},
            ]
            assert events[3].usage == Usage(prompt_tokens=5, completion_tokens=1)
        assert server.connections == 1


async def test_closing_a_stream_disconnects_from_the_provider(transport: Transport) -> None:
    disconnected = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, [("Content-Type", "text/event-stream")], chunked=True) + STREAM[1])
        await writer.drain()
        if await reader.read(1) == b"":  # the provider sees its client leave
            disconnected.set()

    async with LoopbackServer(handler) as server:
        adapter = OpenAIProvider(config(base_url=server.url), transport)
        stream = adapter.stream(chat(True), context())
        assert (await anext(stream)).delta == {"content": "Hello"}
        await stream.aclose()
        await asyncio.wait_for(disconnected.wait(), 1.0)


async def test_refused_connection_is_unreachable_through_the_adapter(transport: Transport) -> None:
    async with LoopbackServer(lambda reader, writer: asyncio.sleep(0)) as server:
        url = server.url
    adapter = OpenAIProvider(config(base_url=url), transport)  # the server is gone: nothing listens there
    with pytest.raises(ProviderUnreachable):
        await adapter.complete(chat(), context())


@pytest.mark.parametrize("end_later", [False, True])
async def test_a_stream_whose_end_came_with_its_last_chunks_says_so(end_later: bool) -> None:
    """The batch a stream ends with is a FinalBatch (to go out with the answer's end) only when nothing is
    left to wait for: the body's terminator arrived with it; either way the connection is reused."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in each_request(reader):
            head = response_head(200, [("Content-Type", "text/event-stream")], chunked=True)
            writer.write(head + b"".join(STREAM) + (b"" if end_later else http_chunk(b"")))
            await writer.drain()
            if end_later:
                await asyncio.sleep(0.005)
                writer.write(http_chunk(b""))
                await writer.drain()

    transport = Http1Transport()
    try:
        async with LoopbackServer(handler) as server:
            adapter = OpenAIProvider(config(base_url=server.url), transport)
            for _ in range(2):
                batches = [batch async for batch in adapter.stream_chunks(chat(True), context())]
                assert [type(batch) is FinalBatch for batch in batches] == [not end_later]
                [[chunk]] = batches
                assert chunk.text == "Hello" and chunk.finish_reason == "stop" and len(chunk.choices) == 3
                assert chunk.usage == Usage(prompt_tokens=5, completion_tokens=1)
            assert server.connections == 1
    finally:
        await transport.aclose()
