"""The Gemini API as a client protocol, everything under ``/api/gemini/``:

    POST {version}/models/{model}:generateContent               a chat route (``server/chat.py``)
    POST {version}/models/{model}:streamGenerateContent?alt=sse  the same, streamed as server-sent events
    POST {version}/models/{model}:countTokens                    ``{"totalTokens": N}``, counted offline
    GET  {version}/models, {version}/models/{model}              the catalog's chat models

``{version}`` is ``v1beta`` (what the SDKs use), ``v1`` or ``v1alpha``. ``{model}`` is any name the
catalog resolves: a catalog id with its slash (``openai/gpt-4.1-nano``, as the google-genai SDK puts it
into the path), a provider's own name (``gemini-2.5-flash``), with or without ``models/``. The key goes in
``x-goog-api-key`` (what the SDKs send), ``Authorization: Bearer`` or the ``key`` query parameter.

A stream without ``alt=sse`` would be one JSON array written piece by piece; the SDKs and Gemini CLI
always ask for server-sent events, so that form is refused with a 400 that says to add ``alt=sse``.
Every answer, errors and unknown paths included, is in Gemini's shape.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from tokenmux.asgi import Receive, Scope, Send, header, send_bytes
from tokenmux.attempts import Generation, Served, StreamEncoder
from tokenmux.catalog.model import Catalog
from tokenmux.errors import InvalidRequest, NotFound, TokenmuxError
from tokenmux.json_codec import encode_json
from tokenmux.protocols import gemini_answer as answer
from tokenmux.protocols import gemini_generate as wire
from tokenmux.routing.router import Candidate, Router
from tokenmux.server.chat import ChatRoute
from tokenmux.server.count_tokens import CountTokensRoute
from tokenmux.server.metrics import Metrics
from tokenmux.server.replies import send_error
from tokenmux.types import ChatRequest

GEMINI_PREFIX = "/api/gemini/"
_VERSIONS = frozenset({"v1beta", "v1", "v1alpha"})
_MODELS = "models"
_GENERATE = "generateContent"
_STREAM = "streamGenerateContent"
_COUNT = "countTokens"


def _query(scope: Scope) -> dict[str, list[str]]:
    return parse_qs(scope.get("query_string", b"").decode("latin-1"))


def _model_and_method(scope: Scope) -> tuple[str, str]:
    """(model name, method) of ``{prefix}{version}/models/{model}:{method}``; the routes only hand this
    module paths of that form."""
    path: str = scope["path"]
    rest = path[len(GEMINI_PREFIX) :].partition("/")[2].removeprefix(_MODELS + "/")
    model, _, method = rest.rpartition(":")
    return model, method


def _api_key(scope: Scope) -> tuple[bytes | None, bytes | None]:
    key = header(scope, b"x-goog-api-key")
    if key is None:
        keys = _query(scope).get("key")
        key = keys[0].encode("latin-1") if keys else None
    return header(scope, b"authorization"), key


def _include_thoughts(request: ChatRequest) -> bool:
    return request.include_thoughts if isinstance(request, wire.GeminiRequest) else False


class GeminiGenerate:
    """``:generateContent`` and ``:streamGenerateContent`` as a chat route's inbound protocol; the
    response id is the generation id, so one id finds the record."""

    name = "gemini"
    json_example = wire.GEMINI_EXAMPLE

    def decode(self, body: bytes | bytearray, scope: Scope) -> ChatRequest:
        model, method = _model_and_method(scope)
        stream = method == _STREAM
        if stream and _query(scope).get("alt") != ["sse"]:
            raise InvalidRequest(
                "streamGenerateContent is served as server-sent events only: add ?alt=sse to the URL "
                "(the Gemini SDKs do)",
                param="alt",
            )
        return wire.decode_generate_request(body, model, stream=stream, shape_checked=True)

    def encode_response(self, served: Served, gen: Generation) -> bytes:
        return answer.encode_response(
            served.response,
            response_id=gen.id,
            model=served.candidate.model.id,
            provider=served.candidate.endpoint.provider,
            usage=served.usage,
            cost=served.cost,
            include_thoughts=_include_thoughts(gen.request),
        )

    def stream_encoder(self, gen: Generation, cand: Candidate) -> StreamEncoder:
        return answer.GeminiStreamEncoder(
            gen.id, cand.model.id, cand.endpoint.provider, _include_thoughts(gen.request)
        )

    def encode_error(self, err: TokenmuxError) -> bytes:
        return answer.encode_error(err)

    def api_key(self, scope: Scope) -> tuple[bytes | None, bytes | None]:
        return _api_key(scope)


class GeminiCounting:
    """``:countTokens``: the body is a ``generateContent`` request, or one under ``generateContentRequest``."""

    json_example = wire.GEMINI_EXAMPLE

    def decode_count(self, body: bytes | bytearray, scope: Scope) -> ChatRequest:
        model = _model_and_method(scope)[0]
        return wire.decode_generate_request(body, model, stream=False, counting=True, shape_checked=True)

    def encode_count(self, tokens: int) -> bytes:
        return answer.count_json(tokens)

    def encode_error(self, err: TokenmuxError) -> bytes:
        return answer.encode_error(err)

    def api_key(self, scope: Scope) -> tuple[bytes | None, bytes | None]:
        return _api_key(scope)


class GeminiRoutes:
    """Everything under ``/api/gemini/``: one handler, since the model name (which may hold slashes and a
    ``:nitro`` suffix) and the method share the path."""

    def __init__(
        self,
        *,
        generate: ChatRoute,
        count: CountTokensRoute,
        catalog: Catalog,
        router: Router,
        metrics: Metrics,
    ) -> None:
        self.generate = generate  # with GeminiGenerate()
        self.count = count  # with GeminiCounting()
        self.router = router
        self.metrics = metrics
        self._models_body = answer.models_json(catalog)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method: str = scope["method"]
        version, _, rest = scope["path"][len(GEMINI_PREFIX) :].partition("/")
        try:
            if version not in _VERSIONS:
                raise self._no_route(scope)
            if rest == _MODELS and method == "GET":
                await send_bytes(send, 200, self._models_body)
                return
            name = rest.removeprefix(_MODELS + "/") if rest.startswith(_MODELS + "/") else ""
            if not name:
                raise self._no_route(scope)
            if method == "GET":
                await self._get_model(name, send)
                return
            call = name.rpartition(":")[2] if method == "POST" and ":" in name else ""
            if call in (_GENERATE, _STREAM):
                await self.generate(scope, receive, send)
            elif call == _COUNT:
                await self.count(scope, receive, send)
            else:
                raise self._no_route(scope)
        except TokenmuxError as err:
            await send_error(send, err, answer.encode_error, self.metrics)

    async def _get_model(self, name: str, send: Send) -> None:
        model = self.router.resolve(name)[0]
        if model.embedding:
            raise NotFound(f"model {model.id!r} is an embedding model; generateContent does not serve it")
        await send_bytes(send, 200, encode_json(answer.model_object(model)))

    @staticmethod
    def _no_route(scope: Scope) -> NotFound:
        return NotFound(
            f"no route {scope['method']} {scope['path']}; the Gemini API lives at "
            f"{GEMINI_PREFIX}v1beta/models/{{model}}:generateContent, :streamGenerateContent?alt=sse, "
            ":countTokens and GET /models"
        )
