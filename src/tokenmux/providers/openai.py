"""The ``openai`` adapter: OpenAI Chat Completions, streamed and not.

The internal request is already in Chat Completions shape, so encoding is one dict and one msgspec call.
Streams always ask for usage (``stream_options.include_usage``): billing needs it even when the client did
not ask; the server decides whether the client sees it.

Azure and OpenAI-compatible servers speak the same format with small differences; they subclass this
adapter and override the seams marked below (URL, auth headers, body head, usage and delta quirks).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import Any, ClassVar, TypeVar

import msgspec

from tokenmux.catalog.model import Endpoint
from tokenmux.errors import ProviderMalformed, ProviderRejected, StreamInterrupted, UpstreamError
from tokenmux.protocols.openai_chunks import (
    PassThroughChunk,
    chunk_of_events,
    read_plain_chunk,
    read_plain_run,
)
from tokenmux.protocols.sse import DataRun, RunDecoder, SSEDecoder, SSEEvent
from tokenmux.providers import openai_embeddings, openai_responses
from tokenmux.providers.base import CallContext, FinalBatch, ProviderConfig
from tokenmux.providers.common import fail_stream, json_object, send_and_read, snippet, status_message
from tokenmux.providers.openai_messages import outbound_messages, outbound_params
from tokenmux.providers.registry import ProviderKind, register
from tokenmux.providers.transport import HttpRequest, HttpResponse, Transport, retry_after_seconds
from tokenmux.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResult, StreamEvent, Usage

_Unit = TypeVar("_Unit", StreamEvent, PassThroughChunk)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder().decode
_EMPTY: dict[str, Any] = {}
_INCLUDE_USAGE = {"include_usage": True}
# After [DONE] the response's last bytes (the chunked-encoding terminator) are normally already here or a
# moment away; reading them lets the connection go back to the pool. A server that keeps talking gets cut.
_DRAIN_S = 0.05
# HTTP status to assume for an error object that arrives without one (inside a 200 stream).
_STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "tokens": 429,
    "requests": 429,
    "server_error": 500,
    "overloaded_error": 529,
}


class OpenAIProvider:
    kind: ClassVar[str] = "openai"
    # Whether stream chunks may reach a Chat Completions client as they came: not for adapters whose seams
    # rewrite deltas or read usage from elsewhere (the chunks then go through those seams).
    _passes_chunks_through: ClassVar[bool] = True
    # Whether a request that came as Responses goes up as Responses (``openai_responses``).
    _speaks_responses: ClassVar[bool] = True

    def __init__(self, config: ProviderConfig, transport: Transport) -> None:
        self.config = config
        self._transport = transport
        self._base_url = config.base_url.rstrip("/")
        self._headers = [*self._auth_headers(), ("Content-Type", "application/json"), *config.headers]
        self._chat_url = f"{self._base_url}/chat/completions"
        self._responses_url = f"{self._base_url}/responses"
        self._embeddings_url_ = f"{self._base_url}/embeddings"

    # Seams that Azure and OpenAI-compatible servers override.

    def _auth_headers(self) -> list[tuple[str, str]]:
        key = self.config.api_key
        return [("Authorization", f"Bearer {key}")] if key else []

    def _url(self, endpoint: Endpoint) -> str:
        return self._chat_url

    def _embeddings_url(self, endpoint: Endpoint) -> str:
        return self._embeddings_url_

    def _body_head(self, endpoint: Endpoint) -> dict[str, Any]:
        """The fields that name the model; Azure names it in the URL instead."""
        return {"model": endpoint.upstream_model}

    def _native_responses(self, endpoint: Endpoint) -> tuple[str, str]:
        """(URL, model) of the Responses API for this endpoint."""
        return self._responses_url, endpoint.upstream_model

    def _usage(self, raw: dict[str, Any]) -> Usage:
        return parse_usage(raw)

    def _chunk_usage(self, chunk: dict[str, Any]) -> Any:
        return chunk.get("usage")

    def _normalise_delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return delta

    def _normalise_message(self, message: dict[str, Any]) -> dict[str, Any]:
        return message

    # The contract (providers/base.py).

    async def complete(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        native = self._native_request(request, ctx, stream=False)
        response, body = await send_and_read(
            self._transport, native or self._http_request(request, ctx, stream=False)
        )
        if not 200 <= response.status < 300:
            raise self._rejection(response, body)
        if native is not None:
            return openai_responses.chat_response(body, response.status, ctx.endpoint)
        return self._chat_response(body, response.status, ctx.endpoint)

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncGenerator[StreamEvent, None]:
        batches = self.stream_batches(request, ctx)
        try:
            async for batch in batches:
                for event in batch:
                    yield event
        finally:
            await batches.aclose()

    def stream_batches(
        self, request: ChatRequest, ctx: CallContext
    ) -> AsyncGenerator[list[StreamEvent], None]:
        """``stream``'s events in the groups they arrived in (one list per network read), so that the
        server can send each group to its client in one write."""
        native = self._native_request(request, ctx, stream=True)
        if native is not None:
            return self._read_stream(native, openai_responses.EventReader(self._error_object_rejection).read)
        return self._read_stream(self._http_request(request, ctx, stream=True), self._stream_events)

    def stream_chunks(
        self, request: ChatRequest, ctx: CallContext
    ) -> AsyncGenerator[list[PassThroughChunk], None]:
        """The stream as Chat Completions chunks for a Chat Completions client, grouped like
        ``stream_batches``: plain chunks are passed on as the provider sent them, others are rebuilt."""
        return self._read_stream(self._http_request(request, ctx, stream=True), self._chunks, self._run_chunk)

    async def _read_stream(
        self,
        http_request: HttpRequest,
        read: Callable[[SSEEvent, bool], list[_Unit]],
        read_run: Callable[[DataRun], list[_Unit] | None] | None = None,
    ) -> AsyncGenerator[list[_Unit], None]:
        """The stream's units, one list per network read. With ``read_run``, the plain events of a read
        are read together by it (``protocols.sse.RunDecoder``); a run it cannot take (None) is read event
        by event. The batch the stream ends with, when nothing is left to wait for, is a ``FinalBatch``."""
        response = await self._transport.send(http_request)
        try:
            if not 200 <= response.status < 300:
                raise self._rejection(response, await response.read())
            decoder = RunDecoder() if read_run is not None else SSEDecoder()
            chunks = response.aiter_bytes()
            # "started": output (content or a finish) was yielded, so a failure now cannot be retried
            # elsewhere and becomes StreamInterrupted; before that it keeps its retryable class.
            started = finished = done = ended = yielded = drained = False
            while not (done or ended):
                try:
                    items = decoder.feed(await anext(chunks))
                except StopAsyncIteration:
                    items = decoder.flush()
                    ended = True
                except UpstreamError as exc:
                    fail_stream(exc, started)
                batch: list[_Unit] = []
                failure: UpstreamError | None = None
                try:
                    for item in items:
                        events: Sequence[SSEEvent]
                        if isinstance(item, DataRun):
                            assert read_run is not None
                            units = read_run(item)
                            if units is not None:
                                for unit in units:
                                    if unit.finish_reason:
                                        started = finished = True
                                    elif not started and unit.has_content:
                                        started = True
                                    batch.append(unit)
                                if item.done:
                                    done = True
                                    break
                                continue
                            events = item.events()
                        else:
                            events = (item,)
                        for sse in events:
                            if sse.data == "[DONE]":
                                done = True
                                break
                            for unit in read(sse, started):
                                if unit.finish_reason:
                                    started = finished = True
                                elif not started and unit.has_content:
                                    started = True
                                batch.append(unit)
                        if done:
                            break
                except UpstreamError as exc:
                    # What came before the broken chunk still goes out first, as it would one by one.
                    failure = exc
                if batch:
                    yielded = True
                    if done and failure is None and getattr(response, "body_arrived", False):
                        # The end is here too: nothing to wait for after this batch, which can go out
                        # with the end of the answer.
                        await _drain(response, chunks)
                        drained = True
                        yield FinalBatch(batch)
                    else:
                        yield batch
                if failure is not None:
                    raise failure
            if done and yielded and not drained:
                await _drain(response, chunks)
            elif not finished:
                if started:
                    raise StreamInterrupted("the provider's stream ended before the answer was finished")
                raise ProviderMalformed("the provider's stream ended without an answer")
        finally:
            await response.aclose()

    async def embed(self, request: EmbeddingRequest, ctx: CallContext) -> EmbeddingResult:
        """The vectors of an embeddings request (``providers.base.Embedder``)."""
        body = openai_embeddings.request_body(request, self._body_head(ctx.endpoint))
        http_request = HttpRequest(
            "POST",
            self._embeddings_url(ctx.endpoint),
            list(self._headers),
            _encode(body),
            min(ctx.timeout_s, self.config.timeout_s),
        )
        response, raw = await send_and_read(self._transport, http_request)
        if not 200 <= response.status < 300:
            raise self._rejection(response, raw)
        return openai_embeddings.read_answer(
            raw,
            response.status,
            ctx.endpoint.upstream_model,
            len(request.inputs),
            self._error_object_rejection,
        )

    async def aclose(self) -> None:
        """Nothing to release: the transport is shared and closed by whoever created it."""

    # Encoding.

    def _native_request(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HttpRequest | None:
        """The request for the Responses API, when it came as Responses and this adapter speaks it."""
        if not self._speaks_responses:
            return None
        native = openai_responses.native_request(request)
        if native is None:
            return None
        url, model = self._native_responses(ctx.endpoint)
        body = openai_responses.request_body(native, ctx, model, stream)
        return HttpRequest(
            "POST", url, list(self._headers), _encode(body), min(ctx.timeout_s, self.config.timeout_s)
        )

    def _http_request(self, request: ChatRequest, ctx: CallContext, *, stream: bool) -> HttpRequest:
        body = self._body_head(ctx.endpoint)
        body["messages"] = outbound_messages(request.messages, request.inbound)
        body.update(outbound_params(ctx.params, request.inbound))
        body["stream"] = stream
        if stream:
            body["stream_options"] = _INCLUDE_USAGE
        return HttpRequest(
            "POST",
            self._url(ctx.endpoint),
            list(self._headers),
            _encode(body),
            min(ctx.timeout_s, self.config.timeout_s),
        )

    # Decoding.

    def _chat_response(self, body: bytes, status: int, endpoint: Endpoint) -> ChatResponse:
        data = json_object(body, status)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            error = data.get("error")
            if error is not None:  # some servers put an error object in a 200 answer
                raise self._error_object_rejection(error)
            raise ProviderMalformed(f"the provider answered {status} without choices: {snippet(body)}")
        for choice in choices:
            if not isinstance(choice, dict):
                raise ProviderMalformed("the provider answered with a choice that is not an object")
            message = choice.get("message")
            if isinstance(message, dict):
                choice["message"] = self._normalise_message(message)
        usage = data.get("usage")
        return ChatResponse(
            id=str(data.get("id") or ""),
            created=_as_int(data.get("created")) or int(time.time()),
            model=str(data.get("model") or endpoint.upstream_model),
            choices=choices,
            usage=self._usage(usage) if isinstance(usage, dict) else None,
            system_fingerprint=data.get("system_fingerprint"),
        )

    def _stream_events(self, sse: SSEEvent, started: bool) -> list[StreamEvent]:
        """One ``data:`` chunk -> one event per choice, plus one for usage when the chunk carries it."""
        try:
            chunk = _decode(sse.data)
        except msgspec.DecodeError:
            malformed = ProviderMalformed(
                f"the provider sent a stream chunk that is not JSON: {sse.data[:200]!r}"
            )
            fail_stream(malformed, started)
        if not isinstance(chunk, dict):
            fail_stream(ProviderMalformed("the provider sent a stream chunk that is not an object"), started)
        error = chunk.get("error")
        if error is not None or sse.event == "error":
            fail_stream(self._error_object_rejection(error or chunk), started)
        try:
            chunk_id = chunk.get("id") or None
            fingerprint = chunk.get("system_fingerprint")
            events = [
                StreamEvent(
                    delta=self._normalise_delta(delta) if (delta := choice.get("delta")) else delta,
                    index=choice.get("index") or 0,
                    finish_reason=choice.get("finish_reason"),
                    logprobs=choice.get("logprobs"),
                    id=chunk_id,
                    system_fingerprint=fingerprint,
                )
                for choice in chunk.get("choices") or ()
            ]
            usage = self._chunk_usage(chunk)
            if usage:
                events.append(StreamEvent(usage=self._usage(usage), id=chunk_id))
        except (AttributeError, TypeError, ValueError) as exc:
            malformed = ProviderMalformed(f"the provider sent a stream chunk of an unexpected shape: {exc}")
            fail_stream(malformed, started)
        return events

    def _run_chunk(self, run: DataRun) -> list[PassThroughChunk] | None:
        """A run of plain chunks as one pass-through chunk (None: read them one by one)."""
        if not self._passes_chunks_through:
            return None
        chunk = read_plain_run(run.payloads, self._usage)
        if chunk is None:
            return None
        return [chunk] if chunk.choices or chunk.usage is not None else []

    def _chunks(self, sse: SSEEvent, started: bool) -> list[PassThroughChunk]:
        """One ``data:`` chunk as a pass-through chunk: as it came when it is plain and this adapter does
        not rewrite chunks, else rebuilt from its events. Nothing for a chunk without choices or usage."""
        if self._passes_chunks_through and sse.event is None:
            chunk = read_plain_chunk(sse.data, self._usage)
            if chunk is not None:
                return [chunk] if chunk.choices or chunk.usage is not None else []
        events = self._stream_events(sse, started)
        return [chunk_of_events(events)] if events else []

    # Errors.

    def _rejection(self, response: HttpResponse, body: bytes) -> ProviderRejected:
        status = response.status
        message, error_type, param = _error_details(body)
        message = status_message(response, body, message)
        return ProviderRejected(
            message,
            upstream_status=status,
            retry_after=retry_after_seconds(response),
            upstream_type=error_type,
            param=param,
        )

    def _error_object_rejection(self, error: Any) -> ProviderRejected:
        """An error object found inside a 200 answer or a stream (it has no HTTP status of its own)."""
        message, error_type, param = _error_fields(error)
        status = _error_object_status(error, error_type)
        return ProviderRejected(
            message or "the provider reported an error without a message",
            upstream_status=status,
            upstream_type=error_type,
            param=param,
        )


def parse_usage(raw: dict[str, Any]) -> Usage:
    """OpenAI's usage object, including cached prompt tokens and reasoning tokens."""
    prompt_details = _as_dict(raw.get("prompt_tokens_details"))
    completion_details = _as_dict(raw.get("completion_tokens_details"))
    return Usage(
        prompt_tokens=_as_int(raw.get("prompt_tokens")),
        completion_tokens=_as_int(raw.get("completion_tokens")),
        cached_tokens=_as_int(prompt_details.get("cached_tokens")),
        reasoning_tokens=_as_int(completion_details.get("reasoning_tokens")),
    )


def _error_details(body: bytes) -> tuple[str | None, str | None, str | None]:
    """(message, type, param) from an error body, whatever shape the server used; Nones if unreadable."""
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        return None, None, None
    if isinstance(data, list) and data:  # a few servers wrap the error object in a list
        data = data[0]
    if not isinstance(data, dict):
        return None, None, None
    error = data.get("error")
    if error is not None:
        return _error_fields(error)
    return _error_fields(data)  # vLLM: {"object": "error", "message": ...}; FastAPI: {"detail": ...}


def _error_fields(error: Any) -> tuple[str | None, str | None, str | None]:
    if isinstance(error, str):
        return error, None, None
    if not isinstance(error, dict):
        return None, None, None
    message = error.get("message") or error.get("detail")
    error_type = error.get("type")
    param = error.get("param")
    return (
        message if isinstance(message, str) else (None if message is None else str(message)),
        error_type if isinstance(error_type, str) else None,
        param if isinstance(param, str) else None,
    )


def _error_object_status(error: Any, error_type: str | None) -> int:
    """The HTTP status an error object stands for: its own numeric status or code, else one implied by its
    type or code name, else 502 (a provider-side failure, worth trying elsewhere)."""
    if not isinstance(error, dict):
        return 502
    for key in ("status", "code"):
        value = error.get(key)
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, int) and 400 <= value <= 599:
            return value
    code = error.get("code")
    return _STATUS_BY_ERROR_TYPE.get(error_type or "") or _STATUS_BY_ERROR_TYPE.get(str(code), 502)


async def _drain(response: HttpResponse, chunks: AsyncIterator[bytes]) -> None:
    try:
        if getattr(response, "body_arrived", False):
            # Usually the end of the body came with [DONE]: read it without arming a timer.
            async for _ in chunks:
                pass
            return
        async with asyncio.timeout(_DRAIN_S):
            async for _ in chunks:
                pass
    except (TimeoutError, UpstreamError):
        pass  # the connection is then closed instead of reused; the answer is complete either way


def _as_int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else _EMPTY


register(ProviderKind(OpenAIProvider.kind, OpenAIProvider))
