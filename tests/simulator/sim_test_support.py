"""Helpers for the simulator's tests (fixtures are in this folder's conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from openai.types.chat import ChatCompletionChunk


class Control:
    """The control routes of one prefix."""

    def __init__(self, http: httpx.Client, prefix: str) -> None:
        self.http = http
        self.prefix = prefix

    def set(self, **profile: Any) -> dict[str, Any]:
        response = self.http.post(f"/_control/{self.prefix}", json=profile)
        assert response.status_code == 200, response.text
        return response.json()

    def get(self) -> dict[str, Any]:
        response = self.http.get(f"/_control/{self.prefix}")
        assert response.status_code == 200, response.text
        return response.json()

    def requests(self) -> list[dict[str, Any]]:
        response = self.http.get(f"/_control/{self.prefix}/requests")
        assert response.status_code == 200, response.text
        return response.json()

    def clear(self) -> None:
        assert self.http.delete(f"/_control/{self.prefix}/requests").status_code == 204


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
