"""One chat route, whichever protocol the client speaks: authenticate, read, decode, plan, attempt, encode.

The protocol (OpenAI Chat Completions, Anthropic Messages) is a small object that knows its wire format;
everything between decoding and encoding is shared, so both inbound protocols route, fall back, record and
bill identically.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from tokenmux.asgi import (
    DisconnectWatch,
    Receive,
    Scope,
    Send,
    send_bytes,
)
from tokenmux.attempts import Attempts, Generation, Served, StreamEncoder
from tokenmux.errors import TokenmuxError
from tokenmux.limits.ledger import Admission, Ledger
from tokenmux.limits.money import ceil_nano, to_nano, worst_case_usd
from tokenmux.routing.affinity import CacheAffinity, conversation_digest
from tokenmux.routing.router import Candidate, Router
from tokenmux.server.auth import KeyRing
from tokenmux.server.body_budget import BodyBudget, BodyClaim
from tokenmux.server.key_limits_cache import KeyLimitsCache
from tokenmux.server.metrics import Metrics
from tokenmux.server.off_loop import off_loop
from tokenmux.server.outlet import AsgiOutlet
from tokenmux.server.replies import send_error
from tokenmux.server.request_body import read_request
from tokenmux.store import new_generation_id
from tokenmux.store.contents import ContentKeeper
from tokenmux.types import ChatRequest

# Below this body size a prompt's fit costs at most a few ms even when it must be counted.
PLAN_IN_THREAD_BYTES = 256 * 1024


class InboundProtocol(Protocol):
    """A client-facing wire format."""

    name: str
    json_example: str  # a good body, named in the answer to a body that is not JSON

    def decode(self, body: bytes | bytearray, scope: Scope) -> ChatRequest:
        """The request in the hub shape, from a body whose JSON structure was bounded as it arrived;
        ``scope`` for what a protocol carries in headers."""
        ...

    def encode_response(self, served: Served, gen: Generation) -> bytes: ...

    def stream_encoder(self, gen: Generation, cand: Candidate) -> StreamEncoder: ...

    def encode_error(self, err: TokenmuxError) -> bytes: ...

    def api_key(self, scope: Scope) -> tuple[bytes | None, bytes | None]:
        """(Authorization header, protocol-specific key header)."""
        ...


class ChatRoute:
    def __init__(
        self,
        protocol: InboundProtocol,
        *,
        keys: KeyRing,
        key_limits: KeyLimitsCache,
        router: Router,
        affinity: CacheAffinity,
        ledger: Ledger,
        attempts: Attempts,
        contents: ContentKeeper,
        metrics: Metrics,
        bodies: BodyBudget,
        max_body_bytes: int,
        keepalive_s: float,
    ) -> None:
        self.protocol = protocol
        self.keys = keys
        self.key_limits = key_limits
        self.router = router
        self.affinity = affinity
        self.ledger = ledger
        self.attempts = attempts
        self.contents = contents
        self.metrics = metrics
        self.bodies = bodies
        self.max_body_bytes = max_body_bytes
        self.keepalive_s = keepalive_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The request's share of the body budget, held until it ends (server/body_budget.py).
        claim = self.bodies.claim()
        try:
            await self._serve(scope, receive, send, claim)
        except TokenmuxError as err:
            await send_error(send, err, self.protocol.encode_error, self.metrics)
        finally:
            claim.release()

    async def _serve(self, scope: Scope, receive: Receive, send: Send, claim: BodyClaim) -> None:
        key = await self.keys.authenticate(*self.protocol.api_key(scope))
        limits = self.key_limits.of(key)
        # Admitted from the head alone, before any work: a key over its concurrency or rate is refused
        # before its body is read or its prompt counted. Its worst-case cost is reserved once known.
        admission = await self.ledger.admit(limits, 0) if limits.needs_admission else None
        gen: Generation | None = None
        try:
            request = await self._read(scope, receive, claim)
            if limits.models is not None:
                limits.check_model(self.router.resolve(request.model)[0].id)
            # The plan never tokenizes: an endpoint only a count can decide stays in it, and the count runs
            # in slices on the loop when an attempt needs it (routing/open_fits.py).
            if request.body_bytes > PLAN_IN_THREAD_BYTES:
                # Walking a very long prompt (its texts' UTF-8 length, cached chunk counts) takes ms.
                plan = await off_loop(self.router.plan_open, request)
            else:
                plan = self.router.plan_open(request)
            if limits.restricts_routing:
                # Every fallback too: an endpoint the key may not reach is never tried.
                plan = limits.filter(plan)
            # The endpoint holding this conversation's prompt cache first, when that is worth it.
            digest = None
            if request.body_bytes > PLAN_IN_THREAD_BYTES and plan:
                # Hashing a conversation that holds a large image or text takes tens of ms: off the loop.
                digest = await off_loop(conversation_digest, key.id, plan[0].model.id, request)
            plan, conversation = self.affinity.prefer(plan, request, key.id, digest)
            if admission is not None and limits.limits_spend:
                await self.ledger.reserve(admission, limits, ceil_nano(worst_case_usd(request, plan)))
            now = time.time()
            gen = Generation(request, new_generation_id(now), key.id, started_wall=now)
            gen.keep_content = key.prompt_retention_days is not None
            gen.conversation = conversation
            await self._answer(scope, receive, send, gen, plan)
        finally:
            settle(self.ledger, self.contents, admission, key.id, gen)

    async def _read(self, scope: Scope, receive: Receive, claim: BodyClaim) -> ChatRequest:
        """The request, its body read within the budget and shape bounds; a large one decoded off the loop
        (the raw body is not kept: only the decoded request lives on)."""
        return await read_request(
            scope,
            receive,
            self.protocol.decode,
            scope,
            limit=self.max_body_bytes,
            claim=claim,
            example=self.protocol.json_example,
        )

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, gen: Generation, plan: list[Candidate]
    ) -> None:
        request = gen.request
        gen_header = [(b"x-generation-id", gen.id.encode())]
        watch = DisconnectWatch(receive)
        try:
            if request.stream:
                outlet = AsgiOutlet(send, gen_header, self.keepalive_s)
                try:
                    await self.attempts.stream(gen, plan, outlet, self._encoder_for(gen))
                except TokenmuxError as err:
                    watch.done()
                    await send_error(send, err, self.protocol.encode_error, self.metrics, gen_header)
                    return
                watch.done()
                await outlet.close()
                return
            try:
                served = await self.attempts.whole(gen, plan)
            except TokenmuxError as err:
                watch.done()
                await send_error(send, err, self.protocol.encode_error, self.metrics, gen_header)
                return
            out = self.protocol.encode_response(served, gen)
            watch.done()
            await send_bytes(send, 200, out, gen_header)
        except asyncio.CancelledError:
            if not watch.absorb_cancel():
                raise
        finally:
            watch.stop()

    def _encoder_for(self, gen: Generation) -> Callable[[Candidate], StreamEncoder]:
        protocol = self.protocol

        def encoder_for(cand: Candidate) -> StreamEncoder:
            return protocol.stream_encoder(gen, cand)

        return encoder_for


def settle(
    ledger: Ledger, contents: ContentKeeper, admission: Admission | None, key_id: str, gen: Generation | None
) -> None:
    """Once per request whatever happened, cancellation included (every route that calls providers):
    what all attempts used is charged, the reservation released (only released, for a request refused
    before it was attempted), the content kept for a key that keeps prompts."""
    if gen is not None:
        ledger.settle(admission, key_id, gen.id, *_billed(gen))
        if gen.keep_content:
            contents.keep(gen.content())
    elif admission is not None:
        ledger.settle(admission, key_id, f"release-{admission.id}", 0, 0)


def _billed(gen: Generation) -> tuple[int, int]:
    """(cost in ledger units, prompt + completion tokens) of every attempt of a generation."""
    cost = 0.0
    tokens = 0
    for attempt in gen.attempts:
        cost += attempt.cost_usd
        tokens += attempt.prompt_tokens + attempt.completion_tokens
    return to_nano(cost), tokens
