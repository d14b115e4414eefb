"""System messages where clients put them, through the gateway to every provider kind: a system message
inside an Anthropic request's ``messages`` (as current Claude Code sends), and a prompt of nothing but a
system or developer message, alone or on a fallback from an OpenAI model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from gateway_support import NANO, generation, sim_config

# Each test names its one provider; the fallback test, which fails NANO's endpoints, has its own gateway.
pytestmark = pytest.mark.shared_gateway

CACHE = {"type": "ephemeral"}
# (model, simulator prefix) at each provider kind
TARGETS = {
    "openai": (NANO, "openai"),
    "openai-compatible": ("openai/gpt-oss-20b", "groq"),
    "anthropic": ("anthropic/claude-haiku-4.5", "anthropic"),
    "google": ("google/gemini-2.5-flash", "google"),
}
# Opus 4.5's endpoint pointed at Opus 4.8, the first model that takes system messages inside messages.
OPUS_48 = {
    "models": [
        {
            "id": "anthropic/claude-opus-4.5",
            "endpoints": [{"provider": "anthropic", "upstream_model": "claude-opus-4-8"}],
        }
    ]
}
SYSTEM = [
    {"type": "text", "text": "You are a coding agent."},
    {"type": "text", "text": "Follow the house style.", "cache_control": CACHE},
]
MESSAGES: list[Any] = [
    {"role": "user", "content": [{"type": "text", "text": "List the files."}]},
    {
        "role": "system",
        "content": [{"type": "text", "text": "# Environment\ncwd: /tmp", "cache_control": CACHE}],
    },
]


@pytest.fixture
def claude(gateway: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=f"{gateway.url}/api/anthropic", api_key=gateway.key, max_retries=0
    ) as client:
        yield client


@pytest.mark.parametrize("kind", sorted(TARGETS))
@pytest.mark.parametrize("stream", [False, True])
def test_a_system_message_inside_messages_reaches_every_kind(
    claude: anthropic.Anthropic, sim: Any, kind: str, stream: bool
) -> None:
    model, prefix = TARGETS[kind]
    params: dict[str, Any] = {
        "model": model,
        "max_tokens": 64,
        "system": SYSTEM,
        "messages": MESSAGES,
        "extra_body": {"provider": {"only": [prefix]}},
    }
    if stream:
        with claude.messages.stream(**params) as events:
            message = events.get_final_message()
    else:
        message = claude.messages.create(**params)
    assert message.content[0].type == "text" and message.content[0].text
    (received,) = sim.requests(prefix)
    body = received["body"]
    if kind == "anthropic":
        # Haiku 4.5 has no system messages inside messages: the instruction joins the top-level system.
        assert body["system"][-1] == {
            "type": "text",
            "text": "# Environment\ncwd: /tmp",
            "cache_control": CACHE,
        }
        assert [m["role"] for m in body["messages"]] == ["user"]
    elif kind == "google":
        assert body["systemInstruction"]["parts"][-1] == {"text": "# Environment\ncwd: /tmp"}
    else:
        assert [m["role"] for m in body["messages"]] == ["system", "user", "system"]


def test_on_opus_4_8_the_system_message_stays_inside_messages(gateway_factory: Any, sim: Any) -> None:
    gateway = gateway_factory({**sim_config(sim.url), "catalog": OPUS_48})
    with anthropic.Anthropic(
        base_url=f"{gateway.url}/api/anthropic", api_key=gateway.key, max_retries=0
    ) as claude:
        message = claude.messages.create(
            model="anthropic/claude-opus-4.5", max_tokens=64, system=SYSTEM, messages=MESSAGES
        )
    assert message.content[0].type == "text"
    (received,) = sim.requests("anthropic")
    assert received["body"]["system"] == SYSTEM
    assert received["body"]["messages"][1] == MESSAGES[1]


@pytest.mark.parametrize("kind", sorted(TARGETS))
@pytest.mark.parametrize("role", ["system", "developer"])
def test_a_prompt_of_only_a_system_message_is_answered_by_every_kind(
    gateway: Any, sim: Any, kind: str, role: str
) -> None:
    model, prefix = TARGETS[kind]
    out = gateway.openai().chat.completions.create(
        model=model,
        messages=[{"role": role, "content": "Name three colours."}],
        max_tokens=40,
        extra_body={"provider": {"only": [prefix]}},
    )
    assert out.choices[0].message.content
    assert len(sim.requests(prefix)) == 1


# Fails both of NANO's endpoints: their health changes.
@pytest.mark.own_gateway
@pytest.mark.parametrize("fallback", ["anthropic/claude-haiku-4.5", "google/gemini-2.5-flash"])
def test_a_system_only_prompt_falls_back_from_openai_to_claude_and_gemini(
    gateway: Any, sim: Any, fallback: str
) -> None:
    sim.profile("openai", error_rate=1.0)
    sim.profile("azure", error_rate=1.0)
    out = gateway.openai().chat.completions.create(
        model=NANO,
        messages=[{"role": "developer", "content": "Say hello."}],
        extra_body={"models": [fallback]},
    )
    assert out.model == fallback and out.choices[0].message.content
    record = generation(gateway, out.id)
    assert record["status"] == "success" and len(record["attempts"]) > 1
