"""MockTransport behaves like the real transport where adapters can tell: chunks, timeouts, errors, close."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import msgspec
import pytest

from tokenmux.errors import ProviderTimeout, ProviderUnreachable
from tokenmux.providers.transport import HttpRequest, MockResponse, MockTransport, retry_after_seconds

REQUEST = HttpRequest("POST", "https://api.example.test/v1/chat/completions", [], b"{}", 5.0)


async def test_plain_function_handler_sees_the_request() -> None:
    seen: list[HttpRequest] = []

    def handler(request: HttpRequest) -> MockResponse:
        seen.append(request)
        return MockResponse(201, {"X-Id": "7"}, b"body")

    response = await MockTransport(handler).send(REQUEST)
    assert seen == [REQUEST]
    assert response.status == 201
    assert response.header("x-id") == response.header("X-ID") == "7"
    assert response.header("missing") is None
    assert await response.read() == b"body"


async def test_async_handler_and_header_pairs() -> None:
    async def handler(request: HttpRequest) -> MockResponse:
        await asyncio.sleep(0)
        return MockResponse(200, [("Retry-After", "3")], b"")

    response = await MockTransport(handler).send(REQUEST)
    assert response.header("retry-after") == "3"
    assert retry_after_seconds(response) == 3.0
    assert await response.read() == b""


async def test_list_body_arrives_chunk_by_chunk() -> None:
    response = await MockTransport(lambda r: MockResponse(body=[b"a", b"", b"bc"])).send(REQUEST)
    assert [chunk async for chunk in response.aiter_bytes()] == [b"a", b"bc"]


async def test_async_body_arrives_as_it_is_produced() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"1"
        await asyncio.sleep(0.01)
        yield b"2"

    response = await MockTransport(lambda r: MockResponse(body=body())).send(REQUEST)
    assert await response.read() == b"12"


async def test_json_and_sse_helpers() -> None:
    response = await MockTransport(lambda r: MockResponse.json({"a": [1]}, status=400)).send(REQUEST)
    assert response.status == 400
    assert response.header("content-type") == "application/json"
    assert msgspec.json.decode(await response.read()) == {"a": [1]}

    response = await MockTransport(lambda r: MockResponse.sse([{"a": 1}, b": ping\n\n"])).send(REQUEST)
    assert await response.read() == b'data: {"a":1}\n\n: ping\n\ndata: [DONE]\n\n'


async def test_os_errors_from_the_handler_are_mapped_like_the_real_transport() -> None:
    def refuse(request: HttpRequest) -> MockResponse:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(ProviderUnreachable):
        await MockTransport(refuse).send(REQUEST)

    def unreachable(request: HttpRequest) -> MockResponse:
        raise ProviderTimeout("simulated")

    with pytest.raises(ProviderTimeout, match="simulated"):
        await MockTransport(unreachable).send(REQUEST)


async def test_handler_and_body_are_bounded_by_the_request_timeout() -> None:
    async def hang(request: HttpRequest) -> MockResponse:
        await asyncio.sleep(10)
        return MockResponse()

    fast = HttpRequest("POST", REQUEST.url, [], b"", 0.05)
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        await MockTransport(hang).send(fast)

    async def stall() -> AsyncIterator[bytes]:
        yield b"1"
        await asyncio.sleep(10)

    response = await MockTransport(lambda r: MockResponse(body=stall())).send(fast)
    with pytest.raises(ProviderTimeout):
        await response.read()
    assert time.monotonic() - started < 1.0
    await response.aclose()


async def test_aclose_closes_the_body_and_ends_reading() -> None:
    closed = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b"x"
        finally:
            closed.set()

    response = await MockTransport(lambda r: MockResponse(body=body())).send(REQUEST)
    chunks = response.aiter_bytes()
    assert await anext(chunks) == b"x"
    await response.aclose()
    await response.aclose()
    assert closed.is_set()
    with pytest.raises(ProviderUnreachable):
        await anext(chunks)


async def retry_after(headers: dict[str, str]) -> float | None:
    return retry_after_seconds(await MockTransport(lambda r: MockResponse(429, headers)).send(REQUEST))


async def test_retry_after_absent_negative_past_or_unreadable() -> None:
    assert await retry_after({}) is None
    assert await retry_after({"Retry-After": "-5"}) == 0.0
    assert await retry_after({"retry-after-ms": "x", "Retry-After": "2.5"}) == 2.5
    assert await retry_after({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0.0
    assert await retry_after({"Retry-After": "soon"}) is None
