"""The OpenAI Responses API as a chat route's inbound protocol (``POST /api/v1/responses``)."""

from __future__ import annotations

from typing import Any

from tokenmux.asgi import Scope, header
from tokenmux.attempts import Generation, Served, StreamEncoder
from tokenmux.errors import TokenmuxError
from tokenmux.protocols import openai_responses as wire
from tokenmux.routing.router import Candidate
from tokenmux.types import ChatRequest


def _echo(request: ChatRequest) -> dict[str, Any]:
    return request.echo if isinstance(request, wire.ResponsesRequest) else {}


def _renamed(request: ChatRequest) -> wire.Renamed:
    return request.renamed_tools if isinstance(request, wire.ResponsesRequest) else {}


class OpenAIResponses:
    """Responses are not stored: the response id is the generation id, so one id finds the record."""

    name = "responses"
    json_example = wire.RESPONSES_EXAMPLE

    def decode(self, body: bytes | bytearray, scope: Scope) -> ChatRequest:
        return wire.decode_responses_request(body, shape_checked=True)

    def encode_response(self, served: Served, gen: Generation) -> bytes:
        return wire.encode_response(
            served.response,
            response_id=gen.id,
            created_at=int(gen.started_wall),
            model=served.candidate.model.id,
            provider=served.candidate.endpoint.provider,
            echo=_echo(gen.request),
            usage=served.usage,
            cost=served.cost,
            renamed=_renamed(gen.request),
        )

    def stream_encoder(self, gen: Generation, cand: Candidate) -> StreamEncoder:
        return wire.ResponsesStreamEncoder(
            gen.id,
            int(gen.started_wall),
            cand.model.id,
            cand.endpoint.provider,
            _echo(gen.request),
            _renamed(gen.request),
        )

    def encode_error(self, err: TokenmuxError) -> bytes:
        return wire.encode_error(err)

    def api_key(self, scope: Scope) -> tuple[bytes | None, bytes | None]:
        return header(scope, b"authorization"), None
