"""Helpers for the simulator's tests (fixtures are in this folder's conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openai.types.chat import ChatCompletionChunk

from tokenmux.server.runner import BackgroundServer


def openai_base_url(server: BackgroundServer, prefix: str) -> str:
    """The OpenAI SDK's base URL for a prefix of the simulator (any prefix speaks the OpenAI format)."""
    return f"{server.url}/{prefix}/v1"


@dataclass
class StreamSummary:
    texts: dict[int, str] = field(default_factory=dict)  # choice index -> text
    tool_calls: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)  # (choice, call)


def collect_stream(chunks: list[ChatCompletionChunk]) -> StreamSummary:
    """Put a stream's deltas back together the way a client does."""
    summary = StreamSummary()
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                summary.texts[choice.index] = summary.texts.get(choice.index, "") + delta.content
            for call in delta.tool_calls or []:
                entry = summary.tool_calls.setdefault(
                    (choice.index, call.index), {"id": None, "name": None, "arguments": "", "pieces": 0}
                )
                if call.id:
                    entry["id"] = call.id
                if call.function and call.function.name:
                    entry["name"] = call.function.name
                if call.function and call.function.arguments:
                    entry["arguments"] += call.function.arguments
                    entry["pieces"] += 1
    return summary
