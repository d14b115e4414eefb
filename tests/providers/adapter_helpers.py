"""Values the adapter tests share: an endpoint, a call context, a request, and a recording handler."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec

from tokenmux.catalog.model import Endpoint, Price
from tokenmux.providers.base import CallContext, ProviderConfig
from tokenmux.providers.transport import HttpRequest, MockResponse
from tokenmux.types import ChatRequest, StreamEvent

MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "content": "Be brief."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is in this picture?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        ],
    },
]


def endpoint(upstream_model: str = "gpt-4.1-nano", provider: str = "openai") -> Endpoint:
    return Endpoint(
        model_id="openai/gpt-4.1-nano",
        provider=provider,
        upstream_model=upstream_model,
        context_length=1_047_576,
        max_output=32_768,
        price=Price(input=0.10, output=0.40, cache_read=0.025),
        supported_parameters=frozenset(),
    )


def config(kind: str = "openai", **overrides: Any) -> ProviderConfig:
    values: dict[str, Any] = {
        "slug": kind,
        "kind": kind,
        "base_url": "https://api.example.test/v1",
        "api_key": "sk-test-0123456789",
    }
    values.update(overrides)
    return ProviderConfig(**values)


def chat(stream: bool = False, messages: list[dict[str, Any]] | None = None) -> ChatRequest:
    return ChatRequest(model="openai/gpt-4.1-nano", messages=messages or MESSAGES, params={}, stream=stream)


def context(params: dict[str, Any] | None = None, timeout_s: float = 30.0, **endpoint_kw: Any) -> CallContext:
    return CallContext(endpoint=endpoint(**endpoint_kw), params=params or {}, timeout_s=timeout_s)


class Recorder:
    """A MockTransport handler that records each request and answers with the next canned response."""

    def __init__(self, *responses: MockResponse) -> None:
        self.requests: list[HttpRequest] = []
        self._responses = list(responses)

    def __call__(self, request: HttpRequest) -> MockResponse:
        self.requests.append(request)
        return self._responses.pop(0)

    @property
    def body(self) -> Any:
        return msgspec.json.decode(self.requests[-1].body)


async def collect(events: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    return [event async for event in events]


def completion(**overrides: Any) -> dict[str, Any]:
    """A non-streamed Chat Completions answer as OpenAI sends it."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": "gpt-4.1-nano-2025-04-14",
        "system_fingerprint": "fp_1",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "A cat.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1200,
            "completion_tokens": 40,
            "total_tokens": 1240,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 16, "audio_tokens": 0},
        },
    }
    body.update(overrides)
    return body


def chunk(choices: list[dict[str, Any]], usage: Any = None, **extra: Any) -> dict[str, Any]:
    """One streamed chunk as OpenAI sends it (``usage: null`` on every chunk but the last)."""
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1_760_000_000,
        "model": "gpt-4.1-nano-2025-04-14",
        "system_fingerprint": "fp_1",
        "choices": choices,
        "usage": usage,
        **extra,
    }


def delta(index: int = 0, finish_reason: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "logprobs": None, "finish_reason": finish_reason}


Handler = Callable[[HttpRequest], MockResponse]
