"""An output limit above every endpoint's maximum is the client's mistake: 400 in the client's protocol,
naming the parameter as that protocol calls it and the most the model can write."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from gateway_support import NANO

HAIKU = "anthropic/claude-haiku-4.5"  # max output 64,000 at every endpoint
HELLO: Any = [{"role": "user", "content": "Hello"}]


def test_on_the_anthropic_route_it_names_max_tokens(gateway: Any) -> None:
    url = f"{gateway.url}/api/anthropic"
    with (
        anthropic.Anthropic(base_url=url, api_key=gateway.key, max_retries=0) as claude,
        pytest.raises(anthropic.BadRequestError) as caught,
    ):
        # Streamed: the SDK refuses so large a limit on a call that is not.
        claude.messages.create(model=HAIKU, max_tokens=200_000, messages=HELLO, stream=True)
    error = caught.value.body["error"]  # type: ignore[index]
    assert error["type"] == "invalid_request_error"
    assert "max_tokens" in error["message"] and "64,000" in error["message"]
    assert "max_completion_tokens" not in error["message"]


def test_on_the_responses_route_it_names_max_output_tokens(gateway: Any) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.openai().responses.create(model=NANO, input="Hello", max_output_tokens=40_000)
    assert caught.value.param == "max_output_tokens"  # type: ignore[attr-defined]
    assert "32,768" in caught.value.message


def test_a_limit_some_endpoints_can_write_is_served_by_them(gateway: Any, sim: Any) -> None:
    # gpt-oss-20b: 65,536 at groq, 32,768 at fireworks
    out = gateway.openai().chat.completions.create(
        model="openai/gpt-oss-20b", messages=HELLO, max_tokens=50_000
    )
    assert (out.model_extra or {})["provider"] in ("groq", "deepinfra")
