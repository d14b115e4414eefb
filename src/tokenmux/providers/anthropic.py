"""The ``anthropic`` adapter: Anthropic's Messages API (``POST {base_url}/v1/messages``), streamed and not.

Authentication is ``x-api-key`` (never ``Authorization``) with ``anthropic-version``. The translation
lives beside it: ``anthropic_request`` builds the Messages body from the hub request, ``anthropic_response``
reads answers and stream events back into the hub shape. This module sends, reads the stream, and maps
Anthropic's errors (``{"type": "error", "error": {"type", "message"}}``, over HTTP or as a stream event)
to ``UpstreamError`` in one place; 529 ``overloaded_error`` is retryable like a 5xx.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

import msgspec

from tokenmux.errors import ProviderMalformed, ProviderRejected, StreamInterrupted, UpstreamError
from tokenmux.protocols.sse import SSEDecoder, SSEEvent
from tokenmux.providers.anthropic_request import encode_request
from tokenmux.providers.anthropic_response import StreamReader, decode_message
from tokenmux.providers.base import CallContext, ProviderConfig
from tokenmux.providers.common import fail_stream, send_and_read, snippet, status_message
from tokenmux.providers.registry import ProviderKind, register
from tokenmux.providers.transport import HttpRequest, HttpResponse, Transport, retry_after_seconds
from tokenmux.types import ChatRequest, ChatResponse, StreamEvent

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

API_VERSION = "2023-06-01"
# HTTP status for an error object that arrives inside a 200 stream.
_STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_DRAIN_S = 0.05


class AnthropicProvider:
    kind: ClassVar[str] = "anthropic"

    def __init__(self, config: ProviderConfig, transport: Transport) -> None:
        self.config = config
        self._transport = transport
        key = [("x-api-key", config.api_key)] if config.api_key else []
        self._headers = [
            *key,
            ("anthropic-version", API_VERSION),
            ("content-type", "application/json"),
            *config.headers,
        ]
        self._url = f"{config.base_url.rstrip('/')}/v1/messages"
        # Mid-conversation system messages are Anthropic's own API's; Microsoft Foundry does not take them.
        host = urlsplit(config.base_url).hostname or ""
        self._mid_conversation_system = not host.endswith(".azure.com")

    async def complete(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        body, json_tool = encode_request(
            request, ctx, stream=False, mid_conversation_system=self._mid_conversation_system
        )
        response, raw = await send_and_read(self._transport, self._http_request(request, body, ctx))
        if not 200 <= response.status < 300:
            raise self._rejection(response, raw)
        try:
            data = _decode(raw)
        except msgspec.DecodeError:
            raise ProviderMalformed(
                f"the provider answered {response.status} with a body that is not JSON: {snippet(raw)}"
            ) from None
        if isinstance(data, dict) and data.get("type") == "error":
            raise self._error_object_rejection(data.get("error"))
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ProviderMalformed(f"the provider answered without a message: {snippet(raw)}")
        try:
            return decode_message(data, ctx.endpoint, json_tool)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            raise ProviderMalformed(
                f"the provider answered a message of an unexpected shape: {exc}"
            ) from None

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[StreamEvent]:
        body, json_tool = encode_request(
            request, ctx, stream=True, mid_conversation_system=self._mid_conversation_system
        )
        response = await self._transport.send(self._http_request(request, body, ctx))
        try:
            if not 200 <= response.status < 300:
                raise self._rejection(response, await response.read())
            reader = StreamReader(json_tool)
            decoder = SSEDecoder()
            chunks = response.aiter_bytes()
            ended = False
            while not (reader.stopped or ended):
                try:
                    sse_events = decoder.feed(await anext(chunks))
                except StopAsyncIteration:
                    sse_events = decoder.flush()
                    ended = True
                except UpstreamError as exc:
                    fail_stream(exc, reader.started)
                for sse in sse_events:
                    for event in self._events(reader, sse):
                        yield event
                    if reader.stopped:
                        break
            if reader.stopped:
                await _drain(chunks)
            elif not reader.finished:
                if reader.started:
                    raise StreamInterrupted("the provider's stream ended before the answer was finished")
                raise ProviderMalformed("the provider's stream ended without an answer")
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Nothing to release: the transport is shared and closed by whoever created it."""

    def _http_request(self, request: ChatRequest, body: dict[str, Any], ctx: CallContext) -> HttpRequest:
        headers = list(self._headers)
        if request.betas:
            # The client's beta flags (1M context, interleaved thinking, context editing, ...).
            headers.append(("anthropic-beta", ",".join(request.betas)))
        return HttpRequest(
            "POST", self._url, headers, _encode(body), min(ctx.timeout_s, self.config.timeout_s)
        )

    def _events(self, reader: StreamReader, sse: SSEEvent) -> list[StreamEvent]:
        try:
            data = _decode(sse.data)
        except msgspec.DecodeError:
            fail_stream(
                ProviderMalformed(f"the provider sent an event that is not JSON: {sse.data[:200]!r}"),
                reader.started,
            )
        if not isinstance(data, dict):
            fail_stream(ProviderMalformed("the provider sent an event that is not an object"), reader.started)
        if data.get("type") == "error" or sse.event == "error":
            fail_stream(self._error_object_rejection(data.get("error")), reader.started)
        try:
            return reader.read(data)
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            malformed = ProviderMalformed(f"the provider sent an event of an unexpected shape: {exc}")
            fail_stream(malformed, reader.started)

    # Errors.

    def _rejection(self, response: HttpResponse, body: bytes) -> ProviderRejected:
        status = response.status
        message, error_type = _error_fields(body)
        message = status_message(response, body, message)
        return ProviderRejected(
            message,
            upstream_status=status,
            retry_after=retry_after_seconds(response),
            upstream_type=error_type,
        )

    def _error_object_rejection(self, error: Any) -> ProviderRejected:
        error = error if isinstance(error, dict) else {}
        error_type = error.get("type") if isinstance(error.get("type"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
        return ProviderRejected(
            message or f"the provider reported an error ({error_type or 'no type'})",
            upstream_status=_STATUS_BY_ERROR_TYPE.get(error_type or "", 502),
            upstream_type=error_type,
        )


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """(message, type) from Anthropic's ``{"type": "error", "error": {"type", "message"}}``."""
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        return None, None
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None, None
    message, error_type = error.get("message"), error.get("type")
    return (
        message if isinstance(message, str) else None,
        error_type if isinstance(error_type, str) else None,
    )


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read the response's last bytes after message_stop so the connection can go back to the pool."""
    try:
        async with asyncio.timeout(_DRAIN_S):
            async for _ in chunks:
                pass
    except (TimeoutError, UpstreamError):
        pass


register(ProviderKind(AnthropicProvider.kind, AnthropicProvider))
