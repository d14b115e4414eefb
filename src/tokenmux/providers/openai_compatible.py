"""The ``openai-compatible`` adapter: any server that speaks Chat Completions at a configured base URL
(vLLM, Ollama, llama.cpp, Groq, DeepSeek, Together, Fireworks, Mistral, ...).

It is the OpenAI adapter plus tolerance for the usual deviations:
- reasoning text as ``reasoning_content`` (vLLM, DeepSeek, llama.cpp) instead of ``reasoning``;
- cached prompt tokens as ``prompt_cache_hit_tokens`` (DeepSeek) instead of
  ``prompt_tokens_details.cached_tokens``;
- usage on the last content chunk rather than a chunk of its own (handled by the base adapter), or under
  ``x_groq`` (Groq);
- no usage at all in a stream, no ``[DONE]`` after the finish, a last event without its blank line.
"""

from __future__ import annotations

from typing import Any, ClassVar

from tokenmux.providers.openai import OpenAIProvider, parse_usage
from tokenmux.providers.registry import ProviderKind, register
from tokenmux.types import Usage


class OpenAICompatibleProvider(OpenAIProvider):
    kind: ClassVar[str] = "openai-compatible"
    _passes_chunks_through: ClassVar[bool] = False  # its deltas and usage go through the seams below
    _speaks_responses: ClassVar[bool] = False  # few such servers serve /responses; Chat Completions always

    def _usage(self, raw: dict[str, Any]) -> Usage:
        usage = parse_usage(raw)
        if not usage.cached_tokens:
            hit = raw.get("prompt_cache_hit_tokens")
            if isinstance(hit, int):
                usage.cached_tokens = hit
        return usage

    def _chunk_usage(self, chunk: dict[str, Any]) -> Any:
        usage = chunk.get("usage")
        if usage is None:
            groq = chunk.get("x_groq")
            if isinstance(groq, dict):
                usage = groq.get("usage")
        return usage

    def _normalise_delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return _reasoning_renamed(delta)

    def _normalise_message(self, message: dict[str, Any]) -> dict[str, Any]:
        return _reasoning_renamed(message)


def _reasoning_renamed(fields: dict[str, Any]) -> dict[str, Any]:
    if "reasoning_content" in fields:
        text = fields.pop("reasoning_content")
        if text is not None and fields.get("reasoning") is None:
            fields["reasoning"] = text
    return fields


register(ProviderKind(OpenAICompatibleProvider.kind, OpenAICompatibleProvider))
