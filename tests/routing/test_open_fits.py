"""A prompt whose fit only a count can decide: planned without tokenizing, the first attempt sent at once,
the count in slices on the event loop, and no later attempt where the count says the prompt does not fit.

Each test drives the real router and attempt loop with providers that answer like real ones: a prompt
longer than an endpoint's context is refused with 400 ``context_length_exceeded``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tokenmux.attempts import Attempts, Generation
from tokenmux.catalog.model import Catalog, Endpoint, Model, Price, ProviderInfo
from tokenmux.errors import PayloadTooLarge, ProviderRejected, TokenmuxError
from tokenmux.providers.base import CallContext, ProviderConfig
from tokenmux.routing import tokens
from tokenmux.routing.fit import PromptSize
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Candidate, Router
from tokenmux.types import ChatRequest, ChatResponse, Usage

pytestmark = pytest.mark.timeout(30)

# About 60k o200k tokens in 240k characters: the byte bound (240k) leaves open every context below it.
DOCUMENT = "".join(f"Paragraph {i}: the lorem ipsum of section {i % 7} goes on. " for i in range(4_500))
MAX_OUTPUT = 1_000


def conversation(*turns: str) -> ChatRequest:
    messages: list[dict[str, Any]] = [{"role": "user", "content": DOCUMENT}]
    for i, turn in enumerate(turns):
        messages.append({"role": "assistant" if i % 2 == 0 else "user", "content": turn})
    return ChatRequest(
        model="acme/long", messages=messages, params={"max_tokens": MAX_OUTPUT}, max_output_tokens=MAX_OUTPUT
    )


def prompt_tokens(request: ChatRequest) -> int:
    return PromptSize(request).exact("o200k")


def router(contexts: dict[str, int]) -> Router:
    """One model with an endpoint per provider, cheapest first in the order given."""
    endpoints = tuple(
        Endpoint("acme/long", slug, "long", context, 8_000, Price(1.0 + i, 2.0), frozenset({"max_tokens"}))
        for i, (slug, context) in enumerate(contexts.items())
    )
    model = Model(
        id="acme/long",
        name="long",
        author="acme",
        description="",
        created="2025-01-01",
        input_modalities=("text",),
        output_modalities=("text",),
        context_length=max(contexts.values()),
        max_output=8_000,
        tokenizer="o200k",
        endpoints=endpoints,
        supported_parameters=frozenset({"max_tokens"}),
    )
    providers = {s: ProviderInfo(slug=s, name=s, kind="openai-compatible") for s in contexts}
    catalog = Catalog(models={model.id: model}, providers=providers, prices_as_of="2026-12-07")
    return Router(catalog, set(contexts), HealthBoard())


class ContextLimitedProvider:
    """Answers a prompt that fits its context; refuses a longer one as OpenAI does (400, no cost)."""

    kind = "openai"

    def __init__(
        self, slug: str, context: int, tokens_of_prompt: int, calls: list[str], fail: int = 0
    ) -> None:
        self.config = ProviderConfig(slug, "openai", "http://unused.test")
        self.context = context
        self.tokens_of_prompt = tokens_of_prompt
        self.calls = calls
        self.fail = fail  # answer with this status instead (a provider-side failure)

    async def complete(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        self.calls.append(self.config.slug)
        await asyncio.sleep(0)
        if self.fail:
            raise ProviderRejected("unavailable", upstream_status=self.fail)
        if self.tokens_of_prompt + MAX_OUTPUT > self.context:
            raise ProviderRejected(
                "This model's maximum context length is exceeded",
                upstream_status=400,
                upstream_type="context_length_exceeded",
            )
        message = {"role": "assistant", "content": "ok"}
        choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
        return ChatResponse("r1", 0, "long", [choice], Usage(self.tokens_of_prompt, 1))

    async def aclose(self) -> None:
        return None


def serve(
    contexts: dict[str, int], request: ChatRequest, fail: dict[str, int] | None = None
) -> tuple[list[str], str | TokenmuxError, int, list[Candidate]]:
    """One request through plan_open and the attempt loop: the providers sent to, in order; who answered
    (or the error the client got); how many times another task ran meanwhile; and the plan."""
    exact = prompt_tokens(request)
    tokens.clear_cache()  # first seen
    calls: list[str] = []
    providers: dict[str, Any] = {
        slug: ContextLimitedProvider(slug, context, exact, calls, (fail or {}).get(slug, 0))
        for slug, context in contexts.items()
    }
    routing = router(contexts)
    ticks = 0

    async def run() -> tuple[str | TokenmuxError, list[Candidate]]:
        nonlocal ticks
        running = True

        async def bystander() -> None:  # another task on the loop: runs whenever the loop is free
            nonlocal ticks
            while running:
                ticks += 1
                await asyncio.sleep(0)

        other = asyncio.ensure_future(bystander())
        counted = tokens.tokenized_chars()
        plan = routing.plan_open(request)
        assert tokens.tokenized_chars() == counted  # planning never tokenizes
        attempts = Attempts(providers, HealthBoard(), lambda record: None, deadline_s=20)
        try:
            served = await attempts.whole(Generation(request, "gen-1", None), plan)
        except TokenmuxError as err:
            return err, plan
        finally:
            running = False
            await other
        return served.candidate.endpoint.provider, plan

    outcome, plan = asyncio.run(run())
    return calls, outcome, ticks, plan


def test_the_plan_keeps_an_endpoint_only_a_count_can_decide_and_tokenizes_nothing() -> None:
    request = conversation()
    exact = prompt_tokens(request)
    tokens.clear_cache()
    counted = tokens.tokenized_chars()
    plan = router({"small": exact, "large": exact * 2}).plan_open(request)
    assert tokens.tokenized_chars() == counted
    assert [c.endpoint.provider for c in plan] == ["small", "large"]
    assert plan[0].open_fit is plan[1].open_fit is not None
    # The exact plan counts, and leaves out the endpoint the prompt and its output do not fit.
    assert [c.endpoint.provider for c in router({"small": exact, "large": exact * 2}).plan(request)] == [
        "large"
    ]


def test_the_first_attempt_goes_at_once_and_a_refusal_the_count_confirms_falls_back() -> None:
    request = conversation()
    exact = prompt_tokens(request)
    tokens.clear_cache()
    counted = tokens.tokenized_chars() + len(DOCUMENT)  # serve's own exact count first
    calls, outcome, ticks, _ = serve({"small": exact + 10, "large": exact + 50_000}, request)
    assert calls == ["small", "large"] and outcome == "large"
    # Counted in slices of a chunk, and another task ran between every two of them.
    slices = (tokens.tokenized_chars() - counted) // tokens.CHUNK_CHARS
    assert slices >= 3 and ticks >= slices


def test_after_the_first_attempt_nothing_is_sent_where_the_count_says_it_does_not_fit() -> None:
    request = conversation()
    exact = prompt_tokens(request)
    # "settled" fits by the byte bound but is down; "tight" would be next, and the prompt does not fit it.
    contexts = {"settled": 10 * len(DOCUMENT), "tight": exact, "roomy": exact + 5_000}
    calls, outcome, _, _ = serve(contexts, request, fail={"settled": 503})
    assert calls == ["settled", "roomy"] and outcome == "roomy"


def test_a_prompt_that_fits_nowhere_is_413_after_one_refused_attempt() -> None:
    request = conversation()
    exact = prompt_tokens(request)
    calls, outcome, _, _ = serve({"small": exact // 2, "less_small": exact - 10}, request)
    assert calls == ["small"]
    assert isinstance(outcome, PayloadTooLarge) and outcome.code == "context_length_exceeded"
    assert "small:" in outcome.message and "less_small:" in outcome.message


def test_a_refusal_of_a_prompt_that_fits_goes_back_to_the_client() -> None:
    # The count says the prompt fits "small": its 400 is about something else, so it is not retried.
    request = conversation()
    exact = prompt_tokens(request)
    contexts = {"small": exact + 2 * MAX_OUTPUT, "large": exact + 50_000}
    calls, outcome, _, _ = serve(contexts, request, fail={"small": 400})
    assert calls == ["small"]
    assert isinstance(outcome, TokenmuxError) and outcome.status == 400


def test_an_answer_stops_the_count() -> None:
    # Large enough that the count is still running when the first attempt answers.
    document = DOCUMENT * 8
    request = ChatRequest(
        model="acme/long",
        messages=[{"role": "user", "content": document}],
        params={"max_tokens": MAX_OUTPUT},
        max_output_tokens=MAX_OUTPUT,
    )
    exact = prompt_tokens(request)
    before = tokens.tokenized_chars()
    calls, outcome, _, _ = serve({"small": exact + 2 * MAX_OUTPUT, "large": exact * 2}, request)
    assert calls == ["small"] and outcome == "small"
    counted = tokens.tokenized_chars() - before - len(document)  # less the exact count above
    assert counted < len(document)


def test_the_next_turn_of_a_counted_conversation_is_decided_from_the_cache() -> None:
    first = conversation("Here is my summary.", "Now shorten it.")
    exact = prompt_tokens(first)
    contexts = {"small": exact + MAX_OUTPUT + 5_000, "large": exact * 2}
    tokens.clear_cache()
    assert [c.endpoint.provider for c in router(contexts).plan(first)] == ["small", "large"]
    counted = tokens.tokenized_chars()
    # The same messages and two more: the earlier ones' chunk counts settle it, nothing is tokenized.
    nxt = conversation("Here is my summary.", "Now shorten it.", "Shorter.", "Thanks!")
    plan = router(contexts).plan_open(nxt)
    assert tokens.tokenized_chars() == counted
    assert [(c.endpoint.provider, c.open_fit) for c in plan] == [("small", None), ("large", None)]
