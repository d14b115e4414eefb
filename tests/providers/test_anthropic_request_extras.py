"""What an Anthropic client sends beyond the hub shape, at each provider kind: its beta flags go to every
Anthropic-format host (Anthropic, Microsoft Foundry) as the ``anthropic-beta`` header, its tools' own keys
to Anthropic and never to OpenAI-format servers."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from adapter_helpers import Recorder, completion, config

from tokenmux.catalog.model import Endpoint, Price
from tokenmux.errors import InvalidRequest
from tokenmux.protocols.anthropic_messages import beta_flags, decode_messages_request
from tokenmux.providers.anthropic import AnthropicProvider
from tokenmux.providers.base import CallContext
from tokenmux.providers.openai_compatible import OpenAICompatibleProvider
from tokenmux.providers.transport import MockResponse, MockTransport

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
TOOL = {
    "name": "later",
    "input_schema": {"type": "object", "properties": {}},
    "defer_loading": True,
    "cache_control": {"type": "ephemeral"},
}
REQUEST = {
    "model": "anthropic/claude-sonnet-4.5",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "Hi"}],
    "tools": [TOOL],
}


def endpoint(provider: str) -> Endpoint:
    return Endpoint(
        model_id="x/m",
        provider=provider,
        upstream_model="claude-sonnet-4-5",
        context_length=200_000,
        max_output=64_000,
        price=Price(input=1.0, output=2.0),
        supported_parameters=frozenset(),
    )


@pytest.mark.parametrize(
    "base_url", ["https://api.anthropic.test", "https://res.services.ai.azure.com/anthropic"]
)
async def test_beta_flags_and_tool_keys_reach_anthropic_format_hosts(base_url: str) -> None:
    request = decode_messages_request(msgspec.json.encode(REQUEST))
    request.betas = ("context-management-2025-06-27", "interleaved-thinking-2025-05-14")
    recorder = Recorder(MockResponse.json(ANSWER))
    adapter = AnthropicProvider(config("anthropic", base_url=base_url), MockTransport(recorder))
    await adapter.complete(request, CallContext(endpoint("anthropic"), request.params, 30.0))
    headers = dict(recorder.requests[0].headers)
    assert headers["anthropic-beta"] == "context-management-2025-06-27,interleaved-thinking-2025-05-14"
    assert recorder.body["tools"] == [TOOL]


async def test_without_beta_flags_no_header_is_sent() -> None:
    request = decode_messages_request(msgspec.json.encode(REQUEST))
    recorder = Recorder(MockResponse.json(ANSWER))
    adapter = AnthropicProvider(config("anthropic"), MockTransport(recorder))
    await adapter.complete(request, CallContext(endpoint("anthropic"), request.params, 30.0))
    assert "anthropic-beta" not in dict(recorder.requests[0].headers)


async def test_openai_format_servers_get_tools_without_anthropics_keys() -> None:
    request = decode_messages_request(msgspec.json.encode(REQUEST))
    recorder = Recorder(MockResponse.json(completion()))
    adapter = OpenAICompatibleProvider(config("openai-compatible"), MockTransport(recorder))
    await adapter.complete(request, CallContext(endpoint("groq"), request.params, 30.0))
    assert recorder.body["tools"] == [
        {"type": "function", "function": {"name": "later", "parameters": TOOL["input_schema"]}}
    ]


def test_beta_flags_are_read_from_every_header_once_in_order() -> None:
    assert beta_flags([b"a-1, b-2", b"b-2,c.3", b" "]) == ("a-1", "b-2", "c.3")


def test_a_beta_flag_that_is_not_a_name_is_refused() -> None:
    with pytest.raises(InvalidRequest) as caught:
        beta_flags([b"ok-1,not ok"])
    assert caught.value.param == "anthropic-beta"


def test_output_format_is_structured_output_like_output_config_format() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = {**REQUEST, "output_format": {"type": "json_schema", "schema": schema}}
    params = decode_messages_request(msgspec.json.encode(body)).params
    assert params["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema, "strict": True},
    }
    assert "output_format" not in params
