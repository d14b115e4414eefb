"""Prompt caches survive routing: the turns of a conversation stay on the endpoint that holds its prompt
cache, leave it when it fails, and stay on the one that took over, through the official SDKs.

gpt-4.1-nano has two endpoints in the test gateway, openai and azure, both with a cache-read price below
their input price; azure's input is made a little dearer here, so that the default score always puts
openai first and only affinity can keep a conversation on azure. The simulator's prompt cache reports
what each provider would have read from its cache.
"""

from __future__ import annotations

import time
from typing import Any

import anthropic
import httpx

from gateway_support import NANO, generation, sim_config

# About 1,500 tokens: over the 1,024 a prompt needs before providers cache it.
SYSTEM = "You are a code reviewer. Point out bugs first, then style, in short bullet points. " * 70
QUESTIONS = [
    "Review the parser.",
    "And the lexer?",
    "Is the cache safe?",
    "Any race?",
    "Summarise.",
    "Thanks.",
]
DEARER_AZURE = {"models": [{"id": NANO, "endpoints": [{"provider": "azure", "price": {"input": 0.13}}]}]}


def conversation(turns: int, opening: str = QUESTIONS[0]) -> list[Any]:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": opening}]
    for n in range(1, turns):
        messages.append({"role": "assistant", "content": f"Answer {n}: looks fine."})
        messages.append({"role": "user", "content": QUESTIONS[n]})
    return messages


def test_a_conversation_stays_on_its_endpoint_leaves_it_when_it_fails_and_stays_on_the_next(
    gateway_factory: Any, sim: Any
) -> None:
    gateway = gateway_factory({**sim_config(sim.url), "catalog": DEARER_AZURE})
    client = gateway.openai()

    def turn(turns: int, opening: str = QUESTIONS[0]) -> tuple[str, int]:
        completion = client.chat.completions.create(model=NANO, messages=conversation(turns, opening))
        usage = completion.usage
        assert usage is not None and usage.prompt_tokens_details is not None and usage.prompt_tokens >= 1024
        return (completion.model_extra or {})["provider"], usage.prompt_tokens_details.cached_tokens or 0

    # Three turns on openai, the best by score: each reads more of its prompt from openai's cache.
    served = [turn(n) for n in (1, 2, 3)]
    assert [provider for provider, _ in served] == ["openai"] * 3
    cached = [tokens for _, tokens in served]
    assert cached[0] == 0 and 1024 <= cached[1] <= cached[2]

    # openai refuses the next turn (409: retried elsewhere, and not held against openai's health, so the
    # score still puts openai first): the conversation moves to azure, whose cache is cold.
    sim.profile("openai", error_rate=1.0, error_status=409)
    assert turn(4) == ("azure", 0)
    sim.profile("openai")

    # openai answers again and leads the score (a new conversation goes there), yet the conversation stays
    # on azure, which now holds its prompt.
    assert turn(1, opening="Something else entirely.")[0] == "openai"
    provider, tokens = turn(5)
    assert provider == "azure" and tokens >= 1024
    provider, more = turn(6)
    assert provider == "azure" and more >= tokens
    assert len(sim.requests("openai")) == 5  # three turns, the refused one, the other conversation

    # The endpoints API and the model page show each provider's measured cache-hit rate.
    rates = wait_for_cache_hits(gateway)
    assert 0 < rates["openai"] < 100 and 0 < rates["azure"] < 100
    page = httpx.get(f"{gateway.url}/{NANO}").text
    card = page[page.index('id="provider-azure"') :]
    metric = card[card.index('data-metric="cache-hits"') :]
    assert f">{rates['azure']:.2f}<small>%</small>" in metric[: metric.index("</div>")]


def wait_for_cache_hits(gateway: Any) -> dict[str, float]:
    """Each nano provider's cache-hit rate over the last day, once the figures have been refreshed."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        data = httpx.get(f"{gateway.url}/api/v1/models/{NANO}/endpoints").json()["data"]
        rates = {e["provider_name"]: e["cache_hit_last_1d"] for e in data["endpoints"]}
        if rates["openai"] is not None and rates["azure"] is not None:
            return rates
        time.sleep(0.2)
    raise AssertionError("the cache-hit rates did not appear within 15 s of the traffic")


def test_an_explicit_order_wins_over_the_conversations_endpoint(gateway_factory: Any, sim: Any) -> None:
    gateway = gateway_factory({**sim_config(sim.url), "catalog": DEARER_AZURE})
    client = gateway.openai()
    sim.profile("openai", error_rate=1.0, error_status=409)
    first = client.chat.completions.create(model=NANO, messages=conversation(1))
    assert (first.model_extra or {})["provider"] == "azure"
    sim.profile("openai")

    ordered = client.chat.completions.create(
        model=NANO, messages=conversation(2), extra_body={"provider": {"order": ["openai"]}}
    )
    assert (ordered.model_extra or {})["provider"] == "openai"
    # Without the order, the conversation is azure's again.
    again = client.chat.completions.create(model=NANO, messages=conversation(3))
    assert (again.model_extra or {})["provider"] == "azure"


def test_anthropic_clients_with_cache_control_stay_on_the_endpoint_too(
    gateway_factory: Any, sim: Any
) -> None:
    gateway = gateway_factory({**sim_config(sim.url), "catalog": DEARER_AZURE})
    mark: Any = {"type": "ephemeral"}
    system: Any = [{"type": "text", "text": SYSTEM, "cache_control": mark}]

    def messages(turns: int) -> list[Any]:
        # As Claude Code does: the newest message carries the cache mark.
        out: list[Any] = []
        for message in conversation(turns)[1:]:
            out.append({"role": message["role"], "content": [{"type": "text", "text": message["content"]}]})
        out[-1]["content"][0]["cache_control"] = mark
        return out

    with anthropic.Anthropic(
        base_url=f"{gateway.url}/api/anthropic", api_key=gateway.key, max_retries=0
    ) as claude:

        def turn(turns: int) -> tuple[str, int]:
            raw = claude.messages.with_raw_response.create(
                model=NANO, max_tokens=100, system=system, messages=messages(turns)
            )
            message = raw.parse()
            record = generation(gateway, raw.headers["x-generation-id"])
            return record["provider"], message.usage.cache_read_input_tokens or 0

        sim.profile("openai", error_rate=1.0, error_status=409)
        assert turn(1) == ("azure", 0)
        sim.profile("openai")
        provider, tokens = turn(2)
        assert provider == "azure" and tokens >= 1024
        provider, more = turn(3)
        assert provider == "azure" and more >= tokens
