"""The OpenAI Chat Completions protocol as a chat route's inbound protocol (``POST /api/v1/chat/completions``)."""

from __future__ import annotations

from tokenmux.asgi import Scope, header
from tokenmux.attempts import Generation, Served, StreamEncoder
from tokenmux.errors import TokenmuxError
from tokenmux.protocols import openai_chat
from tokenmux.routing.router import Candidate
from tokenmux.types import ChatRequest


class OpenAIChat:
    name = "openai"
    json_example = openai_chat.OPENAI_EXAMPLE

    def decode(self, body: bytes | bytearray, scope: Scope) -> ChatRequest:
        return openai_chat.decode_chat_request(body, shape_checked=True)

    def encode_response(self, served: Served, gen: Generation) -> bytes:
        return openai_chat.encode_response(
            served.response,
            generation_id=gen.id,
            model=served.candidate.model.id,
            provider=served.candidate.endpoint.provider,
            usage=served.usage,
            cost=served.cost,
        )

    def stream_encoder(self, gen: Generation, cand: Candidate) -> StreamEncoder:
        return openai_chat.ChunkEncoder(
            generation_id=gen.id,
            created=int(gen.started_wall),
            model=cand.model.id,
            provider=cand.endpoint.provider,
            include_usage=gen.request.include_usage,
        )

    def encode_error(self, err: TokenmuxError) -> bytes:
        return openai_chat.encode_error(err)

    def api_key(self, scope: Scope) -> tuple[bytes | None, bytes | None]:
        return header(scope, b"authorization"), None
