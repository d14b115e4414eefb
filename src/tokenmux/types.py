"""Internal values that flow through the gateway.

The internal message shape is the OpenAI Chat Completions shape (plain dicts, validated where they enter
by ``protocols/``). Choosing the most common wire format as the hub means an OpenAI-in, OpenAI-out call
touches its messages not at all, and every other protocol converts to and from exactly one shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# One chat message in OpenAI shape: {"role": ..., "content": str | list[part], "tool_calls": [...], ...}.
Message = dict[str, Any]


@dataclass(slots=True)
class ProviderPreferences:
    """The request's ``provider`` object (OpenRouter's names, so existing clients work)."""

    order: tuple[str, ...] = ()
    only: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()
    allow_fallbacks: bool = True
    require_parameters: bool = False
    data_collection: str = "allow"  # "allow" | "deny"
    zdr: bool = False
    sort: str | None = None  # "price" | "throughput" | "latency"
    max_price_prompt: float | None = None  # USD per million tokens
    max_price_completion: float | None = None


@dataclass(slots=True)
class ChatRequest:
    """One chat request, whichever protocol it came in by."""

    model: str  # as the client named it, suffix included (":nitro", ":floor")
    messages: list[Message]
    # Every other parameter the client sent, by its OpenAI name, exactly as sent (temperature, tools, ...).
    # Routing extensions (provider, models) and stream controls are not in here.
    params: dict[str, Any]
    stream: bool = False
    include_usage: bool = False
    fallback_models: tuple[str, ...] = ()
    provider: ProviderPreferences = field(default_factory=ProviderPreferences)
    max_output_tokens: int | None = None  # max_completion_tokens, else max_tokens
    # The client's own name for that limit, for errors about it (max_tokens on the Anthropic route).
    max_output_param: str = "max_completion_tokens"
    body_bytes: int = 0  # size of the raw request body: the cheap upper bound for prompt tokens
    inbound: str = "openai"  # the protocol the client speaks
    # Anthropic beta flags the client sent (its ``anthropic-beta`` header), for Anthropic-format providers.
    betas: tuple[str, ...] = ()

    def sent(self) -> dict[str, Any]:
        """What a key that keeps prompts keeps of the request: as routed."""
        return {"model": self.model, "messages": self.messages, "params": self.params}


@dataclass(slots=True)
class Usage:
    """Token counts in OpenAI's convention: ``prompt_tokens`` includes cached and cache-written tokens,
    ``completion_tokens`` includes reasoning tokens."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from the provider's cache
    cache_write_5m_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class ChatResponse:
    """A complete (non-streamed) answer from a provider, choices in OpenAI shape."""

    id: str
    created: int
    model: str  # the upstream model name as the provider reported it
    choices: list[dict[str, Any]]  # {"index", "message", "finish_reason", "logprobs"}
    usage: Usage | None
    system_fingerprint: str | None = None


@dataclass(slots=True)
class StreamEvent:
    """One step of a provider's stream, normalised to an OpenAI chunk's choice delta.

    A provider stream yields these; a broken stream raises instead. ``usage`` arrives on its own event,
    usually last.
    """

    delta: dict[str, Any] | None = None  # {"role"?, "content"?, "tool_calls"?, "reasoning"?, "refusal"?}
    index: int = 0
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None
    usage: Usage | None = None
    id: str | None = None  # upstream id, when the provider sends one
    system_fingerprint: str | None = None

    @property
    def has_content(self) -> bool:
        """True when this event carries output a client would see (text, tool call, reasoning)."""
        d = self.delta
        if not d:
            return False
        return bool(d.get("content") or d.get("tool_calls") or d.get("reasoning") or d.get("refusal"))


@dataclass(slots=True)
class EmbeddingRequest:
    """One embeddings request (``POST /api/v1/embeddings``), in OpenAI's shape.

    ``inputs`` holds one entry per vector asked for: a text, or a list of token ids (OpenAI's token-array
    input, which only an endpoint whose provider reads token ids, OpenAI's and Azure's, can take)."""

    model: str
    inputs: list[str] | list[list[int]]
    dimensions: int | None = None
    encoding_format: str = "float"  # "float" | "base64": how the client wants the vectors
    user: str | None = None
    provider: ProviderPreferences = field(default_factory=ProviderPreferences)
    fallback_models: tuple[str, ...] = ()
    body_bytes: int = 0
    stream: bool = False  # never streamed; the request log's ``streamed`` column reads it

    @property
    def tokenized(self) -> bool:
        """The inputs are token ids, not texts."""
        return bool(self.inputs) and not isinstance(self.inputs[0], str)

    def sent(self) -> dict[str, Any]:
        """What a key that keeps prompts keeps of the request."""
        return {"model": self.model, "input": self.inputs, "dimensions": self.dimensions}


@dataclass(slots=True)
class EmbeddingResult:
    """A provider's vectors, in the order of the request's inputs, and what they used."""

    vectors: list[list[float]]
    usage: Usage
    model: str  # the upstream model name as the provider reported it
