"""Nothing an Anthropic client sends is lost without a word: the ``anthropic-beta`` header reaches
Anthropic-format providers, structured output (``output_format`` or ``output_config.format``) becomes each
provider's JSON mode, ``output_config.effort`` with thinking becomes OpenAI's and Gemini's reasoning effort,
Anthropic's own fields and tool keys reach Anthropic as they are, and what a provider cannot take is listed
in the generation's ``dropped_params``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from gateway_support import NANO, generation

# Tests that name their provider (or use a model only one serves here) share a gateway; those that read
# which endpoint an unpinned request reached have their own (see own_gateway).
pytestmark = pytest.mark.shared_gateway

HAIKU = "anthropic/claude-haiku-4.5"
GEMINI = "google/gemini-2.5-flash"
BETAS = ["interleaved-thinking-2025-05-14", "context-management-2025-06-27"]
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
HELLO: Any = [{"role": "user", "content": "Hello"}]
CONTEXT_MANAGEMENT = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}


@pytest.fixture
def claude(gateway: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=f"{gateway.url}/api/anthropic", api_key=gateway.key, max_retries=0
    ) as client:
        yield client


def test_the_anthropic_beta_header_reaches_anthropic(claude: anthropic.Anthropic, sim: Any) -> None:
    claude.beta.messages.create(model=HAIKU, max_tokens=32, messages=HELLO, betas=BETAS)
    (received,) = sim.requests("anthropic")
    assert received["headers"]["anthropic-beta"] == ",".join(BETAS)


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_the_anthropic_beta_header_does_not_reach_openai(claude: anthropic.Anthropic, sim: Any) -> None:
    claude.beta.messages.create(model=NANO, max_tokens=32, messages=HELLO, betas=BETAS)
    (received,) = sim.requests("openai")
    assert "anthropic-beta" not in received["headers"]


def test_a_malformed_anthropic_beta_header_is_a_400(claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model=HAIKU, max_tokens=32, messages=HELLO, extra_headers={"anthropic-beta": "a b;c"}
        )
    assert "anthropic-beta" in caught.value.message


@pytest.mark.parametrize("field", ["output_format", "output_config"])
@pytest.mark.parametrize(("model", "prefix"), [(HAIKU, "anthropic"), (NANO, "openai"), (GEMINI, "google")])
def test_structured_output_becomes_each_providers_json_mode(
    claude: anthropic.Anthropic, sim: Any, field: str, model: str, prefix: str
) -> None:
    fmt = {"type": "json_schema", "schema": PERSON}
    extra = {"output_format": fmt} if field == "output_format" else {"output_config": {"format": fmt}}
    message = claude.messages.create(
        model=model, max_tokens=200, messages=HELLO, extra_body={**extra, "provider": {"only": [prefix]}}
    )
    answer = json.loads(message.content[0].text)  # type: ignore[union-attr]
    assert set(answer) == {"name", "age"}
    body = sim.requests(prefix)[0]["body"]
    if prefix == "anthropic":
        assert body["output_config"]["format"] == fmt and "output_format" not in body
    elif prefix == "openai":
        assert body["response_format"]["json_schema"]["schema"] == PERSON
    else:
        assert body["generationConfig"]["responseJsonSchema"] == PERSON


def test_anthropics_own_fields_and_tool_keys_reach_anthropic(
    claude: anthropic.Anthropic, gateway: Any, sim: Any
) -> None:
    tool = {
        "name": "later",
        "description": "A tool loaded on demand",
        "input_schema": {"type": "object", "properties": {}},
        "defer_loading": True,
    }
    message = claude.messages.create(
        model=HAIKU,
        max_tokens=2048,
        messages=HELLO,
        tools=[tool],  # type: ignore[list-item]
        thinking={"type": "adaptive"},  # type: ignore[typeddict-item]
        extra_body={"context_management": CONTEXT_MANAGEMENT, "output_config": {"effort": "low"}},
    )
    body = sim.requests("anthropic")[0]["body"]
    assert body["context_management"] == CONTEXT_MANAGEMENT
    assert body["output_config"] == {"effort": "low"}
    assert body["thinking"] == {"type": "adaptive"}
    assert body["tools"][0]["defer_loading"] is True
    assert generation(gateway, message.id)["dropped_params"] == []


# Which of gpt-5-mini's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_effort_with_thinking_is_openais_reasoning_effort_and_the_rest_is_listed(
    claude: anthropic.Anthropic, gateway: Any, sim: Any
) -> None:
    message = claude.messages.create(
        model="openai/gpt-5-mini",
        max_tokens=2048,
        messages=HELLO,
        thinking={"type": "adaptive"},  # type: ignore[typeddict-item]
        extra_body={"context_management": CONTEXT_MANAGEMENT, "output_config": {"effort": "max"}},
    )
    body = sim.requests("openai")[0]["body"]
    assert body["reasoning_effort"] == "high"
    assert not {"context_management", "output_config", "thinking"} & set(body)
    dropped = generation(gateway, message.id)["dropped_params"]
    assert {"context_management", "output_config", "thinking"} <= set(dropped)


def test_effort_with_thinking_is_a_thinking_budget_at_gemini(claude: anthropic.Anthropic, sim: Any) -> None:
    claude.messages.create(
        model=GEMINI,
        max_tokens=2048,
        messages=HELLO,
        thinking={"type": "adaptive"},  # type: ignore[typeddict-item]
        extra_body={"output_config": {"effort": "low"}},
    )
    body = sim.requests("google")[0]["body"]
    assert body["generationConfig"]["thinkingConfig"]["thinkingBudget"] > 0
