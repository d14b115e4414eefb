"""Both real transports against loopback servers: what goes on the wire, pooling, and every failure mode.

Every test runs once per transport: they must be interchangeable behind the ``Transport`` seam.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from loopback_http import LoopbackServer, chunk, each_request, full_response, read_request, response_head

from tokenmux import __version__
from tokenmux.errors import ProviderMalformed, ProviderTimeout, ProviderUnreachable
from tokenmux.providers.aiohttp_transport import AiohttpTransport
from tokenmux.providers.http1 import Http1Transport
from tokenmux.providers.transport import HttpRequest, Transport

pytestmark = pytest.mark.timeout(20)


@pytest.fixture(params=[AiohttpTransport, Http1Transport])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    transport: Transport = request.param()
    yield transport
    await transport.aclose()


def post(url: str, body: bytes = b"{}", timeout_s: float = 5.0) -> HttpRequest:
    return HttpRequest("POST", url, [("Content-Type", "application/json")], body, timeout_s)


async def test_request_goes_out_exactly_and_response_comes_back(transport: Transport) -> None:
    received = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await read_request(reader))
        writer.write(full_response(201, b'{"ok":true}', [("X-Request-Id", "abc")]))
        await writer.drain()

    async with LoopbackServer(handler) as server:
        request = HttpRequest(
            "POST",
            f"{server.url}/openai/deployments/my%20gpt%2Fx/chat/completions?api-version=2024-10-21",
            [("api-key", "k1"), ("Content-Type", "application/json"), ("X-Extra", "1")],
            b'{"messages":[]}',
            5.0,
        )
        response = await transport.send(request)
        assert response.status == 201
        assert response.header("x-request-id") == response.header("X-REQUEST-ID") == "abc"
        assert response.header("x-missing") is None
        assert await response.read() == b'{"ok":true}'
        await response.aclose()

    [seen] = received
    assert seen.method == "POST"
    assert seen.target == "/openai/deployments/my%20gpt%2Fx/chat/completions?api-version=2024-10-21"
    assert seen.body == b'{"messages":[]}'
    assert seen.header("api-key") == "k1"
    assert seen.header("x-extra") == "1"
    assert seen.header("content-type") == "application/json"
    assert seen.header("user-agent") == f"tokenmux/{__version__}"
    assert seen.header("cookie") is None
    assert seen.header("authorization") is None


async def keep_alive_json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    async for _ in each_request(reader):
        writer.write(full_response(200, b"{}", [("Set-Cookie", "session=1")]))
        await writer.drain()


async def test_connections_are_kept_alive_and_reused(transport: Transport) -> None:
    async with LoopbackServer(keep_alive_json) as server:
        for _ in range(5):
            response = await transport.send(post(server.url))
            assert await response.read() == b"{}"
            await response.aclose()
        assert server.connections == 1


async def test_a_stream_read_to_its_end_returns_its_connection_to_the_pool(
    transport: Transport,
) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in each_request(reader):
            writer.write(response_head(200, chunked=True) + chunk(b"data: 1\n\n") + chunk(b""))
            await writer.drain()

    async with LoopbackServer(handler) as server:
        for _ in range(3):
            response = await transport.send(post(server.url))
            assert [c async for c in response.aiter_bytes()] == [b"data: 1\n\n"]
            await response.aclose()
        assert server.connections == 1


async def test_body_chunks_arrive_as_the_server_sends_them(transport: Transport) -> None:
    first_seen = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, chunked=True) + chunk(b"first"))
        await writer.drain()
        # The second chunk is only sent once the client has the first: a buffering client would hang here.
        await first_seen.wait()
        writer.write(chunk(b"second") + chunk(b""))
        await writer.drain()

    async with LoopbackServer(handler) as server:
        response = await transport.send(post(server.url))
        received = []
        async for piece in response.aiter_bytes():
            received.append(piece)
            first_seen.set()
        await response.aclose()
    assert received == [b"first", b"second"]


async def test_http1_gives_a_burst_of_chunks_in_one_piece_and_a_lone_chunk_at_once() -> None:
    burst = [b"data: %d\n\n" % i for i in range(20)]
    burst_seen = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, chunked=True))
        await writer.drain()
        # Twenty chunks of the chunked encoding in one write, as a server flushing a burst of events does.
        writer.write(b"".join(chunk(event) for event in burst))
        await writer.drain()
        await burst_seen.wait()
        writer.write(chunk(b"data: last\n\n") + chunk(b""))
        await writer.drain()

    transport = Http1Transport()
    try:
        async with LoopbackServer(handler) as server:
            response = await transport.send(post(server.url))
            received = []
            async for piece in response.aiter_bytes():
                received.append(piece)
                burst_seen.set()
            await response.aclose()
    finally:
        await transport.aclose()
    assert received == [b"".join(burst), b"data: last\n\n"]


async def test_gzip_bodies_are_decompressed(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(full_response(200, gzip.compress(b'{"a":1}'), [("Content-Encoding", "gzip")]))
        await writer.drain()

    async with LoopbackServer(handler) as server:
        response = await transport.send(post(server.url))
        assert await response.read() == b'{"a":1}'
        await response.aclose()


async def test_redirects_are_returned_not_followed(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(full_response(307, b"", [("Location", "http://elsewhere.invalid/")]))
        await writer.drain()

    async with LoopbackServer(handler) as server:
        response = await transport.send(post(server.url))
        assert response.status == 307
        assert response.header("location") == "http://elsewhere.invalid/"
        await response.aclose()
        assert server.connections == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_connection_refused_is_unreachable(transport: Transport) -> None:
    port = free_port()
    with pytest.raises(ProviderUnreachable) as caught:
        await transport.send(post(f"http://127.0.0.1:{port}/v1/chat/completions"))
    assert type(caught.value) is ProviderUnreachable
    assert f"127.0.0.1:{port}" in caught.value.message


async def test_a_server_that_never_answers_times_out_within_the_timeout(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.Event().wait()  # until the server shuts down

    async with LoopbackServer(handler) as server:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match=r"within 0\.3 s"):
            await transport.send(post(server.url, timeout_s=0.3))
        elapsed = time.monotonic() - started
    assert 0.25 <= elapsed < 1.0


async def test_timeouts_longer_than_a_quick_wait_are_kept_on_time(transport: Transport) -> None:
    # Http1Transport arms a wait's timer only once the wait has lasted a quarter second (slow_waits.py).
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.Event().wait()  # until the server shuts down

    async with LoopbackServer(handler) as server:
        started = time.monotonic()
        with pytest.raises(ProviderTimeout, match=r"within 0\.7 s"):
            await transport.send(post(server.url, timeout_s=0.7))
        elapsed = time.monotonic() - started
    assert 0.65 <= elapsed < 1.0


async def test_a_body_that_stalls_longer_than_a_quick_wait_times_out_on_time(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, chunked=True) + chunk(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.Event().wait()  # until the server shuts down

    async with LoopbackServer(handler) as server:
        response = await transport.send(post(server.url, timeout_s=0.7))
        chunks = response.aiter_bytes()
        assert await anext(chunks) == b"data: 1\n\n"
        started = time.monotonic()
        with pytest.raises(ProviderTimeout):
            await anext(chunks)
        assert 0.65 <= time.monotonic() - started < 1.0
        await response.aclose()


async def test_no_time_left_fails_without_sending(transport: Transport) -> None:
    async with LoopbackServer(keep_alive_json) as server:
        with pytest.raises(ProviderTimeout):
            await transport.send(post(server.url, timeout_s=0.0))
        assert server.connections == 0


async def test_a_body_that_stalls_times_out(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, chunked=True) + chunk(b"data: 1\n\n"))
        await writer.drain()
        await asyncio.Event().wait()  # until the server shuts down

    async with LoopbackServer(handler) as server:
        response = await transport.send(post(server.url, timeout_s=0.3))
        chunks = response.aiter_bytes()
        assert await anext(chunks) == b"data: 1\n\n"
        started = time.monotonic()
        with pytest.raises(ProviderTimeout):
            await anext(chunks)
        assert time.monotonic() - started < 1.0
        await response.aclose()


async def test_a_body_cut_by_the_server_is_unreachable(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, chunked=True) + chunk(b"data: 1\n\n"))
        await writer.drain()
        writer.transport.abort()

    async with LoopbackServer(handler) as server:
        response = await transport.send(post(server.url))
        with pytest.raises(ProviderUnreachable):
            async for _ in response.aiter_bytes():
                pass
        await response.aclose()


async def test_a_connection_closed_before_the_headers_is_unreachable(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.transport.abort()

    async with LoopbackServer(handler) as server:
        with pytest.raises(ProviderUnreachable):
            await transport.send(post(server.url))


async def test_an_answer_that_is_not_http_is_malformed(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()

    async with LoopbackServer(handler) as server:
        with pytest.raises(ProviderMalformed):
            await transport.send(post(server.url))


async def test_aclose_mid_stream_closes_the_connection(transport: Transport) -> None:
    disconnected = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, chunked=True) + chunk(b"data: 1\n\n"))
        await writer.drain()
        if await reader.read(1) == b"":  # EOF: the client went away
            disconnected.set()

    async with LoopbackServer(handler) as server:
        response = await transport.send(post(server.url))
        assert await anext(response.aiter_bytes()) == b"data: 1\n\n"
        await response.aclose()
        await asyncio.wait_for(disconnected.wait(), 1.0)
        await response.aclose()  # idempotent


async def test_a_body_delimited_by_connection_close(transport: Transport) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of ")
        await writer.drain()
        writer.write(b"it")
        await writer.drain()
        writer.close()

    async with LoopbackServer(handler) as server:
        response = await transport.send(post(server.url))
        assert response.status == 200
        assert await response.read() == b"all of it"
        await response.aclose()


TLS = Path(__file__).parent / "tls"


def server_tls() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(TLS / "loopback-cert.pem", TLS / "loopback-key.pem")
    return context


@pytest.mark.parametrize("transport_class", [AiohttpTransport, Http1Transport])
async def test_https_with_a_trusted_certificate(
    transport_class: type[AiohttpTransport | Http1Transport],
) -> None:
    trusted = ssl.create_default_context(cafile=TLS / "loopback-cert.pem")
    transport = transport_class(ssl_context=trusted)
    try:
        async with LoopbackServer(keep_alive_json, server_tls()) as server:
            assert server.url.startswith("https://")
            for _ in range(2):
                response = await transport.send(post(server.url))
                assert await response.read() == b"{}"
                await response.aclose()
            assert server.connections == 1
    finally:
        await transport.aclose()


async def test_https_with_an_untrusted_certificate_is_unreachable(transport: Transport) -> None:
    async with LoopbackServer(keep_alive_json, server_tls()) as server:
        with pytest.raises(ProviderUnreachable, match="certificate"):
            await transport.send(post(server.url))


async def test_a_url_that_is_not_http_is_unreachable(transport: Transport) -> None:
    with pytest.raises(ProviderUnreachable):
        await transport.send(post("ftp://127.0.0.1/v1/chat/completions"))


async def test_http1_resends_once_when_a_pooled_connection_was_closed_under_it() -> None:
    served: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await read_request(reader)
            if served and served[-1] == "first":  # the second request on this connection: close unanswered
                served.append("dropped")
                writer.transport.abort()
                return
            served.append("first" if not served else "fresh")
            writer.write(full_response(200, b"{}"))
            await writer.drain()

    transport = Http1Transport()
    try:
        async with LoopbackServer(handler) as server:
            for _ in range(2):
                response = await transport.send(post(server.url))
                assert await response.read() == b"{}"
                await response.aclose()
            assert served == ["first", "dropped", "fresh"]
            assert server.connections == 2
    finally:
        await transport.aclose()


async def test_http1_waits_for_a_free_connection_at_the_per_host_limit() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async for _ in each_request(reader):
            await release.wait()
            writer.write(full_response(200, b"{}"))
            await writer.drain()

    transport = Http1Transport(limit_per_host=1)
    try:
        async with LoopbackServer(handler) as server:

            async def call() -> bytes:
                response = await transport.send(post(server.url))
                try:
                    return await response.read()
                finally:
                    await response.aclose()

            calls = [asyncio.create_task(call()) for _ in range(3)]
            await asyncio.sleep(0.05)
            release.set()
            assert await asyncio.gather(*calls) == [b"{}"] * 3
            assert server.connections == 1
    finally:
        await transport.aclose()
