"""Requests shaped exactly as Claude Code 2.1.332 sends them (captured through a recording proxy; the
texts here are our own), sent to the Anthropic route for Claude, OpenAI and Gemini models: its headers and
``?beta=true``, the top-level system with cache marks, a system message inside ``messages``, adaptive
thinking with omitted display, ``context_management``, ``output_config.effort``, a JSON ``metadata.user_id``,
a deferred tool, and a tool search's result of ``tool_reference`` blocks."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway_support import sim_config

CACHE = {"type": "ephemeral"}
BETAS = (
    "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,"
    "per-turn-control-2026-07-01,mid-conversation-tool-changes-2026-07-01,thinking-token-count-2026-05-13,"
    "advanced-tool-use-2025-11-20,effort-2025-11-24"
)
TOOLS: list[Any] = [
    {
        "name": "Read",
        "description": "Reads a file.",
        "input_schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"file_path": {"type": "string"}},
            "required": ["file_path"],
            "additionalProperties": False,
        },
    },
    {
        "name": "ToolSearch",
        "description": "Finds deferred tools.",
        "input_schema": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "max_results": {"type": "number"}},
            "required": ["query"],
        },
    },
    {
        "name": "DeferredToolPlaceholder",
        "description": "Stands for tools loaded on demand.",
        "input_schema": {"type": "object", "properties": {}},
        "defer_loading": True,
    },
]
FIRST_TURN: list[Any] = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "<system-reminder>\nProject notes follow.\n</system-reminder>"},
            {"type": "text", "text": "Read notes.txt and summarise it."},
        ],
    },
    {
        "role": "system",
        "content": [
            {"type": "text", "text": "# Environment\n - Working directory: /tmp/w", "cache_control": CACHE}
        ],
    },
]
TOOL_ROUND_TRIP: list[Any] = [
    FIRST_TURN[0],
    {
        "role": "assistant",
        "content": [
            # With display "omitted" Claude's thinking comes back empty but signed, and is sent back so.
            {"type": "thinking", "thinking": "", "signature": "EqQBCkYIARgCKkBzaWc="},
            {"type": "tool_use", "id": "toolu_01", "name": "ToolSearch", "input": {"query": "files"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "toolu_01",
                "content": [
                    {"type": "tool_reference", "tool_name": "Read"},
                    {"type": "tool_reference", "tool_name": "Write"},
                ],
            },
            {"type": "text", "text": "Tool loaded."},
            {
                "type": "text",
                "text": "<system-reminder>\nTokens left.\n</system-reminder>",
                "cache_control": CACHE,
            },
        ],
    },
]
# Opus 4.5's endpoint pointed at Opus 4.8, which takes system messages inside messages.
OPUS_48 = {
    "models": [
        {
            "id": "anthropic/claude-opus-4.5",
            "endpoints": [{"provider": "anthropic", "upstream_model": "claude-opus-4-8"}],
        }
    ]
}


def claude_code_body(model: str, messages: list[Any]) -> dict[str, Any]:
    return {
        "model": model,
        "messages": messages,
        "system": [
            {
                "type": "text",
                "text": "x-anthropic-billing-header: cc_version=2.1.332; cc_entrypoint=sdk-cli;",
            },
            {"type": "text", "text": "You are a coding agent.", "cache_control": CACHE},
            {"type": "text", "text": "Work carefully and report what you did.", "cache_control": CACHE},
        ],
        "tools": TOOLS,
        "metadata": {"user_id": json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "s-1"})},
        "max_tokens": 32000,
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "medium"},
        "stream": True,
    }


def send(gateway: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    headers = {
        "x-api-key": gateway.key,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": BETAS,
        "anthropic-dangerous-direct-browser-access": "true",
        "x-app": "cli",
        "user-agent": "claude-cli/2.1.332 (external, sdk-cli)",
    }
    url = f"{gateway.url}/api/anthropic/v1/messages?beta=true"
    response = httpx.post(url, json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop", events[-3:]
    return events


# (model as Claude Code names it, simulator prefix)
TARGETS = [
    ("claude-sonnet-4-5-20250929", "anthropic"),
    ("openai/gpt-5-mini", "openai"),
    ("google/gemini-2.5-flash", "google"),
]


@pytest.mark.parametrize(("model", "prefix"), TARGETS)
@pytest.mark.parametrize("turn", ["first", "tool round trip"])
def test_claude_codes_requests_are_answered(
    gateway: Any, sim: Any, model: str, prefix: str, turn: str
) -> None:
    messages = FIRST_TURN if turn == "first" else TOOL_ROUND_TRIP
    send(gateway, claude_code_body(model, messages))
    received = sim.requests(prefix) or sim.requests("azure")
    assert len(received) == 1
    body, headers = received[0]["body"], received[0]["headers"]
    if prefix == "anthropic":
        assert headers["anthropic-beta"] == BETAS
        assert body["thinking"] == {"type": "adaptive", "display": "omitted"}
        assert body["context_management"] and body["output_config"] == {"effort": "medium"}
        assert body["tools"][2]["defer_loading"] is True
        if turn == "tool round trip":
            result = body["messages"][-1]["content"][0]
            assert result["content"] == [
                {"type": "tool_reference", "tool_name": "Read"},
                {"type": "tool_reference", "tool_name": "Write"},
            ]
    elif prefix == "openai":
        assert body["reasoning_effort"] == "medium" and "anthropic-beta" not in headers
        assert all(set(tool) == {"type", "function"} for tool in body["tools"])
        if turn == "tool round trip":
            tool = next(m for m in body["messages"] if m["role"] == "tool")
            assert "Tool Read loaded." in json.dumps(tool["content"])
    else:
        assert body["generationConfig"]["thinkingConfig"]["thinkingBudget"] > 0


def test_on_opus_4_8_the_environment_message_stays_where_claude_code_put_it(
    gateway_factory: Any, sim: Any
) -> None:
    gateway = gateway_factory({**sim_config(sim.url), "catalog": OPUS_48})
    send(gateway, claude_code_body("anthropic/claude-opus-4.5", FIRST_TURN))
    (received,) = sim.requests("anthropic")
    assert [m["role"] for m in received["body"]["messages"]] == ["user", "system"]
