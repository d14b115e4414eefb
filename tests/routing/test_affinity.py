"""Cache affinity (routing/affinity.py): a conversation's next turn goes first to the endpoint that served
it, while that is worth it, and the rest of the plan keeps its order."""

from __future__ import annotations

from typing import Any

import pytest

from clock_support import Clock
from tokenmux.catalog.model import Catalog, Endpoint, Model, Price, ProviderInfo
from tokenmux.errors import ProviderRejected
from tokenmux.routing.affinity import CacheAffinity, conversation_digest, may_be_cached
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Candidate, Router, effective_input_price
from tokenmux.types import ChatRequest, ProviderPreferences

PARAMS = frozenset({"max_tokens", "temperature"})
SYSTEM = "You review pull requests. " * 10


def endpoint(model: str, provider: str, inp: float, cache_read: float | None) -> Endpoint:
    return Endpoint(
        model_id=model,
        provider=provider,
        upstream_model=model.split("/")[1],
        context_length=100_000,
        max_output=8_000,
        price=Price(input=inp, output=4.0, cache_read=cache_read),
        supported_parameters=PARAMS,
    )


def model(mid: str, *endpoints: Endpoint) -> Model:
    return Model(
        id=mid,
        name=mid,
        author=mid.split("/")[0],
        description="",
        created="2025-01-01",
        input_modalities=("text",),
        output_modalities=("text",),
        context_length=100_000,
        max_output=8_000,
        tokenizer="o200k",
        endpoints=endpoints,
        supported_parameters=PARAMS,
    )


CATALOG = Catalog(
    models={
        # Scored east, west, flat (cheapest first).
        "acme/chat": model(
            "acme/chat",
            endpoint("acme/chat", "east", 1.0, 0.1),
            endpoint("acme/chat", "west", 1.1, 0.25),
            endpoint("acme/chat", "flat", 1.2, None),  # no cache-read price
        ),
        "acme/plain": model(
            "acme/plain",
            endpoint("acme/plain", "east", 1.0, 1.0),  # a cache read costs what input costs
            endpoint("acme/plain", "west", 1.1, None),
        ),
        "acme/solo": model("acme/solo", endpoint("acme/solo", "east", 1.0, 0.1)),
    },
    providers={s: ProviderInfo(slug=s, name=s, kind="openai-compatible") for s in ("east", "west", "flat")},
    prices_as_of="2026-12-01",
)


def chat(
    *turns: str, model_name: str = "acme/chat", params: dict[str, Any] | None = None, **prefs: Any
) -> ChatRequest:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}]
    for i, text in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return ChatRequest(
        model=model_name,
        messages=messages,
        params=params or {},
        provider=ProviderPreferences(**prefs),
        body_bytes=200 + len(SYSTEM),
    )


class Setup:
    def __init__(self, **affinity: Any) -> None:
        self.clock = Clock()
        self.health = HealthBoard(clock=self.clock)
        self.router = Router(CATALOG, {"east", "west", "flat"}, self.health)
        self.affinity = CacheAffinity(self.health.blocked_until, clock=self.clock, **affinity)

    def plan(self, request: ChatRequest, key_id: str | None = "key-1") -> tuple[list[str], int | None]:
        plan, digest = self.affinity.prefer(self.router.plan(request), request, key_id)
        return providers(plan), digest

    def served(self, request: ChatRequest, provider: str, key_id: str | None = "key-1") -> None:
        _, digest = self.plan(request, key_id)
        assert digest is not None
        self.affinity.remember(digest, f"{request.model}@{provider}")


def providers(plan: list[Candidate]) -> list[str]:
    return [c.endpoint.provider for c in plan]


def test_the_next_turn_goes_first_to_the_endpoint_that_served_the_last_one() -> None:
    s = Setup()
    first, digest = s.plan(chat("Review this diff"))
    assert first == ["east", "west", "flat"] and digest is not None

    # east failed, west served: the conversation sticks to west; the rest keeps its order.
    s.served(chat("Review this diff"), "west")
    assert s.plan(chat("Review this diff", "Looks fine.", "And this one?"))[0] == ["west", "east", "flat"]
    assert s.plan(chat("Review this diff", "Looks fine.", "And this one?", "Done.", "Thanks"))[0] == [
        "west",
        "east",
        "flat",
    ]
    # Another conversation, or the same one for another key, is routed on its own.
    assert s.plan(chat("Write a poem"))[0] == ["east", "west", "flat"]
    assert s.plan(chat("Review this diff"), key_id="key-2")[0] == ["east", "west", "flat"]


def test_a_conversation_is_forgotten_after_its_idle_time() -> None:
    s = Setup(idle_s=300)
    s.served(chat("Review this diff"), "west")

    s.clock.now += 299
    assert s.plan(chat("Review this diff", "ok", "next"))[0][0] == "west"
    s.served(chat("Review this diff", "ok", "next"), "west")  # each turn starts the idle time again
    s.clock.now += 299
    assert s.plan(chat("Review this diff", "ok", "next"))[0][0] == "west"
    s.clock.now += 300
    assert s.plan(chat("Review this diff", "ok", "next"))[0][0] == "east"
    assert len(s.affinity) == 0


def test_the_table_forgets_the_least_recently_used_conversation_beyond_its_bound() -> None:
    s = Setup(max_conversations=2)
    s.served(chat("one"), "west")
    s.served(chat("two"), "west")
    s.served(chat("one"), "west")  # one is used again: two is now the oldest
    s.served(chat("three"), "west")

    assert len(s.affinity) == 2
    assert s.plan(chat("one"))[0][0] == "west"
    assert s.plan(chat("two"))[0][0] == "east"
    assert s.plan(chat("three"))[0][0] == "west"


def test_an_explicit_order_or_sort_wins() -> None:
    s = Setup()
    s.served(chat("Review this diff"), "west")

    assert s.plan(chat("Review this diff", order=("flat",))) == (["flat", "east", "west"], None)
    assert s.plan(chat("Review this diff", sort="price")) == (["east", "west", "flat"], None)
    assert s.plan(chat("Review this diff", model_name="acme/chat:floor"))[1] is None


def test_an_endpoint_whose_cache_read_is_not_cheaper_is_not_stuck_to() -> None:
    s = Setup()
    s.served(chat("Review this diff"), "flat")
    assert s.plan(chat("Review this diff"))[0] == ["east", "west", "flat"]

    # No endpoint of the model reads its cache for less: no digest is even computed.
    assert s.plan(chat("Review this diff", model_name="acme/plain")) == (["east", "west"], None)
    # One endpoint: nothing to choose.
    assert s.plan(chat("Review this diff", model_name="acme/solo")) == (["east"], None)


def test_a_blocked_endpoint_is_not_put_first() -> None:
    s = Setup()
    s.served(chat("Review this diff"), "west")
    s.health.record_failure(
        "acme/chat@west", ProviderRejected("slow down", upstream_status=429, retry_after=30)
    )

    assert s.plan(chat("Review this diff"))[0][0] == "east"
    s.clock.now += 31
    assert s.plan(chat("Review this diff"))[0][0] == "west"


def test_off_when_the_idle_time_is_zero() -> None:
    s = Setup(idle_s=0)
    assert s.plan(chat("Review this diff")) == (["east", "west", "flat"], None)


def test_the_digest_is_the_opening_or_the_clients_cache_key() -> None:
    base = conversation_digest("k", "acme/chat", chat("Review this diff"))
    assert conversation_digest("k", "acme/chat", chat("Review this diff", "ok", "more")) == base
    assert conversation_digest("k", "acme/chat", chat("Review that diff")) != base
    assert conversation_digest("k", "acme/other", chat("Review this diff")) != base
    assert conversation_digest(None, "acme/chat", chat("Review this diff")) != base
    other_system = chat("Review this diff")
    other_system.messages[0]["content"] = [{"type": "text", "text": SYSTEM + "!"}]
    assert conversation_digest("k", "acme/chat", other_system) != base

    # A cache mark on a part is not part of the conversation: clients move it from turn to turn.
    marked, moved = chat("x"), chat("x", "ok", "more")
    marked.messages[1]["content"] = [
        {"type": "text", "text": "Review", "cache_control": {"type": "ephemeral"}}
    ]
    moved.messages[1]["content"] = [{"type": "text", "text": "Review"}]
    assert conversation_digest("k", "acme/chat", marked) == conversation_digest("k", "acme/chat", moved)
    # One text block or the same text as a string (an inbound protocol may give either).
    assert conversation_digest("k", "acme/chat", chat("Review")) == conversation_digest(
        "k", "acme/chat", moved
    )

    keyed = conversation_digest("k", "acme/chat", chat("one", params={"prompt_cache_key": "thread-7"}))
    assert keyed == conversation_digest(
        "k", "acme/chat", chat("two", params={"prompt_cache_key": "thread-7"})
    )
    assert keyed != conversation_digest(
        "k", "acme/chat", chat("one", params={"prompt_cache_key": "thread-8"})
    )


def test_what_is_worth_remembering() -> None:
    plain = chat("hi")
    assert not may_be_cached(200, 0, 0, plain)
    assert may_be_cached(1024, 0, 0, plain)  # the smallest prompt providers cache
    assert may_be_cached(300, 128, 0, plain)
    assert may_be_cached(300, 0, 300, plain)  # written to the cache (Anthropic's cache_control)
    assert may_be_cached(200, 0, 0, chat("hi", params={"prompt_cache_key": "t"}))


def test_the_default_score_prices_input_at_the_measured_cache_hit_rate() -> None:
    rates = {"acme/chat@west": 0.9, "acme/chat@flat": 0.9}
    router = Router(CATALOG, {"east", "west", "flat"}, HealthBoard(), cache_hit_rate=rates.get)

    # west: input 1.1 x 0.1 + cache read 0.25 x 0.9 = 0.335, blended (3 x 0.335 + 4) / 4 = 1.25; east,
    # unmeasured, at its list input price: 1.75; flat has no cache-read price: 1.9 whatever its rate.
    assert providers(router.plan(chat("hi"))) == ["west", "east", "flat"]
    assert effective_input_price(CATALOG.models["acme/chat"].endpoints[1], 0.9) == pytest.approx(0.335)
    # A sort by price is by list price.
    assert providers(router.plan(chat("hi", sort="price"))) == ["east", "west", "flat"]
