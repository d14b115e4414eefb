"""``POST /api/anthropic/v1/messages/count_tokens`` through the official SDK: the prompt's tokens in the
model's tokenizer family, counted by the gateway without a provider call, errors in Anthropic's shape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import msgspec
import pytest

from gateway_support import NANO, SIM_PREFIXES
from tokenmux.protocols.anthropic_messages import decode_messages_request
from tokenmux.routing.fit import PromptSize

HAIKU = "anthropic/claude-haiku-4.5"
TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
PROMPT: Any = {
    "system": "You are a weather assistant.",
    "messages": [{"role": "user", "content": "What is the weather in Paris and in Lyon today?"}],
}


@pytest.fixture
def claude(gateway: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=f"{gateway.url}/api/anthropic", api_key=gateway.key, max_retries=0
    ) as client:
        yield client


def expected(model: str, family: str, **body: Any) -> int:
    request = decode_messages_request(msgspec.json.encode({"model": model, **body}), counting=True)
    return PromptSize(request).exact(family)


def test_the_count_is_the_models_tokenizer_count(claude: anthropic.Anthropic, sim: Any) -> None:
    count = claude.messages.count_tokens(model=HAIKU, **PROMPT)
    assert isinstance(count, anthropic.types.MessageTokensCount)
    assert count.input_tokens == expected(HAIKU, "claude", **PROMPT)
    # Claude's vocabulary is counted cautiously: more tokens than o200k's count of the same prompt.
    assert count.input_tokens > claude.messages.count_tokens(model=NANO, **PROMPT).input_tokens
    assert all(sim.requests(prefix) == [] for prefix in SIM_PREFIXES)  # no provider was asked


def test_tools_a_system_message_inside_messages_and_images_count(claude: anthropic.Anthropic) -> None:
    base = claude.messages.count_tokens(model=HAIKU, **PROMPT).input_tokens
    with_tools = claude.messages.count_tokens(model=HAIKU, tools=TOOLS, **PROMPT).input_tokens
    assert with_tools > base
    messages = [
        *PROMPT["messages"],
        {"role": "system", "content": "Answer in French."},
    ]
    with_system = claude.messages.count_tokens(model=HAIKU, system=PROMPT["system"], messages=messages)
    assert with_system.input_tokens > base
    image = {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
    pictured = [{"role": "user", "content": [image, {"type": "text", "text": "What is this?"}]}]
    assert claude.messages.count_tokens(model=HAIKU, messages=pictured).input_tokens > 1_000


def test_an_unknown_model_is_a_404_in_anthropics_shape(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.count_tokens(model="anthropic/claude-nonexistent", **PROMPT)
    assert caught.value.body["type"] == "error"  # type: ignore[index]


def test_a_bad_request_is_a_400_naming_the_field(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.count_tokens(model=HAIKU, messages=[{"role": "user", "content": 5}])  # type: ignore[typeddict-item]
    assert "messages[0].content" in caught.value.message


def test_a_key_is_needed_and_its_models_are_enforced(gateway: Any) -> None:
    url = f"{gateway.url}/api/anthropic"
    with (
        anthropic.Anthropic(base_url=url, api_key="sk-tm-unknown", max_retries=0) as stranger,
        pytest.raises(anthropic.AuthenticationError),
    ):
        stranger.messages.count_tokens(model=HAIKU, **PROMPT)
    limited = gateway.new_key("openai-only", models=["openai/*"])
    with anthropic.Anthropic(base_url=url, api_key=limited, max_retries=0) as client:
        with pytest.raises(anthropic.PermissionDeniedError):
            client.messages.count_tokens(model=HAIKU, **PROMPT)
        assert client.messages.count_tokens(model=NANO, **PROMPT).input_tokens > 0
