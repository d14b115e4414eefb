"""The ``google`` adapter: the Gemini API, ``generateContent`` and ``streamGenerateContent?alt=sse``.

``POST {base_url}/v1beta/models/{model}:generateContent`` (or ``:streamGenerateContent?alt=sse``;
``:embedContent``/``:batchEmbedContents`` for embeddings, ``google_embeddings``) with the key in an
``x-goog-api-key`` header, never in the URL (URLs end up in logs). The translation lives beside it: ``google_request`` builds the body from the hub request, ``google_response`` reads answers and stream
chunks back. This module sends, reads the stream, and maps Gemini's errors
(``{"error": {"code", "message", "status", "details"}}``, sometimes wrapped in a list, over HTTP or as a
stream chunk) to ``UpstreamError`` in one place; a 429's wait comes from ``Retry-After`` or, as Gemini
sends it, from the ``google.rpc.RetryInfo`` detail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import quote

import msgspec

from tokenmux.errors import ProviderMalformed, ProviderRejected, StreamInterrupted, UpstreamError
from tokenmux.protocols.gemini_mappings import STATUS_BY_NAME
from tokenmux.protocols.sse import SSEDecoder, SSEEvent
from tokenmux.providers import google_embeddings
from tokenmux.providers.base import CallContext, ProviderConfig
from tokenmux.providers.common import fail_stream, send_and_read, snippet, status_message
from tokenmux.providers.google_request import encode_request
from tokenmux.providers.google_response import StreamReader, decode_response
from tokenmux.providers.registry import ProviderKind, register
from tokenmux.providers.transport import HttpRequest, HttpResponse, Transport, retry_after_seconds
from tokenmux.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResult, StreamEvent

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


class GoogleProvider:
    kind: ClassVar[str] = "google"

    def __init__(self, config: ProviderConfig, transport: Transport) -> None:
        self.config = config
        self._transport = transport
        # Accept the API root with or without the version an operator may have copied from the docs.
        base = config.base_url.rstrip("/")
        base = base.removesuffix("/v1beta") if base.endswith("/v1beta") else base.removesuffix("/v1")
        self._models_url = f"{base}/v1beta/models/"
        key = [("x-goog-api-key", config.api_key)] if config.api_key else []
        self._headers = [*key, ("Content-Type", "application/json"), *config.headers]
        self._urls: dict[str, tuple[str, str]] = {}  # upstream model -> (generate, stream) URLs

    # The contract (providers/base.py).

    async def complete(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        response, raw = await send_and_read(self._transport, self._http_request(request, ctx, stream=False))
        if not 200 <= response.status < 300:
            raise self._rejection(response, raw)
        try:
            data = _decode(raw)
        except msgspec.DecodeError:
            raise ProviderMalformed(
                f"the provider answered {response.status} with a body that is not JSON: {snippet(raw)}"
            ) from None
        if not isinstance(data, dict):
            raise ProviderMalformed(f"the provider answered with JSON that is not an object: {snippet(raw)}")
        if data.get("error") is not None:
            raise self._error_object_rejection(data["error"])
        try:
            return decode_response(data, ctx.endpoint.upstream_model)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ProviderMalformed(
                f"the provider answered a response of an unexpected shape ({exc}): {snippet(raw)}"
            ) from None

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[StreamEvent]:
        response = await self._transport.send(self._http_request(request, ctx, stream=True))
        try:
            if not 200 <= response.status < 300:
                raise self._rejection(response, await response.read())
            reader = StreamReader()
            decoder = SSEDecoder()
            chunks = response.aiter_bytes()
            # Gemini marks no end of stream: the last chunk carries the finish reasons, then the body ends.
            ended = False
            while not ended:
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
            if not reader.finished:
                if reader.started:
                    raise StreamInterrupted("the provider's stream ended before the answer was finished")
                raise ProviderMalformed("the provider's stream ended without an answer")
            usage = reader.usage_event()
            if usage is not None:
                yield usage
        finally:
            await response.aclose()

    async def embed(self, request: EmbeddingRequest, ctx: CallContext) -> EmbeddingResult:
        """The vectors of an embeddings request (``providers.base.Embedder``), through ``:embedContent``
        or ``:batchEmbedContents`` (``google_embeddings``)."""
        model = ctx.endpoint.upstream_model.removeprefix("models/")
        method = "embedContent" if len(request.inputs) == 1 else "batchEmbedContents"
        http_request = HttpRequest(
            "POST",
            f"{self._models_url}{quote(model, safe='-._~')}:{method}",
            list(self._headers),
            _encode(google_embeddings.request_body(request, model)),
            min(ctx.timeout_s, self.config.timeout_s),
        )
        response, raw = await send_and_read(self._transport, http_request)
        if not 200 <= response.status < 300:
            raise self._rejection(response, raw)
        return google_embeddings.read_answer(raw, response.status, request, model)

    async def aclose(self) -> None:
        """Nothing to release: the transport is shared and closed by whoever created it."""

    # Encoding.

    def _http_request(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HttpRequest:
        model = ctx.endpoint.upstream_model
        body = encode_request(request.messages, ctx.params, model)
        return HttpRequest(
            "POST",
            self._url(model, stream),
            list(self._headers),
            _encode(body),
            min(ctx.timeout_s, self.config.timeout_s),
        )

    def _url(self, model: str, stream: bool) -> str:
        urls = self._urls.get(model)
        if urls is None:
            # The catalog may name a model as the API lists it ("models/gemini-2.5-flash").
            name = quote(model.removeprefix("models/"), safe="-._~")
            urls = self._urls[model] = (
                f"{self._models_url}{name}:generateContent",
                f"{self._models_url}{name}:streamGenerateContent?alt=sse",
            )
        return urls[1] if stream else urls[0]

    # Decoding.

    def _events(self, reader: StreamReader, sse: SSEEvent) -> list[StreamEvent]:
        try:
            data = _decode(sse.data)
        except msgspec.DecodeError:
            malformed = ProviderMalformed(
                f"the provider sent a stream chunk that is not JSON: {sse.data[:200]!r}"
            )
            fail_stream(malformed, reader.started)
        if isinstance(data, list) and len(data) == 1:
            data = data[0]
        if not isinstance(data, dict):
            fail_stream(
                ProviderMalformed("the provider sent a stream chunk that is not an object"), reader.started
            )
        if data.get("error") is not None:
            fail_stream(self._error_object_rejection(data["error"]), reader.started)
        try:
            return reader.read(data)
        except ProviderRejected as exc:  # the prompt was blocked
            fail_stream(exc, reader.started)
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            malformed = ProviderMalformed(f"the provider sent a stream chunk of an unexpected shape: {exc}")
            fail_stream(malformed, reader.started)

    # Errors.

    def _rejection(self, response: HttpResponse, body: bytes) -> ProviderRejected:
        status = response.status
        message, status_name, retry_delay = _error_details(body)
        message = status_message(response, body, message)
        retry_after = retry_after_seconds(response)
        return ProviderRejected(
            message,
            upstream_status=status,
            retry_after=retry_delay if retry_after is None else retry_after,
            upstream_type=status_name,
        )

    def _error_object_rejection(self, error: Any) -> ProviderRejected:
        """An error object found inside a 200 answer or a stream."""
        message, status_name, retry_delay = _error_fields(error)
        code = error.get("code") if isinstance(error, dict) else None
        status = (
            code
            if isinstance(code, int) and 400 <= code <= 599
            else STATUS_BY_NAME.get(status_name or "", 502)
        )
        return ProviderRejected(
            message or f"the provider reported an error ({status_name or 'no status'})",
            upstream_status=status,
            retry_after=retry_delay,
            upstream_type=status_name,
        )


def _error_details(body: bytes) -> tuple[str | None, str | None, float | None]:
    """(message, status name, retry delay in seconds) from a Gemini error body; Nones if unreadable."""
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        return None, None, None
    if isinstance(data, list) and data:  # the streaming endpoint wraps its errors in a list
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return _error_fields(error)


def _error_fields(error: Any) -> tuple[str | None, str | None, float | None]:
    if not isinstance(error, dict):
        return None, None, None
    message, status_name = error.get("message"), error.get("status")
    retry_delay = None
    for detail in error.get("details") or ():
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            retry_delay = _duration_seconds(detail.get("retryDelay"))
    return (
        message if isinstance(message, str) else None,
        status_name if isinstance(status_name, str) else None,
        retry_delay,
    )


def _duration_seconds(value: Any) -> float | None:
    """A protobuf JSON duration ("37s", "0.250s") in seconds."""
    if not isinstance(value, str) or not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None


register(ProviderKind(GoogleProvider.kind, GoogleProvider))
