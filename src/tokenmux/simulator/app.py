"""The simulator as a plain ASGI app: routes, the fate of each request, pacing and dropped connections.

Routes:
    POST /{prefix}/v1/chat/completions                              OpenAI format (any prefix but the
                                                                    reserved ones below)
    POST /{prefix}/v1/responses                                     OpenAI Responses API
    POST /{prefix}/v1/embeddings                                    OpenAI embeddings
    POST /azure/openai/deployments/{deployment}/chat/completions     Azure OpenAI (?api-version= required)
    POST /azure/openai/deployments/{deployment}/embeddings           Azure OpenAI embeddings
    POST /azure/openai/v1/responses                                  Azure OpenAI Responses (v1 API)
    POST /anthropic/v1/messages                                      Anthropic Messages
    POST /google/v1beta/models/{model}:generateContent               Gemini (v1 too)
    POST /google/v1beta/models/{model}:streamGenerateContent?alt=sse Gemini, streamed
    POST /google/v1beta/models/{model}:embedContent                  Gemini embeddings (and
                                                                    :batchEmbedContents)
    GET|POST /_control/{prefix}                                      read or set a prefix's profile
    GET|DELETE /_control/{prefix}/requests                           the prefix's last 200 requests
    GET /health

No framework: with no delays configured the simulator is the benchmark's baseline, so a request costs a
dict lookup for its state, one JSON decode, one plan and one JSON encode.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import zlib
from itertools import count
from typing import Any

import msgspec

from tokenmux.asgi import Receive, Scope, Send, read_body, send_bytes, wait_for_disconnect
from tokenmux.simulator.answer import plan
from tokenmux.simulator.anthropic_format import AnthropicFormat
from tokenmux.simulator.connection import drop_connection
from tokenmux.simulator.delivery import send_completion, send_stream
from tokenmux.simulator.embeddings import gemini_answer, openai_answer, parse_gemini, parse_openai
from tokenmux.simulator.fate import Outcome, decide
from tokenmux.simulator.google_format import GoogleFormat
from tokenmux.simulator.openai_format import OpenAIFormat
from tokenmux.simulator.profile import Behaviour, ProfileError
from tokenmux.simulator.prompt_cache import DEFAULT_TTL_S, MIN_CACHED_TOKENS, prompt_parts
from tokenmux.simulator.responses_format import ResponsesFormat
from tokenmux.simulator.state import PrefixState, Registry
from tokenmux.simulator.wire import ReplyContext, RequestRejected, WireFormat

log = logging.getLogger("tokenmux.simulator")

_decode = msgspec.json.decode
_encode = msgspec.json.encode
_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF
# These prefixes speak their own providers' formats, never Chat Completions.
_RESERVED_PREFIXES = frozenset({"azure", "anthropic", "google", "_control"})


class SimulatorApp:
    """Simulated providers, one behaviour profile per path prefix."""

    def __init__(self, *, seed: int = 0, profiles: dict[str, Any] | None = None) -> None:
        self.registry = Registry(seed, profiles)
        self.started_at = time.monotonic()  # outage windows count from here
        self._openai: WireFormat = OpenAIFormat()
        self._azure: WireFormat = OpenAIFormat(azure=True)
        self._responses: WireFormat = ResponsesFormat()
        self._azure_responses: WireFormat = ResponsesFormat(azure=True)
        self._anthropic: WireFormat = AnthropicFormat()
        self._google: WireFormat = GoogleFormat(stream=False)
        self._google_stream: WireFormat = GoogleFormat(stream=True)
        self._inflight: set[asyncio.Task[Any]] = set()
        self._closing = False
        self._id_base = os.urandom(6).hex()
        self._ids = count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._route(scope, receive, send)
        elif scope["type"] == "lifespan":
            await _lifespan(receive, send)

    @property
    def requests_in_flight(self) -> int:
        """Chat requests being answered now (waiting, streaming or hanging)."""
        return len(self._inflight)

    def abort_inflight(self) -> None:
        """Drop every connection still waiting for its answer, so that hung and slowly paced requests do
        not hold up a server shutdown."""
        self._closing = True
        for task in list(self._inflight):
            task.cancel()

    # -- routing ----------------------------------------------------------------------------------

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = scope["path"].split("/")
        first = parts[1] if len(parts) > 1 else ""
        if first == "_control":
            await self._control(scope, receive, send, parts)
        elif first == "azure":
            if (
                len(parts) == 7
                and parts[2] == "openai"
                and parts[3] == "deployments"
                and parts[4]
                and parts[5] == "chat"
                and parts[6] == "completions"
            ):
                await self._chat_route(scope, receive, send, "azure", self._azure, parts[4])
            elif len(parts) == 6 and parts[2:4] == ["openai", "deployments"] and parts[5] == "embeddings":
                await self._chat_route(scope, receive, send, "azure", self._azure, parts[4], embed="openai")
            elif len(parts) == 5 and parts[2] == "openai" and parts[3] == "v1" and parts[4] == "responses":
                await self._chat_route(scope, receive, send, "azure", self._azure_responses, None)
            else:
                await _not_found(scope, send, self._azure)
        elif first == "anthropic":
            if len(parts) == 4 and parts[2] == "v1" and parts[3] == "messages":
                await self._chat_route(scope, receive, send, "anthropic", self._anthropic, None)
            else:
                await _not_found(scope, send, self._anthropic)
        elif first == "google":
            # /google/{version}/models/{model}:{method}
            model, _, method = parts[4].rpartition(":") if len(parts) == 5 else ("", "", "")
            if model and parts[2] in ("v1beta", "v1") and parts[3] == "models":
                if method == "generateContent":
                    await self._chat_route(scope, receive, send, "google", self._google, model)
                    return
                if method == "streamGenerateContent":
                    await self._chat_route(scope, receive, send, "google", self._google_stream, model)
                    return
                if method in ("embedContent", "batchEmbedContents"):
                    embed = "gemini" if method == "embedContent" else "gemini-batch"
                    await self._chat_route(scope, receive, send, "google", self._google, model, embed=embed)
                    return
            await _not_found(scope, send, self._google)
        elif (
            len(parts) == 5
            and first
            and parts[2] == "v1"
            and parts[3] == "chat"
            and parts[4] == "completions"
        ):
            if first in _RESERVED_PREFIXES:
                await _not_found(scope, send, self._openai)
            else:
                await self._chat_route(scope, receive, send, first, self._openai, None)
        elif len(parts) == 4 and first and parts[2] == "v1" and parts[3] == "responses":
            if first in _RESERVED_PREFIXES:
                await _not_found(scope, send, self._openai)
            else:
                await self._chat_route(scope, receive, send, first, self._responses, None)
        elif len(parts) == 4 and first and parts[2] == "v1" and parts[3] == "embeddings":
            if first in _RESERVED_PREFIXES:
                await _not_found(scope, send, self._openai)
            else:
                await self._chat_route(scope, receive, send, first, self._openai, None, embed="openai")
        elif scope["path"] == "/health":
            await send_bytes(send, 200, b'{"status":"ok"}')
        else:
            await _not_found(scope, send, self._openai)

    async def _chat_route(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        prefix: str,
        wire: WireFormat,
        path_model: str | None,
        *,
        embed: str | None = None,  # an embeddings request: "openai", "gemini" or "gemini-batch"
    ) -> None:
        if scope["method"] != "POST":
            body = wire.error_body(405, f"Method {scope['method']} is not allowed here; use POST.")
            await send_bytes(send, 405, body, headers=[(b"allow", b"POST")])
            return
        task = asyncio.current_task()
        assert task is not None
        self._inflight.add(task)
        try:
            state = self.registry.state(prefix)
            if embed is None:
                await self._chat(scope, receive, send, state, wire, path_model)
            else:
                await self._embeddings(scope, receive, send, state, wire, path_model, embed)
        except asyncio.CancelledError:
            if not self._closing:
                raise
            task.uncancel()
            await drop_connection(send, receive)
        finally:
            self._inflight.discard(task)

    # -- chat completions -------------------------------------------------------------------------

    async def _chat(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        state: PrefixState,
        wire: WireFormat,
        path_model: str | None,
    ) -> None:
        raw = await read_body(scope, receive)
        try:
            body = _decode(raw)
            rejection = wire.check_access(scope)
        except msgspec.DecodeError:
            body = raw.decode("utf-8", "replace")
            rejection = wire.check_access(scope) or RequestRejected(
                400,
                "We could not parse the JSON body of your request. The body must be one JSON object; "
                "check that it is not cut short and that strings are quoted.",
            )
        state.record(scope, body)
        if rejection is None:
            try:
                spec = wire.parse(body, path_model)
            except RequestRejected as exc:
                rejection = exc
        if rejection is not None:
            error = wire.error_body(
                rejection.status, rejection.message, param=rejection.param, code=rejection.code
            )
            await send_bytes(send, rejection.status, error)
            return

        profile = state.profile
        behaviour = profile.for_model(spec.model)
        # Content depends on the seed and the request alone; the draws also on the request's place in
        # the prefix's sequence, so a retry of the same request may fare differently, repeatably.
        content_seed = ((profile.seed & _MASK64) << 32) | zlib.crc32(
            _content_key(body, raw), zlib.crc32(spec.model.encode())
        )
        draw_seed = (content_seed << 32) | (state.next_count() & _MASK32)
        fate = decide(behaviour, draw_seed, time.monotonic() - self.started_at)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s model=%s: %s", scope["method"], scope["path"], spec.model, fate)

        outcome = fate.outcome
        if outcome is Outcome.ANSWER or outcome is Outcome.MALFORMED:
            cached = None
            if (
                behaviour.prompt_cache
                and not behaviour.cached_ratio
                and spec.prompt_tokens >= MIN_CACHED_TOKENS
                and (wire.implicit_prompt_cache or spec.cache_ttl is not None)
            ):
                ttl_s = 3600.0 if spec.cache_ttl == "1h" else DEFAULT_TTL_S
                cached = state.prompt_cache.read(prompt_parts(body, spec.model), spec.prompt_tokens, ttl_s)
            answer = plan(spec, behaviour, content_seed, blocked=fate.blocked, cached_tokens=cached)
            ctx = ReplyContext(
                f"chatcmpl-{self._id_base}{next(self._ids):012x}", int(time.time()), spec.model
            )
            if spec.stream:
                await send_stream(send, receive, wire, answer, ctx, spec, fate, behaviour)
            else:
                await send_completion(send, receive, wire, answer, ctx, fate, behaviour)
        else:
            await _send_failure(send, receive, wire, outcome, behaviour)

    # -- embeddings -------------------------------------------------------------------------------

    async def _embeddings(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        state: PrefixState,
        wire: WireFormat,
        path_model: str | None,
        embed: str,
    ) -> None:
        raw = await read_body(scope, receive)
        try:
            body: Any = _decode(raw)
        except msgspec.DecodeError:
            body = raw.decode("utf-8", "replace")
        state.record(scope, body)
        try:
            rejection = wire.check_access(scope)
            if rejection is not None:
                raise rejection
            if embed == "openai":
                spec = parse_openai(body, path_model)
            else:
                spec = parse_gemini(body, path_model or "", batch=embed == "gemini-batch")
        except RequestRejected as exc:
            error = wire.error_body(exc.status, exc.message, param=exc.param, code=exc.code)
            await send_bytes(send, exc.status, error)
            return
        profile = state.profile
        behaviour = profile.for_model(spec.model)
        # As for chat: the same request draws the same fate at the same place in the prefix's sequence.
        draw_seed = (
            ((profile.seed & _MASK64) << 64) | (zlib.crc32(raw) << 32) | (state.next_count() & _MASK32)
        )
        fate = decide(behaviour, draw_seed, time.monotonic() - self.started_at)
        if fate.outcome is Outcome.ANSWER or fate.outcome is Outcome.MALFORMED:
            if fate.ttft_s > 0:
                await asyncio.sleep(fate.ttft_s)
            if fate.outcome is Outcome.MALFORMED:
                answer = wire.malformed_body()
            elif embed == "openai":
                answer = openai_answer(spec, profile.seed)
            else:
                answer = gemini_answer(spec, profile.seed, batch=embed == "gemini-batch")
            await send_bytes(send, 200, answer)
        else:
            await _send_failure(send, receive, wire, fate.outcome, behaviour)

    # -- control ----------------------------------------------------------------------------------

    async def _control(self, scope: Scope, receive: Receive, send: Send, parts: list[str]) -> None:
        method = scope["method"]
        prefix = parts[2] if len(parts) > 2 else ""
        if len(parts) == 3 and prefix and method in ("GET", "POST"):
            if method == "POST":
                try:
                    profile = self.registry.set_profile(prefix, _decode(await read_body(scope, receive)))
                except (msgspec.DecodeError, ProfileError) as exc:
                    await send_bytes(send, 400, _control_error(f"profile for {prefix!r} not changed: {exc}"))
                    return
                log.info("simulator profile for %r set", prefix)
            else:
                profile = self.registry.state(prefix).profile
            await send_bytes(send, 200, _encode(profile.to_json()))
        elif len(parts) == 4 and prefix and parts[3] == "requests" and method in ("GET", "DELETE"):
            state = self.registry.state(prefix)
            if method == "GET":
                await send_bytes(send, 200, _encode(state.requests()))
            else:
                state.clear_requests()
                await send({"type": "http.response.start", "status": 204, "headers": []})
                await send({"type": "http.response.body", "body": b""})
        else:
            message = (
                f"No control route {method} {scope['path']}. Use GET/POST /_control/{{prefix}} or "
                "GET/DELETE /_control/{prefix}/requests."
            )
            await send_bytes(send, 404, _control_error(message))


async def _send_failure(
    send: Send, receive: Receive, wire: WireFormat, outcome: Outcome, behaviour: Behaviour
) -> None:
    """The answer of a request whose fate is not to be answered: a hang, an outage, a rate limit, an error."""
    if outcome is Outcome.HANG:
        await wait_for_disconnect(receive)
    elif outcome is Outcome.OUTAGE:
        message = "The simulated provider is in an outage window; try again later or use another provider."
        await send_bytes(send, 503, wire.error_body(503, message))
    elif outcome is Outcome.RATE_LIMITED:
        message = "Rate limit reached for requests (simulated). Retry after the time in Retry-After."
        await send_bytes(send, 429, wire.error_body(429, message), headers=_retry_after(behaviour))
    else:
        status = behaviour.error_status
        message = f"The simulated provider failed this request with status {status} (error_rate)."
        headers = _retry_after(behaviour) if status == 429 else ()
        await send_bytes(send, status, wire.error_body(status, message), headers=headers)


def _retry_after(behaviour: Behaviour) -> list[tuple[bytes, bytes]]:
    seconds = behaviour.retry_after_s
    whole = int(seconds) if seconds == int(seconds) else int(seconds) + 1  # the header takes whole seconds
    return [(b"retry-after", b"%d" % whole), (b"retry-after-ms", b"%d" % round(seconds * 1000))]


def _control_error(message: str) -> bytes:
    return _encode(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
    )


async def _not_found(scope: Scope, send: Send, wire: WireFormat) -> None:
    message = (
        f"Unknown request URL: {scope['method']} {scope['path']}. The simulator serves "
        "/{prefix}/v1/chat/completions, /{prefix}/v1/responses, /{prefix}/v1/embeddings, "
        "/azure/openai/deployments/{deployment}/chat/completions, /azure/openai/v1/responses, "
        "/azure/openai/deployments/{deployment}/embeddings, /anthropic/v1/messages and "
        "/google/v1beta/models/{model}:generateContent (or :streamGenerateContent?alt=sse, :embedContent, "
        ":batchEmbedContents)."
    )
    await send_bytes(send, 404, wire.error_body(404, message))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create_app(*, seed: int = 0, profiles: dict[str, Any] | None = None) -> SimulatorApp:
    """The simulator app; ``profiles`` maps a prefix to its starting profile (as ``POST /_control``
    takes it). Raises ``ValueError`` naming the prefix and field of an invalid profile."""
    return SimulatorApp(seed=seed, profiles=profiles)


_STREAM_FIELDS = ("stream", "stream_options")
_encode_key = msgspec.json.Encoder().encode


def _content_key(body: Any, raw: bytes) -> bytes:
    """The bytes that seed an answer's content: the request without its streaming switches, so that the
    same request streamed and not gets the same answer, as from a real model at temperature 0."""
    if isinstance(body, dict) and any(field in body for field in _STREAM_FIELDS):
        return _encode_key({k: v for k, v in body.items() if k not in _STREAM_FIELDS})
    return raw
