"""The Anthropic Messages protocol as a chat route's inbound protocol (``POST /api/anthropic/v1/messages``)."""

from __future__ import annotations

from tokenmux.asgi import Scope, header
from tokenmux.attempts import Generation, Served, StreamEncoder
from tokenmux.errors import TokenmuxError
from tokenmux.protocols import anthropic_messages as wire
from tokenmux.routing.router import Candidate
from tokenmux.types import ChatRequest

# Anthropic counts input tokens before the answer starts; message_start carries this estimate and the
# final message_delta the provider's count.
_BYTES_PER_TOKEN_ESTIMATE = 4


def message_id(gen: Generation) -> str:
    """Anthropic's ids look like ``msg_...``; ours stay the generation id so one id finds the record."""
    return gen.id


class AnthropicMessages:
    name = "anthropic"
    json_example = wire.ANTHROPIC_EXAMPLE

    def decode(self, body: bytes | bytearray, scope: Scope) -> ChatRequest:
        request = wire.decode_messages_request(body, shape_checked=True)
        request.betas = wire.beta_flags(v for k, v in scope["headers"] if k == b"anthropic-beta")
        return request

    def encode_response(self, served: Served, gen: Generation) -> bytes:
        return wire.encode_message_response(
            served.response,
            message_id=message_id(gen),
            model=served.candidate.model.id,
            provider=served.candidate.endpoint.provider,
            usage=served.usage,
            cost=served.cost,
        )

    def stream_encoder(self, gen: Generation, cand: Candidate) -> StreamEncoder:
        return wire.MessagesStreamEncoder(
            message_id(gen),
            cand.model.id,
            cand.endpoint.provider,
            gen.request.body_bytes // _BYTES_PER_TOKEN_ESTIMATE,
        )

    def encode_error(self, err: TokenmuxError) -> bytes:
        return wire.encode_error(err)

    def api_key(self, scope: Scope) -> tuple[bytes | None, bytes | None]:
        return header(scope, b"authorization"), header(scope, b"x-api-key")
