"""Offers from OpenRouter's model list (``GET https://openrouter.ai/api/v1/models``).

The answer is ``{"data": [model, ...]}``; a model has ``id`` ("anthropic/claude-sonnet-4.5", the same
``author/slug`` form as the catalog's ids), ``name``, ``created`` (Unix time it was listed),
``description``, ``context_length``, ``architecture`` (``input_modalities``, ``output_modalities``),
``pricing`` (USD per token as decimal strings: ``prompt``, ``completion``, ``input_cache_read``,
``input_cache_write``, ``web_search`` per request; ``-1`` when the price varies), ``top_provider``
(``context_length``, ``max_completion_tokens``) and ``supported_parameters``.

The prices are OpenRouter's own, so every model becomes an endpoint at the ``openrouter`` provider; the
model's name, description and release date also fill what the catalog does not say of it yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from tokenmux.catalog.importer.offer import Offer, per_million

PROVIDER = "openrouter"
# OpenRouter's parameter names that tokenmux passes on under the same name.
_PARAMETERS = frozenset(
    {
        "max_tokens",
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "frequency_penalty",
        "presence_penalty",
        "repetition_penalty",
        "seed",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "response_format",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "reasoning",
    }
)
_MODALITIES = frozenset({"text", "image", "audio", "video", "file"})
_PRICES = (
    ("prompt", "input"),
    ("completion", "output"),
    ("input_cache_read", "cache_read"),
    ("input_cache_write", "cache_write_5m"),
)


def is_openrouter_list(doc: Any) -> bool:
    data = doc.get("data") if isinstance(doc, Mapping) else None
    return isinstance(data, list) and all(isinstance(m, Mapping) and "id" in m for m in data)


def read_openrouter(doc: Mapping[str, Any]) -> list[Offer]:
    offers = []
    for model in doc.get("data") or []:
        offer = _offer(model) if isinstance(model, Mapping) else None
        if offer is not None:
            offers.append(offer)
    return offers


def _offer(model: Mapping[str, Any]) -> Offer | None:
    model_id = model.get("id")
    if not isinstance(model_id, str) or model_id.count("/") != 1 or ":" in model_id:
        return None  # "openrouter/auto" routers, ":free" and ":thinking" variants of another model
    architecture = _mapping(model.get("architecture"))
    outputs = architecture.get("output_modalities") or ["text"]
    embedding = outputs == ["embeddings"]
    if not embedding and outputs != ["text"]:
        return None  # image and audio generation
    price = _price(model.get("pricing"))
    if price is None:
        return None
    top = _mapping(model.get("top_provider"))
    context = _count(top.get("context_length")) or _count(model.get("context_length"))
    max_output = None if embedding else _count(top.get("max_completion_tokens")) or context
    params = model.get("supported_parameters")
    supported = None
    if isinstance(params, list):
        names = {p for p in params if isinstance(p, str) and p in _PARAMETERS}
        if "max_tokens" in names:
            names.add("max_completion_tokens")  # one limit under two names
        supported = sorted(names)
    inputs = [m for m in architecture.get("input_modalities") or ["text"] if m in _MODALITIES]
    return Offer(
        provider=PROVIDER,
        upstream=model_id,
        model_id=model_id.lower(),
        creates=True,
        price=price,
        context_length=context,
        max_output=min(max_output, context) if max_output and context else max_output,
        embedding=embedding,
        input_modalities=None if embedding else inputs or ["text"],
        supported_parameters=supported,
        name=model.get("name") if isinstance(model.get("name"), str) else None,
        description=model.get("description") if isinstance(model.get("description"), str) else None,
        created=_date(model.get("created")),
    )


def _price(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, Mapping):
        return None
    price: dict[str, Any] = {}
    for source, target in _PRICES:
        value = per_million(raw.get(source))
        if value is not None and (value > 0 or target in ("input", "output")):
            price[target] = value
    search = raw.get("web_search")
    try:
        per_request = float(search) if search is not None else 0.0
    except (TypeError, ValueError):
        per_request = 0.0
    if per_request > 0:
        price["web_search"] = per_request
    return price if "input" in price and "output" in price else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _date(created: Any) -> str | None:
    if not isinstance(created, int | float) or isinstance(created, bool) or created <= 0:
        return None
    return dt.datetime.fromtimestamp(created, dt.UTC).date().isoformat()
