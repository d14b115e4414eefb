"""Turn validated-as-we-go raw catalog data into ``ProviderInfo``, ``Model``, ``Endpoint`` and ``Price``.

An endpoint states only what differs from its model and its provider. Each value is the first one set of:

    context_length, max_output   endpoint, model
    upstream_model               endpoint, the model's slug
    snapshots                    endpoint (other names the provider gives the model, such as dated ones)
    supported_parameters         endpoint, model, provider defaults; then the model's and the endpoint's
                                 extra_parameters are added and unsupported_parameters removed
    protocols                    endpoint, model, provider defaults, ("openai",)
    data_policy                  each field: endpoint, provider defaults, DataPolicy's default
    status_page_url              endpoint, provider

An embedding model (``output_modalities: [embeddings]``) needs no ``max_output``; its ``dimensions`` (the size of
its vectors) are stated on the model, and only there. An endpoint's ``source``
says where its price and limits come from when not from the public price table (``tokenmux catalog
import`` leaves those figures as they are).

A model's ``context_length`` and ``max_output``, when it does not state them, are the largest of its
endpoints'; its ``supported_parameters`` are the union of its endpoints'.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokenmux.catalog import fields as f
from tokenmux.catalog.fields import fail
from tokenmux.catalog.model import DataPolicy, Endpoint, Model, Price, PriceTier, ProviderInfo

PROTOCOLS = frozenset({"openai", "anthropic"})
MODALITIES = frozenset({"text", "image", "audio", "video", "file", "embeddings"})
MODERATION = frozenset({"developer", "provider"})

PROVIDER_FIELDS = frozenset({"name", "kind", "base_url", "status_page_url", "api_key_env", "defaults"})
DEFAULTS_FIELDS = frozenset({"supported_parameters", "protocols", "data_policy"})
DATA_POLICY_FIELDS = frozenset({"prompt_training", "retention_days", "moderation"})
# Fields a model passes down to its endpoints, and the adjustments it makes to their parameter lists.
_INHERITED = frozenset({"context_length", "max_output", "supported_parameters", "protocols"})
_PARAMETER_EDITS = frozenset({"extra_parameters", "unsupported_parameters"})
MODEL_FIELDS = frozenset(
    {"id", "name", "description", "created", "tokenizer", "endpoints", "dimensions"}
    | {"input_modalities", "output_modalities"}
    | _INHERITED
    | _PARAMETER_EDITS
)
ENDPOINT_FIELDS = frozenset(
    {"provider", "upstream_model", "snapshots", "source", "price", "data_policy", "status_page_url"}
    | {"quantization"}
    | _INHERITED
    | _PARAMETER_EDITS
)
PRICE_FIELDS = frozenset(
    {"input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "web_search", "tiers"}
)
TIER_FIELDS = frozenset({"above_tokens", "input", "output", "cache_read", "cache_write_5m", "cache_write_1h"})

_SLUG = re.compile(r"[a-z0-9][a-z0-9_.-]*")
_MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.:-]*")


@dataclass(frozen=True, slots=True)
class ProviderDefaults:
    """What endpoints at one provider inherit (kept out of ``ProviderInfo``: only the loader needs it)."""

    supported_parameters: tuple[str, ...] | None = None
    protocols: tuple[str, ...] | None = None
    data_policy: Mapping[str, Any] | None = None  # validated fields, possibly only some of them


@dataclass(frozen=True, slots=True)
class Provider:
    info: ProviderInfo
    defaults: ProviderDefaults


def build_provider(slug: Any, raw: Any, where: str) -> Provider:
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise fail(where, f"provider slug {slug!r} must be lower-case letters, digits, '-', '_' or '.'")
    where = f"{where}: provider {slug!r}"
    raw = f.mapping(raw, where)
    f.check_keys(raw, PROVIDER_FIELDS, where)
    info = ProviderInfo(
        slug=slug,
        name=f.text(raw, "name", where) or slug,
        # Which kinds exist is the provider registry's to say: ``load_catalog(kinds=...)`` checks.
        kind=f.text(raw, "kind", where, required=True) or "",
        base_url=f.text(raw, "base_url", where),
        status_page_url=f.text(raw, "status_page_url", where),
        api_key_env=f.text(raw, "api_key_env", where),
    )
    defaults_raw = f.mapping(raw.get("defaults") or {}, f"{where}: defaults")
    f.check_keys(defaults_raw, DEFAULTS_FIELDS, f"{where}: defaults")
    defaults = ProviderDefaults(
        supported_parameters=f.names(defaults_raw, "supported_parameters", f"{where}: defaults"),
        protocols=f.names(defaults_raw, "protocols", f"{where}: defaults", allowed=PROTOCOLS),
        data_policy=_data_policy_fields(defaults_raw.get("data_policy"), f"{where}: defaults: data_policy"),
    )
    return Provider(info, defaults)


@dataclass(frozen=True, slots=True)
class _Inherited:
    """What a model states for all its endpoints (validated once, where the model is)."""

    context_length: int | None
    max_output: int | None
    supported_parameters: tuple[str, ...] | None
    protocols: tuple[str, ...] | None
    extra_parameters: tuple[str, ...]
    unsupported_parameters: tuple[str, ...]
    embedding: bool  # an embedding model answers with vectors: it has no output limit


def build_model(raw: Any, where: str, providers: Mapping[str, Provider]) -> Model:
    raw = f.mapping(raw, where)
    model_id = f.text(raw, "id", where, required=True)
    assert model_id is not None
    if not _MODEL_ID.fullmatch(model_id):
        raise fail(where, f"model id {model_id!r} must look like 'author/slug', e.g. 'openai/gpt-4.1-nano'")
    where = f"{where} ({model_id})"
    f.check_keys(raw, MODEL_FIELDS, where)
    output_modalities = f.names(raw, "output_modalities", where, allowed=MODALITIES) or ("text",)
    inherited = _Inherited(
        context_length=f.count(raw, "context_length", where),
        max_output=f.count(raw, "max_output", where),
        supported_parameters=f.names(raw, "supported_parameters", where),
        protocols=f.names(raw, "protocols", where, allowed=PROTOCOLS),
        extra_parameters=f.names(raw, "extra_parameters", where) or (),
        unsupported_parameters=f.names(raw, "unsupported_parameters", where) or (),
        embedding=output_modalities == ("embeddings",),
    )
    endpoints_raw = f.sequence(raw.get("endpoints"), f"{where}: endpoints")
    if not endpoints_raw:
        raise fail(where, "a model needs at least one endpoint (a provider that serves it)")
    endpoints: list[Endpoint] = []
    for i, endpoint_raw in enumerate(endpoints_raw):
        endpoint = _build_endpoint(endpoint_raw, f"{where}: endpoints[{i}]", model_id, inherited, providers)
        if any(e.provider == endpoint.provider for e in endpoints):
            raise fail(
                where,
                f"provider {endpoint.provider!r} is listed twice; a model has one endpoint per provider",
            )
        endpoints.append(endpoint)
    return Model(
        id=model_id,
        name=f.text(raw, "name", where) or model_id,
        author=model_id.split("/", 1)[0],
        description=_description(raw, where),
        created=f.iso_date(raw, "created", where) or "",
        input_modalities=f.names(raw, "input_modalities", where, allowed=MODALITIES) or ("text",),
        output_modalities=output_modalities,
        context_length=inherited.context_length or max(e.context_length for e in endpoints),
        max_output=inherited.max_output or max(e.max_output for e in endpoints),
        tokenizer=f.text(raw, "tokenizer", where) or "unknown",
        endpoints=tuple(endpoints),
        supported_parameters=frozenset().union(*(e.supported_parameters for e in endpoints)),
        dimensions=_dimensions(raw, where, inherited.embedding),
    )


def _dimensions(raw: Mapping[str, Any], where: str, embedding: bool) -> int | None:
    dimensions = f.count(raw, "dimensions", where)
    if dimensions is not None and not embedding:
        raise fail(where, "only an embedding model (output_modalities: [embeddings]) has dimensions")
    return dimensions


def _build_endpoint(
    raw: Any, where: str, model_id: str, inherited: _Inherited, providers: Mapping[str, Provider]
) -> Endpoint:
    raw = f.mapping(raw, where)
    slug = f.text(raw, "provider", where, required=True)
    assert slug is not None
    provider = providers.get(slug)
    if provider is None:
        known = ", ".join(sorted(providers))
        raise fail(
            where, f"provider {slug!r} is not known: add it under catalog.providers, or use one of {known}"
        )
    where = f"{where} ({slug})"
    f.check_keys(raw, ENDPOINT_FIELDS, where)

    context_length = f.count(raw, "context_length", where) or inherited.context_length
    max_output = f.count(raw, "max_output", where) or inherited.max_output
    if max_output is None and inherited.embedding:
        max_output = 0
    if context_length is None or max_output is None:
        missing = "context_length" if context_length is None else "max_output"
        raise fail(where, f"field {missing!r} is required on the endpoint or its model")
    if max_output > context_length:
        raise fail(where, f"max_output {max_output} is larger than context_length {context_length}")

    protocols = (
        f.names(raw, "protocols", where, allowed=PROTOCOLS)
        or inherited.protocols
        or provider.defaults.protocols
        or ("openai",)
    )
    return Endpoint(
        model_id=model_id,
        provider=slug,
        upstream_model=f.text(raw, "upstream_model", where) or model_id.split("/", 1)[1],
        context_length=context_length,
        max_output=max_output,
        price=build_price(raw.get("price"), f"{where}: price"),
        supported_parameters=_parameters(raw, inherited, provider, where),
        protocols=protocols,
        data_policy=_data_policy(raw.get("data_policy"), provider, f"{where}: data_policy"),
        status_page_url=f.text(raw, "status_page_url", where) or provider.info.status_page_url,
        quantization=f.text(raw, "quantization", where),
        source=f.text(raw, "source", where),
        snapshots=f.names(raw, "snapshots", where) or (),
    )


def build_price(raw: Any, where: str) -> Price:
    if raw is None:
        raise fail(where, "every endpoint needs a price with at least 'input' and 'output' (USD per million)")
    raw = f.mapping(raw, where)
    f.check_keys(raw, PRICE_FIELDS, where)
    base_input = f.price(raw, "input", where, required=True)
    base_output = f.price(raw, "output", where, required=True)
    assert base_input is not None and base_output is not None
    tiers: list[PriceTier] = []
    for i, tier_raw in enumerate(f.sequence(raw.get("tiers") or [], f"{where}: tiers")):
        tier_where = f"{where}: tiers[{i}]"
        tier_raw = f.mapping(tier_raw, tier_where)
        f.check_keys(tier_raw, TIER_FIELDS, tier_where)
        above = f.count(tier_raw, "above_tokens", tier_where)
        if above is None:
            raise fail(tier_where, "field 'above_tokens' is required: the prompt size above which it applies")
        tier_input = f.price(tier_raw, "input", tier_where)
        tier_output = f.price(tier_raw, "output", tier_where)
        tiers.append(
            PriceTier(
                above_tokens=above,
                input=base_input if tier_input is None else tier_input,
                output=base_output if tier_output is None else tier_output,
                cache_read=f.price(tier_raw, "cache_read", tier_where),
                cache_write_5m=f.price(tier_raw, "cache_write_5m", tier_where),
                cache_write_1h=f.price(tier_raw, "cache_write_1h", tier_where),
            )
        )
    tiers.sort(key=lambda t: t.above_tokens)
    if len({t.above_tokens for t in tiers}) != len(tiers):
        raise fail(where, "two tiers start at the same above_tokens")
    return Price(
        input=base_input,
        output=base_output,
        cache_read=f.price(raw, "cache_read", where),
        cache_write_5m=f.price(raw, "cache_write_5m", where),
        cache_write_1h=f.price(raw, "cache_write_1h", where),
        web_search=f.price(raw, "web_search", where),
        tiers=tuple(tiers),
    )


def _parameters(
    raw: Mapping[str, Any], inherited: _Inherited, provider: Provider, where: str
) -> frozenset[str]:
    base = f.names(raw, "supported_parameters", where)
    if base is None:
        base = inherited.supported_parameters
    if base is None:
        base = provider.defaults.supported_parameters or ()
    params = set(base)
    # The model's edits first, then the endpoint's own, which win.
    params.update(inherited.extra_parameters)
    params.difference_update(inherited.unsupported_parameters)
    params.update(f.names(raw, "extra_parameters", where) or ())
    params.difference_update(f.names(raw, "unsupported_parameters", where) or ())
    return frozenset(params)


def _data_policy(raw: Any, provider: Provider, where: str) -> DataPolicy:
    merged = dict(provider.defaults.data_policy or {})
    merged.update(_data_policy_fields(raw, where) or {})
    return DataPolicy(**merged)


def _data_policy_fields(raw: Any, where: str) -> dict[str, Any] | None:
    """The data-policy fields present in ``raw``, validated. ``retention_days: null`` is kept: it says
    "unknown" and must override a provider default."""
    if raw is None:
        return None
    raw = f.mapping(raw, where)
    f.check_keys(raw, DATA_POLICY_FIELDS, where)
    out: dict[str, Any] = {}
    if "prompt_training" in raw:
        out["prompt_training"] = f.flag(raw, "prompt_training", where)
        if out["prompt_training"] is None:
            raise fail(where, "field 'prompt_training' must be true or false")
    if "retention_days" in raw:
        out["retention_days"] = f.count(raw, "retention_days", where, minimum=0)
    if "moderation" in raw:
        out["moderation"] = f.choice(raw, "moderation", where, MODERATION)
        if out["moderation"] is None:
            raise fail(where, f"field 'moderation' must be one of {', '.join(sorted(MODERATION))}")
    return out


def _description(raw: Mapping[str, Any], where: str) -> str:
    value = raw.get("description")
    if value is None:
        return ""
    if not isinstance(value, str):
        raise fail(where, f"field 'description' must be text, got {type(value).__name__}")
    return value.strip()
