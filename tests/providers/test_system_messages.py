"""System messages wherever a client puts them: decoded in place from an Anthropic request (current
Claude Code sends them inside ``messages``), then carried to each provider kind in the form it takes, and a
prompt of nothing but system messages sent in a form every kind accepts."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from adapter_helpers import Recorder, completion, config

from tokenmux.catalog.model import Endpoint, Price
from tokenmux.protocols.anthropic_messages import decode_messages_request
from tokenmux.providers.anthropic import AnthropicProvider
from tokenmux.providers.anthropic_request import has_mid_conversation_system
from tokenmux.providers.base import CallContext
from tokenmux.providers.google import GoogleProvider
from tokenmux.providers.openai import OpenAIProvider
from tokenmux.providers.transport import MockResponse, MockTransport
from tokenmux.types import ChatRequest

CACHE = {"type": "ephemeral"}
ANSWER = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude",
    "content": [{"type": "text", "text": "Done."}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 12, "output_tokens": 5},
}
GEMINI_ANSWER = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Done."}]}, "finishReason": "STOP"}],
    "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
}
# What current Claude Code sends: the top-level system, then a user turn followed by a system message.
CLAUDE_CODE_SHAPED = {
    "model": "anthropic/claude-opus-4.8",
    "max_tokens": 32000,
    "system": [
        {"type": "text", "text": "You are a coding agent."},
        {"type": "text", "text": "Follow the house style.", "cache_control": CACHE},
    ],
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "List the files."}]},
        {
            "role": "system",
            "content": [{"type": "text", "text": "# Environment\ncwd: /tmp", "cache_control": CACHE}],
        },
    ],
}


def decode(body: dict[str, Any]) -> ChatRequest:
    return decode_messages_request(msgspec.json.encode(body))


def endpoint(upstream_model: str, provider: str = "anthropic") -> Endpoint:
    return Endpoint(
        model_id=f"x/{upstream_model}",
        provider=provider,
        upstream_model=upstream_model,
        context_length=200_000,
        max_output=64_000,
        price=Price(input=1.0, output=2.0),
        supported_parameters=frozenset(),
    )


async def send_anthropic(
    request: ChatRequest,
    upstream_model: str = "claude-opus-4-8",
    base_url: str = "https://api.anthropic.test",
) -> dict[str, Any]:
    recorder = Recorder(MockResponse.json(ANSWER))
    adapter = AnthropicProvider(config("anthropic", base_url=base_url), MockTransport(recorder))
    await adapter.complete(request, CallContext(endpoint(upstream_model), request.params, 30.0))
    return recorder.body  # type: ignore[no-any-return]


def hub(*messages: dict[str, Any]) -> ChatRequest:
    return ChatRequest(model="m", messages=list(messages), params={})


def test_a_system_message_inside_messages_keeps_its_place_in_the_hub() -> None:
    request = decode(CLAUDE_CODE_SHAPED)
    assert request.messages == [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "You are a coding agent."},
                {"type": "text", "text": "Follow the house style.", "cache_control": CACHE},
            ],
        },
        {"role": "user", "content": "List the files."},
        {
            "role": "system",
            "content": [{"type": "text", "text": "# Environment\ncwd: /tmp", "cache_control": CACHE}],
        },
    ]


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("claude-opus-4-8", True),
        ("claude-opus-4-8-20260528", True),
        ("claude-opus-5-5", True),
        ("claude-opus-4-7", False),
        ("claude-opus-4-5-20251101", False),
        ("claude-sonnet-4-5", False),
        ("gpt-4.1", False),
    ],
)
def test_which_claude_models_take_system_messages_inside_messages(model: str, expected: bool) -> None:
    assert has_mid_conversation_system(model) is expected


async def test_on_a_model_that_takes_them_a_later_system_message_stays_in_place() -> None:
    body = await send_anthropic(decode(CLAUDE_CODE_SHAPED))
    assert body["system"] == [
        {"type": "text", "text": "You are a coding agent."},
        {"type": "text", "text": "Follow the house style.", "cache_control": CACHE},
    ]
    assert body["messages"] == [
        {"role": "user", "content": "List the files."},
        {
            "role": "system",
            "content": [{"type": "text", "text": "# Environment\ncwd: /tmp", "cache_control": CACHE}],
        },
    ]


@pytest.mark.parametrize(
    ("upstream_model", "base_url"),
    [
        ("claude-sonnet-4-5", "https://api.anthropic.test"),  # a model without them
        ("claude-opus-4-8", "https://res.services.ai.azure.com/anthropic"),  # Microsoft Foundry
    ],
)
async def test_elsewhere_a_later_system_message_joins_the_top_level_system(
    upstream_model: str, base_url: str
) -> None:
    body = await send_anthropic(decode(CLAUDE_CODE_SHAPED), upstream_model, base_url)
    assert body["system"] == [
        {"type": "text", "text": "You are a coding agent."},
        {"type": "text", "text": "Follow the house style.", "cache_control": CACHE},
        {"type": "text", "text": "# Environment\ncwd: /tmp", "cache_control": CACHE},
    ]
    assert body["messages"] == [{"role": "user", "content": "List the files."}]


async def test_a_system_message_where_anthropic_would_refuse_one_joins_the_top_level_system() -> None:
    # Followed by a user turn: not a place Anthropic takes one, even on a model that has them.
    request = hub(
        {"role": "user", "content": "One"},
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Two"},
    )
    body = await send_anthropic(request)
    assert body["system"] == "Be terse."
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "One"}, {"type": "text", "text": "Two"}]}
    ]


async def test_consecutive_system_messages_after_a_tool_result_make_one_system_turn() -> None:
    request = hub(
        {"role": "user", "content": "Run it"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "run", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "ok"},
        {"role": "system", "content": "First."},
        {"role": "developer", "content": "Second."},
    )
    body = await send_anthropic(request)
    assert "system" not in body
    assert body["messages"][-1] == {
        "role": "system",
        "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
    }
    assert body["messages"][-2]["content"][0]["type"] == "tool_result"


@pytest.mark.parametrize("role", ["system", "developer"])
async def test_a_prompt_of_only_a_system_message_goes_to_claude_as_the_users_turn(role: str) -> None:
    body = await send_anthropic(hub({"role": role, "content": "Name three colours."}), "claude-sonnet-4-5")
    assert "system" not in body
    assert body["messages"] == [{"role": "user", "content": "Name three colours."}]


async def test_a_prompt_of_only_system_messages_keeps_their_cache_marks() -> None:
    request = hub(
        {"role": "system", "content": [{"type": "text", "text": "Long rules.", "cache_control": CACHE}]},
        {"role": "developer", "content": "Now answer."},
    )
    body = await send_anthropic(request, "claude-sonnet-4-5")
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Long rules.", "cache_control": CACHE},
                {"type": "text", "text": "Now answer."},
            ],
        }
    ]


async def send_gemini(request: ChatRequest) -> dict[str, Any]:
    recorder = Recorder(MockResponse.json(GEMINI_ANSWER))
    adapter = GoogleProvider(config("google", base_url="https://gemini.test"), MockTransport(recorder))
    ctx = CallContext(endpoint("gemini-2.5-flash", "google"), request.params, 30.0)
    await adapter.complete(request, ctx)
    return recorder.body  # type: ignore[no-any-return]


@pytest.mark.parametrize("role", ["system", "developer"])
async def test_a_prompt_of_only_a_system_message_goes_to_gemini_as_the_users_turn(role: str) -> None:
    body = await send_gemini(hub({"role": role, "content": "Name three colours."}))
    assert "systemInstruction" not in body
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Name three colours."}]}]


async def test_gemini_takes_every_system_message_as_its_system_instruction() -> None:
    body = await send_gemini(decode(CLAUDE_CODE_SHAPED))
    assert body["systemInstruction"] == {
        "parts": [
            {"text": "You are a coding agent."},
            {"text": "Follow the house style."},
            {"text": "# Environment\ncwd: /tmp"},
        ]
    }
    assert body["contents"] == [{"role": "user", "parts": [{"text": "List the files."}]}]


async def test_openai_takes_system_messages_where_they_are_without_anthropic_marks() -> None:
    recorder = Recorder(MockResponse.json(completion()))
    adapter = OpenAIProvider(config("openai"), MockTransport(recorder))
    request = decode(CLAUDE_CODE_SHAPED)
    await adapter.complete(request, CallContext(endpoint("gpt-4.1", "openai"), request.params, 30.0))
    assert [m["role"] for m in recorder.body["messages"]] == ["system", "user", "system"]
    assert recorder.body["messages"][2] == {
        "role": "system",
        "content": [{"type": "text", "text": "# Environment\ncwd: /tmp"}],
    }
