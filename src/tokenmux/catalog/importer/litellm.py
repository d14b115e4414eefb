"""Offers from LiteLLM's public price table (``model_prices_and_context_window.json``).

The table is one JSON object: each key a model, written ``provider/model`` or bare, each value its
``litellm_provider``, ``mode`` and per-token prices (``input_cost_per_token``, ``output_cost_per_token``,
``cache_read_input_token_cost``, ``cache_creation_input_token_cost`` and ``..._above_1hr``, tiers such as
``input_cost_per_token_above_200k_tokens``), limits (``max_input_tokens``, ``max_output_tokens``), an
embedding model's ``output_vector_size``, ``deprecation_date`` and ``supports_*`` flags. Other keys (batch,
flex and priority prices, regional uplifts) describe ways of calling the model that tokenmux does not
use, and are left out.

What is taken: the text-chat and embedding models of the providers the catalog knows (``PROVIDERS``),
reachable through Chat Completions (or the embeddings API), not retired by the date the prices were
taken. A dated name whose undated model has the same prices is a snapshot of that model, not a model of
its own (``gpt-4o-2024-08-06`` of ``gpt-4o``). An entry at the maker's own API (``FIRST_PARTY``) may add
a model; an entry at a host only adds an endpoint to a model the catalog has.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from typing import Any

from tokenmux.catalog.importer.offer import (
    FIRST_PARTY,
    SAMPLING_PARAMETERS,
    TOOL_PARAMETERS,
    Offer,
    per_million,
)

# litellm_provider -> the catalog's provider slug.
PROVIDERS = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "azure_ai": "azure-foundry",
    "gemini": "google",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "xai": "xai",
    "moonshot": "moonshot",
    "dashscope": "dashscope",
    "groq": "groq",
    "together_ai": "together",
    "fireworks_ai": "fireworks",
    "deepinfra": "deepinfra",
}
# Hosts that serve only some makers' models through the API the catalog speaks to them with (Azure AI
# Foundry is reached through its Anthropic Messages endpoint).
HOST_AUTHORS = {"azure-foundry": frozenset({"anthropic"})}
# Whose model a name is, by how it begins: a maker's API also hosts others' models (Mistral serves GLM).
FAMILIES = (
    (re.compile(r"(gpt-|o\d|text-embedding-|chatgpt)"), "openai"),
    (re.compile(r"claude-"), "anthropic"),
    (re.compile(r"(gemini-|gemma-)"), "google"),
    (
        re.compile(r"(mistral|ministral|codestral|devstral|magistral|pixtral|open-mistral|voxtral)"),
        "mistralai",
    ),
    (re.compile(r"deepseek"), "deepseek"),
    (re.compile(r"grok-"), "x-ai"),
    (re.compile(r"(kimi-|moonshot-)"), "moonshotai"),
    (re.compile(r"(qwen|qwq)"), "qwen"),
    (re.compile(r"(zai-)?glm-"), "z-ai"),
    (re.compile(r"(meta-)?llama"), "meta-llama"),
    (re.compile(r"minimax"), "minimax"),
)
# Hugging Face organisations, as hosts write them in a model's name -> the catalog's author.
ORGANISATIONS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "mistralai": "mistralai",
    "deepseek-ai": "deepseek",
    "moonshotai": "moonshotai",
    "qwen": "qwen",
    "meta-llama": "meta-llama",
    "zai-org": "z-ai",
    "minimaxai": "minimax",
}
# Names of models that are not text chat (speech, images, search, moderation, computer use), of moving
# aliases ("-latest") and of fine-tunes.
_NOT_TEXT_CHAT = re.compile(
    r"(^ft:|^chat-latest|-latest$|latest-|audio|realtime|tts|transcribe|search|image|computer-use|"
    r"deep-research|robotics|lyria|guard|ocr|container|model-router|routers/|-exp(-|$)|experimental|-beta(-|$))"
)
_AZURE_REGIONS = frozenset({"eu", "us", "us-gov", "apac", "global", "global-standard"})
_FIREWORKS_MODELS = "accounts/fireworks/models/"
# A date inside a name: 2025-08-06, 20250929, 0309 (month and day), 09-2025.
_DATE = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|\d{4}|\d{2}-\d{4})(?=-|$)")
_TIER = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|"
    r"cache_creation_input_token_cost|cache_creation_input_token_cost_above_1hr)_above_(\d+)k_tokens$"
)
_PRICE_FIELDS = {
    "input_cost_per_token": "input",
    "output_cost_per_token": "output",
    "cache_read_input_token_cost": "cache_read",
    "cache_creation_input_token_cost": "cache_write_5m",
    "cache_creation_input_token_cost_above_1hr": "cache_write_1h",
}
_CACHE_FIELDS = frozenset({"cache_read", "cache_write_5m", "cache_write_1h"})
_CAPABILITIES = (
    ("supports_function_calling", "tool use"),
    ("supports_response_schema", "structured output"),
    ("supports_reasoning", "reasoning"),
    ("supports_prompt_caching", "prompt caching"),
)


def is_litellm_table(doc: Any) -> bool:
    return isinstance(doc, Mapping) and any(
        isinstance(v, Mapping) and "litellm_provider" in v for v in doc.values()
    )


def read_litellm(doc: Mapping[str, Any], as_of: str, providers: Collection[str]) -> list[Offer]:
    """The offers in a LiteLLM price table for the catalog providers in ``providers``."""
    entries: dict[tuple[str, str], Mapping[str, Any]] = {}
    for key, entry in doc.items():
        if not isinstance(entry, Mapping):
            continue
        found = _provider_and_name(key, entry)
        if found is None or found[0] not in providers or not _is_text_model(found[1], entry):
            continue
        # The same model is often listed twice ("deepseek-v4-pro", "deepseek/deepseek-v4-pro"): the
        # entry with more facts wins.
        current = entries.get(found)
        if current is None or len(entry) > len(current):
            entries[found] = entry
    snapshots = _snapshots(entries)
    offers = []
    for (provider, name), entry in sorted(entries.items()):
        if (provider, name) in snapshots.owner:
            continue
        offer = _offer(provider, name, entry, as_of)
        if offer is not None:
            dated = snapshots.names.get((provider, name), [])
            offer.snapshots = dated
            offer.created = offer.created or _release_date(dated)
            offers.append(offer)
    return offers


def _provider_and_name(key: str, entry: Mapping[str, Any]) -> tuple[str, str] | None:
    """(catalog provider, the model's name at that provider) of a table key, or None to leave it out."""
    litellm_provider = entry.get("litellm_provider")
    provider = PROVIDERS.get(litellm_provider) if isinstance(litellm_provider, str) else None
    if provider is None:
        return None
    prefix = f"{litellm_provider}/"
    if key.startswith(prefix):
        name = key[len(prefix) :]
    elif provider in FIRST_PARTY:
        name = key  # makers' own models are also listed bare ("gpt-5.4", "claude-opus-4-6")
    else:
        return None  # a host's key without its prefix is a price band ("together-ai-up-to-4b")
    if provider == "azure" and name.split("/", 1)[0] in _AZURE_REGIONS:
        return None  # regional deployments: other prices for the same model
    if provider == "fireworks" and "/" not in name:
        name = _FIREWORKS_MODELS + name  # Fireworks' short names stand for its full ones
    return provider, name


def _is_text_model(name: str, entry: Mapping[str, Any]) -> bool:
    mode = entry.get("mode")
    endpoints = entry.get("supported_endpoints")
    if mode == "embedding":
        return not isinstance(endpoints, list) or "/v1/embeddings" in endpoints
    if mode not in ("chat", "responses"):
        return False
    if isinstance(endpoints, list) and "/v1/chat/completions" not in endpoints:
        return False  # Responses-only models: tokenmux calls providers through Chat Completions
    outputs = entry.get("supported_output_modalities")
    if isinstance(outputs, list) and ("text" not in outputs or "audio" in outputs):
        return False  # speech models (an image output is a tool of the Responses API, not of chat)
    return not _NOT_TEXT_CHAT.search(name.lower())


class _Snapshots:
    def __init__(self) -> None:
        self.owner: dict[tuple[str, str], str] = {}  # snapshot -> the undated name it belongs to
        self.names: dict[tuple[str, str], list[str]] = {}  # undated name -> its snapshots


def _snapshots(entries: Mapping[tuple[str, str], Mapping[str, Any]]) -> _Snapshots:
    found = _Snapshots()
    for (provider, name), entry in sorted(entries.items()):
        # "gpt-4o-2024-08-06" is gpt-4o's; "mistral-medium-3-5" is mistral-medium-3.5's, and so is
        # "mistral-large-4-0" mistral-large-4's.
        variants = (
            _DATE.sub("", name, count=1),
            re.sub(r"(\d)-(\d)", r"\1.\2", name),
            name.removesuffix("-0"),
        )
        for other in variants:
            base = entries.get((provider, other)) if other != name else None
            if base is not None and _same_prices(base, entry):
                found.owner[(provider, name)] = other
                found.names.setdefault((provider, other), []).append(name)
                break
    return found


def _same_prices(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in _PRICE_FIELDS)


def _release_date(snapshots: list[str]) -> str | None:
    """The earliest full date in the snapshots' names (a model is released with its first snapshot)."""
    dates = []
    for name in snapshots:
        for match in _DATE.finditer(name):
            text = match.group(1)
            if len(text) == 8:
                text = f"{text[:4]}-{text[4:6]}-{text[6:]}"
            try:
                dates.append(dt.date.fromisoformat(text).isoformat())
            except ValueError:
                continue
    return min(dates) if dates else None


def _offer(provider: str, name: str, entry: Mapping[str, Any], as_of: str) -> Offer | None:
    price = _price(entry)
    embedding = entry.get("mode") == "embedding"
    if price is None or ("output" not in price and not embedding):
        return None
    price.setdefault("output", 0)
    author, slug = _author_and_slug(provider, name)
    if author not in HOST_AUTHORS.get(provider, (author,)):
        return None
    maker = FIRST_PARTY.get(provider)
    deprecation = entry.get("deprecation_date")
    offer = Offer(
        provider=provider,
        upstream=name,
        model_id=f"{author}/{slug}",
        creates=maker is not None and maker == author,
        price=price,
        context_length=_count(entry.get("max_input_tokens")),
        max_output=None if embedding else _count(entry.get("max_output_tokens")),
        embedding=embedding,
        dimensions=_count(entry.get("output_vector_size")) if embedding else None,
        input_modalities=None if embedding else _input_modalities(entry),
        capabilities=[text for flag, text in _CAPABILITIES if entry.get(flag) is True],
        deprecated=isinstance(deprecation, str) and deprecation[:10] <= as_of,
    )
    if offer.context_length is not None and offer.max_output is not None:
        offer.max_output = min(offer.max_output, offer.context_length)
    if not embedding:
        _parameters(offer, entry)
    return offer


def _author_and_slug(provider: str, name: str) -> tuple[str, str]:
    bare = name.removeprefix(_FIREWORKS_MODELS)
    organisation, _, rest = bare.rpartition("/")
    slug = (rest or bare).lower()
    author = ORGANISATIONS.get(organisation.lower()) if organisation else None
    if author is None:
        author = next((a for pattern, a in FAMILIES if pattern.match(slug)), None)
    if author is None:
        author = FIRST_PARTY.get(provider, "unknown")
    if author == "anthropic":
        slug = re.sub(r"-(\d+)-(\d+)$", r"-\1.\2", slug)  # claude-opus-4-6 -> claude-opus-4.6
    return author, slug


def _price(entry: Mapping[str, Any]) -> dict[str, Any] | None:
    price: dict[str, Any] = {}
    for source, target in _PRICE_FIELDS.items():
        value = per_million(entry.get(source))
        if value is None or (value == 0 and target in _CACHE_FIELDS):
            continue  # a free cache write is one the provider does not bill: no price to list
        price[target] = value
    if "input" not in price:
        return None
    search = entry.get("search_context_cost_per_query")
    if isinstance(search, Mapping):
        per_query = search.get("search_context_size_medium")
        if isinstance(per_query, int | float) and not isinstance(per_query, bool) and per_query > 0:
            price["web_search"] = per_query
    tiers: dict[int, dict[str, Any]] = {}
    for key, value in entry.items():
        match = _TIER.match(key)
        converted = per_million(value) if match else None
        if match is None or converted is None:
            continue
        tiers.setdefault(int(match.group(2)) * 1000, {})[_PRICE_FIELDS[match.group(1)]] = converted
    if tiers:
        price["tiers"] = [{"above_tokens": above, **fields} for above, fields in sorted(tiers.items())]
    return price


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _input_modalities(entry: Mapping[str, Any]) -> list[str]:
    listed = entry.get("supported_modalities")
    listed = set(listed) if isinstance(listed, list) else set()
    out = ["text"]
    for modality, flag in (
        ("image", "supports_vision"),
        ("audio", "supports_audio_input"),
        ("video", "supports_video_input"),
    ):
        if modality in listed or entry.get(flag) is True:
            out.append(modality)
    if entry.get("supports_pdf_input") is True:
        out.append("file")
    return out


def _parameters(offer: Offer, entry: Mapping[str, Any]) -> None:
    """What the table says about request parameters, as edits of the provider's usual set."""
    unsupported: list[str] = []
    if entry.get("supports_function_calling") is False:
        unsupported.extend(TOOL_PARAMETERS)
    reasoning = entry.get("supports_reasoning") is True
    # OpenAI's reasoning models refuse the sampling parameters and stop; so does a model the table marks.
    if entry.get("supports_sampling_params") is False or (
        reasoning and offer.provider in ("openai", "azure")
    ):
        unsupported.extend(SAMPLING_PARAMETERS)
        if offer.provider in ("openai", "azure"):
            unsupported.append("stop")
    offer.unsupported_parameters = unsupported
    offer.extra_parameters = ["reasoning_effort"] if reasoning else []
