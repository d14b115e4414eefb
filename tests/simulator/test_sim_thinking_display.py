"""Thinking with display "omitted", as Claude Code asks for it: the simulated Anthropic API answers with a
signed thinking block whose text is empty, streamed or not, so a client can send it back in a tool loop."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest
from anthropic.types import ThinkingBlock

from tokenmux.server.runner import BackgroundServer

HELLO: list[dict[str, str]] = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
def claude(sim_server: BackgroundServer) -> Iterator[anthropic.Anthropic]:
    url = f"{sim_server.url}/anthropic"
    with anthropic.Anthropic(base_url=url, api_key="sk-ant-test", max_retries=0, timeout=10) as client:
        yield client


@pytest.mark.parametrize("thinking", [{"type": "adaptive"}, {"type": "enabled", "budget_tokens": 1024}])
@pytest.mark.parametrize("stream", [False, True])
def test_omitted_thinking_is_a_signed_block_without_text(
    claude: anthropic.Anthropic, thinking: dict[str, object], stream: bool
) -> None:
    params: dict[str, object] = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "messages": HELLO,
        "thinking": {**thinking, "display": "omitted"},
    }
    if stream:
        with claude.messages.stream(**params) as events:  # type: ignore[arg-type]
            message = events.get_final_message()
    else:
        message = claude.messages.create(**params)  # type: ignore[call-overload]
    block = message.content[0]
    assert isinstance(block, ThinkingBlock)
    assert block.thinking == "" and block.signature
    assert message.content[-1].type == "text"


def test_summarized_thinking_keeps_its_text(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=2048,
        messages=HELLO,
        thinking={"type": "adaptive"},  # type: ignore[typeddict-item]
    )
    block = message.content[0]
    assert isinstance(block, ThinkingBlock) and block.thinking and block.signature
