"""Gemini's embeddings API on the wire: ``:embedContent`` for one input, ``:batchEmbedContents`` for several.

One text is one ``content`` of one text part; ``dimensions`` is ``outputDimensionality``. The answer holds
vectors only (``embedding.values``, ``embeddings[].values``); the prompt tokens come from its
``usageMetadata`` when the API sends one, else they are counted here with the Gemini tokenizer family's
estimate (``routing.tokens``), which errs on the large side.
"""

from __future__ import annotations

from typing import Any

from tokenmux.errors import ProviderMalformed
from tokenmux.providers.common import json_object, snippet
from tokenmux.providers.openai_embeddings import vector_of
from tokenmux.routing.tokens import count_tokens
from tokenmux.types import EmbeddingRequest, EmbeddingResult, Usage


def request_body(request: EmbeddingRequest, model: str) -> dict[str, Any]:
    """The body for ``:embedContent`` (one input) or ``:batchEmbedContents`` (several)."""
    texts = [str(text) for text in request.inputs]
    if len(texts) == 1:
        return _one(texts[0], request.dimensions)
    return {"requests": [{"model": f"models/{model}", **_one(text, request.dimensions)} for text in texts]}


def _one(text: str, dimensions: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
    if dimensions is not None:
        body["outputDimensionality"] = dimensions
    return body


def read_answer(raw: bytes, status: int, request: EmbeddingRequest, model: str) -> EmbeddingResult:
    """The vectors of an answer to ``request``, in input order."""
    data = json_object(raw, status)
    count = len(request.inputs)
    one = data.get("embedding")
    items = [one] if count == 1 and isinstance(one, dict) else data.get("embeddings")
    if not isinstance(items, list) or len(items) != count:
        raise ProviderMalformed(f"the provider answered {status} without {count} embeddings: {snippet(raw)}")
    vectors = [vector_of(item.get("values") if isinstance(item, dict) else None) for item in items]
    metadata = data.get("usageMetadata")
    prompt = metadata.get("promptTokenCount") if isinstance(metadata, dict) else None
    if not isinstance(prompt, int):
        prompt = sum(count_tokens(str(text), "gemini") for text in request.inputs)
    return EmbeddingResult(vectors=vectors, usage=Usage(prompt_tokens=prompt), model=model)
