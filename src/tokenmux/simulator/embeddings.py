"""Embeddings in the simulator: OpenAI's ``/v1/embeddings`` (also Azure's deployments path) and Gemini's
``:embedContent`` / ``:batchEmbedContents``.

A vector is a pure function of the profile's seed, the model and one input (a text or a list of token ids):
the same input always gets the same vector, whatever else is in the request, so a test can compare
vectors across calls, endpoints and formats. It has the requested dimensions (else the model's usual
ones), and unit length, as real embedding models answer. Usage counts a token per four bytes of text (at
least one), or the ids of a token list.
"""

from __future__ import annotations

import base64
import math
import random
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import msgspec

from tokenmux.simulator.wire import RequestRejected

_encode = msgspec.json.encode
_MAX_DIMENSIONS = 8192
_MAX_INPUTS = 2048


@dataclass(slots=True)
class EmbeddingSpec:
    model: str
    inputs: list[str | list[int]]
    dimensions: int
    base64: bool = False  # OpenAI's encoding_format: "base64"

    @property
    def prompt_tokens(self) -> int:
        return sum(len(i) if isinstance(i, list) else max(1, len(i.encode()) // 4) for i in self.inputs)


def default_dimensions(model: str) -> int:
    """The size of a model's vectors when the request asks for none, as the real models answer."""
    return 3072 if "large" in model or "gemini" in model else 1536


def vector(seed: int, model: str, item: str | list[int], dimensions: int) -> list[float]:
    key = item.encode() if isinstance(item, str) else _encode(item)
    rng = random.Random((seed << 64) | (zlib.crc32(model.encode()) << 32) | zlib.crc32(key))
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


# -- OpenAI -----------------------------------------------------------------------------------------


def parse_openai(body: Any, path_model: str | None) -> EmbeddingSpec:
    """An OpenAI (or Azure: model from the path) embeddings request, refused as OpenAI would."""
    if not isinstance(body, dict):
        raise RequestRejected(400, "The request body must be a JSON object.")
    model = path_model or body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestRejected(400, "you must provide a model parameter", param="model")
    raw = body.get("input")
    inputs: list[str | list[int]]
    if isinstance(raw, str):
        inputs = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        inputs = [list(raw)]
    elif isinstance(raw, list) and raw and all(_is_input(x) for x in raw):
        inputs = list(raw)
    else:
        raise RequestRejected(
            400,
            "'input' must be a non-empty string, array of strings, array of tokens or array of token arrays.",
            param="input",
        )
    if len(inputs) > _MAX_INPUTS or any(not item for item in inputs):
        raise RequestRejected(400, f"'input' must hold 1 to {_MAX_INPUTS} non-empty items.", param="input")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise RequestRejected(400, "'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    return EmbeddingSpec(
        model, inputs, _dimensions(body.get("dimensions"), model, "dimensions"), encoding == "base64"
    )


def _is_input(item: Any) -> bool:
    return isinstance(item, str) or (isinstance(item, list) and all(isinstance(x, int) for x in item))


def openai_answer(spec: EmbeddingSpec, seed: int) -> bytes:
    data = []
    for index, item in enumerate(spec.inputs):
        values = vector(seed, spec.model, item, spec.dimensions)
        embedding: Any = (
            base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode() if spec.base64 else values
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = spec.prompt_tokens
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    return _encode({"object": "list", "data": data, "model": spec.model, "usage": usage})


# -- Gemini -----------------------------------------------------------------------------------------


def parse_gemini(body: Any, path_model: str, batch: bool) -> EmbeddingSpec:
    """A Gemini ``:embedContent`` request, or ``:batchEmbedContents`` with ``batch``."""
    if not isinstance(body, dict):
        raise RequestRejected(400, "Invalid JSON payload received: the body must be an object.")
    requests = body.get("requests") if batch else [body]
    if not isinstance(requests, list) or not requests or len(requests) > 100:
        raise RequestRejected(400, "* BatchEmbedContentsRequest.requests: must hold 1 to 100 requests.")
    inputs: list[str | list[int]] = []
    dimensions = None
    for request in requests:
        content = request.get("content") if isinstance(request, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            raise RequestRejected(400, "* EmbedContentRequest.content: contents must not be empty.")
        text = " ".join(str(part.get("text", "")) for part in parts if isinstance(part, dict))
        if not text:
            raise RequestRejected(400, "* EmbedContentRequest.content: text must not be empty.")
        inputs.append(text)
        dimensions = _dimensions(request.get("outputDimensionality"), path_model, "outputDimensionality")
    assert dimensions is not None
    return EmbeddingSpec(path_model, inputs, dimensions)


def gemini_answer(spec: EmbeddingSpec, seed: int, batch: bool) -> bytes:
    embeddings = [{"values": vector(seed, spec.model, item, spec.dimensions)} for item in spec.inputs]
    usage = {"promptTokenCount": spec.prompt_tokens, "totalTokenCount": spec.prompt_tokens}
    if batch:
        return _encode({"embeddings": embeddings, "usageMetadata": usage})
    return _encode({"embedding": embeddings[0], "usageMetadata": usage})


def _dimensions(value: Any, model: str, name: str) -> int:
    if value is None:
        return default_dimensions(model)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_DIMENSIONS:
        raise RequestRejected(400, f"'{name}' must be an integer from 1 to {_MAX_DIMENSIONS}.", param=name)
    return value
