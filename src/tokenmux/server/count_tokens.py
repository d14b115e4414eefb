"""Counting a prompt's tokens without a provider call: ``POST /api/anthropic/v1/messages/count_tokens``
(``{"input_tokens": N}``) and Gemini's ``:countTokens`` (``{"totalTokens": N}``), counted with the
model's tokenizer family offline (``routing/fit.py``).

The count is the one routing uses to decide whether a prompt fits: texts counted by the family's
vocabulary (a cautious stand-in where the real one does not ship, e.g. Claude's), plus message framing,
tool definitions and a fixed cost per image. So it errs on the large side, as a client planning its
context wants, and it costs no provider call.
"""

from __future__ import annotations

from typing import Protocol

from tokenmux.asgi import Receive, Scope, Send, header, send_bytes
from tokenmux.errors import TokenmuxError
from tokenmux.json_codec import encode_json
from tokenmux.protocols import anthropic_messages as wire
from tokenmux.routing.fit import PromptSize
from tokenmux.routing.router import Router
from tokenmux.server.auth import KeyRing
from tokenmux.server.body_budget import BodyBudget, BodyClaim
from tokenmux.server.key_limits_cache import KeyLimitsCache
from tokenmux.server.metrics import Metrics
from tokenmux.server.off_loop import off_loop
from tokenmux.server.replies import send_error
from tokenmux.server.request_body import read_request
from tokenmux.types import ChatRequest

# Counting a body this large may take tens of ms: off the event loop.
COUNT_IN_THREAD_BYTES = 256 * 1024


class CountingProtocol(Protocol):
    """A client protocol's token-counting request and answer."""

    json_example: str  # a good body, named in the answer to a body that is not JSON

    def decode_count(self, body: bytes | bytearray, scope: Scope) -> ChatRequest:
        """The request, from a body whose JSON structure was bounded as it arrived."""
        ...

    def encode_count(self, tokens: int) -> bytes: ...

    def encode_error(self, err: TokenmuxError) -> bytes: ...

    def api_key(self, scope: Scope) -> tuple[bytes | None, bytes | None]: ...


class AnthropicCounting:
    json_example = wire.ANTHROPIC_EXAMPLE

    def decode_count(self, body: bytes | bytearray, scope: Scope) -> ChatRequest:
        return wire.decode_messages_request(body, counting=True, shape_checked=True)

    def encode_count(self, tokens: int) -> bytes:
        return encode_json({"input_tokens": tokens})

    def encode_error(self, err: TokenmuxError) -> bytes:
        return wire.encode_error(err)

    def api_key(self, scope: Scope) -> tuple[bytes | None, bytes | None]:
        return header(scope, b"authorization"), header(scope, b"x-api-key")


class CountTokensRoute:
    def __init__(
        self,
        protocol: CountingProtocol,
        *,
        keys: KeyRing,
        key_limits: KeyLimitsCache,
        router: Router,
        metrics: Metrics,
        bodies: BodyBudget,
        max_body_bytes: int,
    ) -> None:
        self.protocol = protocol
        self.keys = keys
        self.key_limits = key_limits
        self.router = router
        self.metrics = metrics
        self.bodies = bodies
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        claim = self.bodies.claim()
        try:
            body = await self._count(scope, receive, claim)
        except TokenmuxError as err:
            await send_error(send, err, self.protocol.encode_error, self.metrics)
            return
        finally:
            claim.release()
        await send_bytes(send, 200, body)

    async def _count(self, scope: Scope, receive: Receive, claim: BodyClaim) -> bytes:
        key = await self.keys.authenticate(*self.protocol.api_key(scope))
        request = await read_request(
            scope,
            receive,
            self.protocol.decode_count,
            scope,
            limit=self.max_body_bytes,
            claim=claim,
            example=self.protocol.json_example,
        )
        model = self.router.resolve(request.model)[0]
        limits = self.key_limits.of(key)
        if limits.models is not None:
            limits.check_model(model.id)
        size = PromptSize(request)
        if request.body_bytes > COUNT_IN_THREAD_BYTES:
            tokens = await off_loop(size.exact, model.tokenizer)
        else:
            tokens = size.exact(model.tokenizer)
        return self.protocol.encode_count(tokens)
