"""The Anthropic Messages API in front of every catalog model, with the official anthropic SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from gateway_support import NANO, generation

# Tests that only look at their own answers and records share a gateway; those that read which endpoint an
# unpinned request reached, or break streams, have their own (see own_gateway).
pytestmark = pytest.mark.shared_gateway


@pytest.fixture
def claude(gateway: Any) -> Iterator[anthropic.Anthropic]:
    url = f"{gateway.url}/api/anthropic"
    with anthropic.Anthropic(base_url=url, api_key=gateway.key, max_retries=0) as client:
        yield client


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_messages_to_an_openai_model(claude: anthropic.Anthropic, gateway: Any, sim: Any) -> None:
    client = claude
    message = client.messages.create(
        model=NANO,
        max_tokens=50,
        system="Be brief.",
        messages=[{"role": "user", "content": "Hello"}],
        stop_sequences=["\n\nEND"],
        metadata={"user_id": "u-1"},
        extra_body={"temperature": 0.2},
    )
    assert isinstance(message, anthropic.types.Message)
    assert message.model == NANO and message.stop_reason == "end_turn"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    (received,) = sim.requests("openai")
    body = received["body"]
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert body["stop"] == ["\n\nEND"] and body["temperature"] == 0.2 and body["max_tokens"] == 50
    assert body["user"] == "u-1"
    record = generation(gateway, message.id)
    assert record["provider"] == "openai" and record["tokens_completion"] == message.usage.output_tokens


def test_streamed_messages_equal_the_final_message(claude: anthropic.Anthropic, gateway: Any) -> None:
    client = claude
    with client.messages.stream(
        model=NANO, max_tokens=40, messages=[{"role": "user", "content": "Hi"}]
    ) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and "content_block_delta" in events and events[-1] == "message_stop"
    assert final.content[0].type == "text" and final.content[0].text
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0


def test_tool_use_round_trip_keeps_ids(claude: anthropic.Anthropic, gateway: Any) -> None:
    client = claude
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.messages.create(model=NANO, max_tokens=100, tools=tools, messages=messages)
    assert first.stop_reason == "tool_use"
    call = next(b for b in first.content if b.type == "tool_use")
    assert call.name == "get_weather" and "city" in call.input
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "21 C"}]},
    ]
    second = client.messages.create(model=NANO, max_tokens=100, tools=tools, messages=messages)
    assert second.stop_reason == "end_turn"


def test_x_api_key_and_bearer_both_authenticate(gateway: Any) -> None:
    body = {"model": NANO, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}
    url = f"{gateway.url}/api/anthropic/v1/messages"
    assert httpx.post(url, json=body, headers={"x-api-key": gateway.key}).status_code == 200
    assert httpx.post(url, json=body, headers={"Authorization": f"Bearer {gateway.key}"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ({"model": NANO, "messages": [{"role": "user", "content": "Hi"}]}, 400, "invalid_request_error"),
        (
            {"model": "nobody/nothing", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            404,
            "not_found_error",
        ),
    ],
)
def test_errors_are_in_anthropic_shape(
    gateway: Any, body: dict[str, Any], status: int, error_type: str
) -> None:
    r = httpx.post(f"{gateway.url}/api/anthropic/v1/messages", json=body, headers={"x-api-key": gateway.key})
    assert r.status_code == status
    err = r.json()
    assert err["type"] == "error" and err["error"]["type"] == error_type and err["error"]["message"]
    r = httpx.post(
        f"{gateway.url}/api/anthropic/v1/messages", content=b"{oops", headers={"x-api-key": gateway.key}
    )
    assert r.status_code == 400 and r.json()["type"] == "error"
    r = httpx.post(f"{gateway.url}/api/anthropic/v1/messages", json=body)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


# Breaks streams at NANO's openai endpoint (health), which it counts on reaching.
@pytest.mark.own_gateway
def test_mid_stream_break_is_an_anthropic_error_event(gateway: Any, sim: Any) -> None:
    sim.profile("openai", drop_after_chunks=3)
    with httpx.stream(
        "POST",
        f"{gateway.url}/api/anthropic/v1/messages",
        headers={"x-api-key": gateway.key},
        json={
            "model": NANO,
            "max_tokens": 50,
            "stream": True,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    ) as r:
        lines = list(r.iter_lines())
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert "content_block_delta" in events and events[-1] == "error"
    payload = json.loads(next(line for line in reversed(lines) if line.startswith("data: "))[6:])
    assert payload["type"] == "error" and payload["error"]["message"]


def test_anthropic_models_list(claude: anthropic.Anthropic) -> None:
    page = claude.models.list()
    ids = [m.id for m in page.data]
    assert NANO in ids and len(ids) >= 25


HAIKU = "anthropic/claude-haiku-4.5"


def test_extended_thinking_comes_back_as_thinking_blocks(claude: anthropic.Anthropic, gateway: Any) -> None:
    client = claude
    args: dict[str, Any] = {
        "model": HAIKU,
        "max_tokens": 2000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [{"role": "user", "content": "Think, then answer."}],
        "extra_body": {"provider": {"only": ["anthropic"]}},
    }
    message = client.messages.create(**args)
    kinds = [b.type for b in message.content]
    assert kinds[0] == "thinking" and "text" in kinds
    assert message.content[0].signature  # kept, so the next turn can send it back
    with client.messages.stream(**args) as stream:
        final = stream.get_final_message()
    assert final.content[0].type == "thinking"


def test_cache_reads_and_writes_are_priced_at_the_cache_prices(
    claude: anthropic.Anthropic, gateway: Any, sim: Any
) -> None:
    sim.profile("anthropic", cached_ratio=0.5)
    client = claude
    long_system = [{"type": "text", "text": "Rules. " * 3000, "cache_control": {"type": "ephemeral"}}]
    message = client.messages.create(
        model=HAIKU,
        max_tokens=50,
        system=long_system,
        messages=[{"role": "user", "content": "Hi"}],
        extra_body={"provider": {"only": ["anthropic"]}},
    )
    usage = message.usage
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    assert read > 0 and written > 0
    # Haiku 4.5: input $1, output $5, cache read $0.10, 5-minute cache write $1.25 per million tokens.
    expected = (usage.input_tokens * 1.0 + read * 0.10 + written * 1.25 + usage.output_tokens * 5.0) / 1e6
    assert (usage.model_extra or {})["cost"] == pytest.approx(expected, rel=1e-9)
    record = generation(gateway, message.id)
    assert record["tokens_cached"] == read and record["tokens_cache_write"] == written
    assert record["usage"] == pytest.approx(expected, rel=1e-9)
    # The same call through the OpenAI protocol costs the same.
    sim.profile("anthropic", cached_ratio=0.5)
    out = gateway.openai().chat.completions.create(
        model=HAIKU,
        max_tokens=50,
        messages=[{"role": "system", "content": long_system}, {"role": "user", "content": "Hi"}],
        extra_body={"provider": {"only": ["anthropic"]}},
    )
    assert (out.usage.model_extra or {})["cost"] == pytest.approx(expected, rel=1e-9)


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_anthropic_only_fields_never_reach_an_openai_provider(claude: anthropic.Anthropic, sim: Any) -> None:
    tools = [
        {
            "name": "lookup",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
            "cache_control": {"type": "ephemeral"},
        }
    ]
    claude.messages.create(
        model=NANO,
        max_tokens=50,
        tools=tools,
        system=[{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": "Find it."},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "x"}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": "not found",
                        "is_error": True,
                    }
                ],
            },
        ],
    )
    body = sim.requests("openai")[-1]["body"]
    sent = json.dumps(body)
    assert "cache_control" not in sent and "is_error" not in sent and "reasoning_blocks" not in sent
    tool_result = next(m for m in body["messages"] if m["role"] == "tool")
    assert tool_result["tool_call_id"] == "toolu_1" and "Error" in json.dumps(tool_result["content"])
