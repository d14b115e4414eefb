"""``POST /api/v1/embeddings``: authenticate, admit from the head, read within the body budget, decode, plan
across the endpoints of embedding models, reserve the worst case, attempt (the chat route's attempt loop,
health and recorder), encode, settle.

Token-id inputs go only to endpoints whose provider reads token ids (OpenAI's and Azure's APIs); the
other adapters get texts. Errors come in OpenAI's shape.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tokenmux.asgi import DisconnectWatch, Receive, Scope, Send, header, send_bytes
from tokenmux.attempts import Attempts, Generation
from tokenmux.attempts.embedding import EmbeddingAnswer
from tokenmux.errors import InvalidRequest, TokenmuxError
from tokenmux.limits.ledger import Ledger
from tokenmux.limits.money import ceil_nano, worst_case_embedding_usd
from tokenmux.protocols import openai_chat, openai_embeddings
from tokenmux.providers.base import Provider
from tokenmux.routing.router import Candidate, Router
from tokenmux.server.auth import KeyRing
from tokenmux.server.body_budget import BodyBudget, BodyClaim
from tokenmux.server.chat import PLAN_IN_THREAD_BYTES, settle
from tokenmux.server.key_limits_cache import KeyLimitsCache
from tokenmux.server.metrics import Metrics
from tokenmux.server.off_loop import off_loop
from tokenmux.server.replies import send_error
from tokenmux.server.request_body import read_request
from tokenmux.store import new_generation_id
from tokenmux.store.contents import ContentKeeper
from tokenmux.types import EmbeddingRequest

# Adapters whose embeddings API takes token ids as input (OpenAI's wire format at OpenAI itself).
TOKEN_ID_KINDS = frozenset({"openai", "azure"})


@dataclass(slots=True, kw_only=True)
class EmbeddingsRoute:
    keys: KeyRing
    key_limits: KeyLimitsCache
    router: Router
    providers: dict[str, Provider]  # configured providers by slug, to see which serve embeddings
    ledger: Ledger
    attempts: Attempts
    contents: ContentKeeper
    metrics: Metrics
    bodies: BodyBudget
    max_body_bytes: int

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        claim = self.bodies.claim()  # the request's share of the body budget, held until it ends
        try:
            await self._serve(scope, receive, send, claim)
        except TokenmuxError as err:
            await send_error(send, err, openai_chat.encode_error, self.metrics)
        finally:
            claim.release()

    async def _serve(self, scope: Scope, receive: Receive, send: Send, claim: BodyClaim) -> None:
        key = await self.keys.authenticate(header(scope, b"authorization"), None)
        limits = self.key_limits.of(key)
        # As on the chat route: admitted from the head, the worst case reserved once planned, settled once.
        admission = await self.ledger.admit(limits, 0) if limits.needs_admission else None
        gen: Generation[EmbeddingRequest] | None = None
        try:
            request = await read_request(
                scope,
                receive,
                openai_embeddings.decode_embedding_request,
                limit=self.max_body_bytes,
                claim=claim,
                example=openai_embeddings.EMBEDDINGS_EXAMPLE,
            )
            if limits.models is not None:
                limits.check_model(self.router.resolve(request.model)[0].id)
            if request.body_bytes > PLAN_IN_THREAD_BYTES:
                # Long inputs may need tokenizing to be fitted: off the loop.
                planned = await off_loop(self.router.plan_embeddings, request)
            else:
                planned = self.router.plan_embeddings(request)
            plan = self._usable(request, planned)
            if limits.restricts_routing:
                plan = limits.filter(plan)
            if admission is not None and limits.limits_spend:
                await self.ledger.reserve(
                    admission, limits, ceil_nano(worst_case_embedding_usd(request, plan))
                )
            now = time.time()
            gen = Generation(request, new_generation_id(now), key.id, started_wall=now)
            gen.keep_content = key.prompt_retention_days is not None
            await self._answer(receive, send, gen, plan)
        finally:
            settle(self.ledger, self.contents, admission, key.id, gen)

    def _usable(self, request: EmbeddingRequest, plan: list[Candidate]) -> list[Candidate]:
        """The endpoints whose adapter serves embeddings, and for token ids, reads them."""
        kinds = TOKEN_ID_KINDS if request.tokenized else None
        usable = [
            c
            for c in plan
            if hasattr(provider := self.providers[c.endpoint.provider], "embed")
            and (kinds is None or provider.kind in kinds)
        ]
        if usable:
            return usable
        if request.tokenized:
            raise InvalidRequest(
                f"input given as token ids needs an OpenAI or Azure endpoint, and {request.model} has none "
                "configured here; send the input as text",
                param="input",
                code="token_input_unsupported",
            )
        raise InvalidRequest(f"no configured provider of {request.model} serves embeddings", param="model")

    async def _answer(
        self, receive: Receive, send: Send, gen: Generation[EmbeddingRequest], plan: list[Candidate]
    ) -> None:
        gen_header = [(b"x-generation-id", gen.id.encode())]
        watch = DisconnectWatch(receive)
        answer = EmbeddingAnswer(gen)
        try:
            try:
                await self.attempts.answer(gen, plan, answer)
            except TokenmuxError as err:
                watch.done()
                await send_error(send, err, openai_chat.encode_error, self.metrics, gen_header)
                return
            served = answer.served
            assert served is not None
            out = openai_embeddings.encode_response(
                served.result.vectors,
                gen.request,
                model=served.candidate.model.id,
                provider=served.candidate.endpoint.provider,
                usage=served.usage,
                cost=served.cost,
            )
            watch.done()
            await send_bytes(send, 200, out, gen_header)
        except asyncio.CancelledError:
            if not watch.absorb_cancel():
                raise
        finally:
            watch.stop()
