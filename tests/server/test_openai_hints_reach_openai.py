"""OpenAI's own prompt-cache and abuse-tracing hints (``prompt_cache_key``, ``prompt_cache_retention``,
``safety_identifier``) reach OpenAI, over Chat Completions and over the Responses API as Codex CLI sends
them; a provider that does not take them gets the request without them, and the generation record lists
them as dropped; a hint of the wrong type is a 400."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from gateway_support import NANO, generation

HINTS = {"prompt_cache_key": "thread-7", "prompt_cache_retention": "24h", "safety_identifier": "user-42"}
HELLO = [{"role": "user", "content": "Hello"}]


def test_chat_hints_reach_openai(gateway: Any, sim: Any) -> None:
    answer = gateway.openai().chat.completions.create(
        model=NANO, messages=HELLO, extra_body={**HINTS, "provider": {"only": ["openai"]}}
    )
    (received,) = sim.requests("openai")
    assert {k: received["body"].get(k) for k in HINTS} == HINTS
    assert generation(gateway, answer.id)["dropped_params"] == []


def test_chat_hints_are_left_out_for_azure_and_listed_as_dropped(gateway: Any, sim: Any) -> None:
    answer = gateway.openai().chat.completions.create(
        model=NANO, messages=HELLO, extra_body={**HINTS, "provider": {"only": ["azure"]}}
    )
    (received,) = sim.requests("azure")
    assert not HINTS.keys() & received["body"].keys()
    assert sorted(generation(gateway, answer.id)["dropped_params"]) == sorted(HINTS)


def test_responses_hints_reach_openais_responses_api(gateway: Any, sim: Any) -> None:
    answer = gateway.openai().responses.create(
        model=NANO,
        input="Hello",
        prompt_cache_key="thread-7",
        safety_identifier="user-42",
        extra_body={"provider": {"only": ["openai"]}},
    )
    (received,) = sim.requests("openai")
    assert received["path"].endswith("/responses")
    assert received["body"]["prompt_cache_key"] == "thread-7"
    assert received["body"]["safety_identifier"] == "user-42"
    assert answer.output_text


@pytest.mark.parametrize("name", sorted(HINTS))
def test_a_hint_that_is_not_a_string_is_a_400(gateway: Any, name: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().chat.completions.create(model=NANO, messages=HELLO, extra_body={name: 7})
    assert name in caught.value.message
