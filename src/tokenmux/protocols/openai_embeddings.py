"""OpenAI's embeddings wire format (``POST /api/v1/embeddings``) <-> ``EmbeddingRequest`` and the answer.

``input`` is a string, a list of strings, a list of token ids or a list of token-id lists (what
LangChain sends after tokenizing); ``dimensions``, ``encoding_format`` (``float`` or ``base64``: little-
endian float32s, which the openai SDK asks for by default) and ``user`` as OpenAI takes them; ``provider``
and ``models`` as on chat completions. Errors in OpenAI's shape (``openai_chat.encode_error``).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import msgspec

from tokenmux.errors import InvalidRequest
from tokenmux.json_codec import encode_json
from tokenmux.protocols.json_limits import check_structure
from tokenmux.protocols.openai_chat import _fail, _provider_preferences
from tokenmux.types import EmbeddingRequest, Usage

_decoder = msgspec.json.Decoder()
EMBEDDINGS_EXAMPLE = '{"model": "openai/text-embedding-3-small", "input": "The food was delicious"}'
# OpenAI's own limits: at most 2,048 inputs a request, vectors of at most a few thousand numbers.
MAX_INPUTS = 2048
MAX_DIMENSIONS = 65_536
_KNOWN = frozenset({"model", "models", "input", "dimensions", "encoding_format", "user", "provider"})


def decode_embedding_request(body: bytes | bytearray) -> EmbeddingRequest:
    """Parse and validate an embeddings request body."""
    check_structure(body, EMBEDDINGS_EXAMPLE)
    try:
        data = _decoder.decode(body)
    except msgspec.DecodeError as e:
        raise InvalidRequest(
            f"the request body is not valid JSON ({e}); send a JSON object such as {EMBEDDINGS_EXAMPLE}",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    unknown = sorted(k for k in data if k not in _KNOWN)
    if unknown:
        raise _fail(
            unknown[0],
            f"unknown parameter {unknown[0]!r}; the embeddings API takes {', '.join(sorted(_KNOWN))}",
        )
    models = data.get("models")
    if models is not None and (
        not isinstance(models, list) or not all(isinstance(m, str) and m for m in models)
    ):
        raise _fail("models", "models must be a list of model ids, e.g. ['openai/text-embedding-3-small']")
    fallback = tuple(models or ())
    model = data.get("model")
    if model is None and fallback:
        model, fallback = fallback[0], fallback[1:]
    if not isinstance(model, str) or not model:
        raise _fail("model", "model is required: an embedding model such as 'openai/text-embedding-3-small'")
    dimensions = data.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool)
        or not isinstance(dimensions, int)
        or not 1 <= dimensions <= MAX_DIMENSIONS
    ):
        raise _fail(
            "dimensions", f"dimensions must be an integer from 1 to {MAX_DIMENSIONS:,}, got {dimensions!r}"
        )
    encoding = data.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise _fail("encoding_format", f"encoding_format must be 'float' or 'base64', got {encoding!r}")
    user = data.get("user")
    if user is not None and not isinstance(user, str):
        raise _fail("user", "user must be a string")
    return EmbeddingRequest(
        model=model,
        inputs=_inputs(data.get("input")),
        dimensions=dimensions,
        encoding_format=encoding,
        user=user,
        provider=_provider_preferences(data.get("provider")),
        fallback_models=fallback,
        body_bytes=len(body),
    )


def _inputs(raw: Any) -> list[str] | list[list[int]]:
    """One entry per vector: texts, or token-id lists; never a mix of the two, never an empty one."""
    if isinstance(raw, str):
        raw = [raw]
    elif isinstance(raw, list) and raw and all(_token_id(t) for t in raw):
        raw = [raw]  # one input given as token ids
    shape = (
        "input must be a non-empty string, a list of strings, a list of token ids or a list of token-id lists"
    )
    if not isinstance(raw, list) or not raw:
        raise _fail("input", shape)
    if len(raw) > MAX_INPUTS:
        raise _fail("input", f"input holds {len(raw):,} items; at most {MAX_INPUTS:,} a request")
    if all(isinstance(item, str) for item in raw):
        if not all(raw):
            raise _fail("input", "input must not hold an empty string")
        return raw
    if all(isinstance(item, list) and item and all(_token_id(t) for t in item) for item in raw):
        return raw
    raise _fail("input", shape)


def _token_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def encode_response(
    vectors: list[list[float]],
    request: EmbeddingRequest,
    *,
    model: str,
    provider: str,
    usage: Usage,
    cost: float,
) -> bytes:
    """The answer: one embedding object per input, in input order, and usage with its cost."""
    packed = request.encoding_format == "base64"
    data = [
        {"object": "embedding", "index": i, "embedding": _base64(v) if packed else v}
        for i, v in enumerate(vectors)
    ]
    tokens = usage.prompt_tokens
    return encode_json(
        {
            "object": "list",
            "data": data,
            "model": model,
            "provider": provider,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "cost": cost},
        }
    )


def _base64(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
