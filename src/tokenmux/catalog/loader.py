"""Load the catalog: the YAML files shipped in ``catalog/data``, merged with the user's overrides.

Shipped files (read with importlib.resources, so they work from a wheel):

    providers.yaml    providers: {slug: {name, kind, base_url, status_page_url, api_key_env, defaults}}
    models-*.yaml     prices_as_of, prices_source, models: [{id, name, ..., endpoints: [...]}]

Top-level keys that begin with ``x-`` are ignored: they hold YAML anchors shared within one file. How an
endpoint inherits from its model and provider is described in ``build.py``.

Overrides are the ``catalog:`` section of the user's configuration::

    catalog:
      providers:                       # new providers, or fields of known ones
        ollama: {name: Ollama, kind: openai-compatible, base_url: "http://127.0.0.1:11434/v1"}
      models:
        - id: openai/gpt-4.1-nano      # a known model: its fields and endpoints are merged
          endpoints:
            - provider: openai         # a known endpoint (matched by provider): fields merged
              price: {input: 0.08}
        - id: meta-llama/llama-3.1-8b-instruct
          endpoints:
            - {provider: ollama, upstream_model: "llama3.1:8b", price: {input: 0, output: 0}}

Mappings merge field by field (so ``price: {input: 0.08}`` keeps the other prices); lists replace.

Aliases are the ``aliases:`` section of the configuration, names a client may send for a model::

    aliases: {sonnet: anthropic/claude-sonnet-4.5, fast: gpt-4.1-nano}

Each target may be written as any name that finds exactly one model (see ``lookup``).
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from tokenmux.catalog import fields as f
from tokenmux.catalog.build import Provider, build_model, build_provider
from tokenmux.catalog.fields import fail
from tokenmux.catalog.lookup import build_names, check_aliases
from tokenmux.catalog.model import Catalog, Model
from tokenmux.errors import CatalogError

__all__ = ["CatalogError", "load_catalog", "load_catalog_data"]

_PROVIDERS_FILE = "providers.yaml"
_MODELS_GLOB = ("models-", ".yaml")
_OVERRIDES = "config catalog"
_MODEL_FILE_FIELDS = frozenset({"prices_as_of", "prices_source", "models"})
_PROVIDERS_FILE_FIELDS = frozenset({"providers"})
_OVERRIDE_FIELDS = frozenset({"providers", "models"})

# The C parser is several times faster; PyYAML built without libyaml falls back to the pure-Python one.
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True, slots=True)
class _Documents:
    """The shipped files, parsed but not built. Shared by every load: never mutate."""

    providers: Mapping[str, Any]
    models: tuple[tuple[str, Mapping[str, Any]], ...]  # (where it was written, raw model)
    prices_as_of: str
    prices_source: str


def load_catalog(
    overrides: Mapping[str, Any] | None = None,
    aliases: Mapping[str, Any] | None = None,
    *,
    kinds: Collection[str] | None = None,
) -> Catalog:
    """The shipped catalog, with the ``catalog:`` and ``aliases:`` sections of the user's configuration
    applied.

    ``kinds``, the provider kinds there are adapters for (``providers.registry.provider_kinds()``), is what
    each provider's ``kind`` must be one of; without it a kind is only checked to be a name. Raises
    ``CatalogError`` naming the file (or ``config catalog``, ``config aliases``) and the field when data is
    invalid. The result is a fresh ``Catalog`` each call; its models and endpoints are immutable and shared.
    """
    catalog = _load(overrides)
    if kinds is not None:
        _check_kinds(catalog, kinds)
    if aliases:
        catalog.names = build_names(catalog.models, check_aliases(catalog.models, aliases))
    return catalog


def _check_kinds(catalog: Catalog, kinds: Collection[str]) -> None:
    for slug, info in catalog.providers.items():
        if info.kind not in kinds:
            raise CatalogError(
                f"catalog provider {slug!r} has kind {info.kind!r}, which no adapter speaks; "
                f"the known kinds are: {', '.join(sorted(kinds))}"
            )


def _load(overrides: Mapping[str, Any] | None) -> Catalog:
    if not overrides:
        shipped = _shipped_catalog()
        catalog = Catalog(
            models=dict(shipped.models),
            providers=dict(shipped.providers),
            prices_as_of=shipped.prices_as_of,
            prices_source=shipped.prices_source,
            names=dict(shipped.names),
        )
    else:
        docs = _shipped_documents()
        overrides = f.mapping(overrides, _OVERRIDES)
        f.check_keys(overrides, _OVERRIDE_FIELDS, _OVERRIDES)
        providers_raw = _merge_providers(docs.providers, overrides.get("providers"))
        models_raw = _merge_models(docs.models, overrides.get("models"))
        catalog = _build(providers_raw, models_raw, docs.prices_as_of, docs.prices_source)
    return catalog


@functools.lru_cache(maxsize=1)
def _shipped_catalog() -> Catalog:
    docs = _shipped_documents()
    return _build(docs.providers, docs.models, docs.prices_as_of, docs.prices_source)


def load_catalog_data(where: Traversable) -> Catalog:
    """The catalog in a data directory other than the shipped one (``tokenmux catalog import`` output,
    before it is merged): the same files, the same checks."""
    docs = _read_documents(where)
    return _build(docs.providers, docs.models, docs.prices_as_of, docs.prices_source)


@functools.lru_cache(maxsize=1)
def _shipped_documents() -> _Documents:
    return _read_documents(resources.files("tokenmux.catalog").joinpath("data"))


def _read_documents(data: Traversable) -> _Documents:
    providers_doc = _read(data.joinpath(_PROVIDERS_FILE).read_text(encoding="utf-8"), _PROVIDERS_FILE)
    f.check_keys(providers_doc, _PROVIDERS_FILE_FIELDS, _PROVIDERS_FILE)
    providers = f.mapping(providers_doc.get("providers"), f"{_PROVIDERS_FILE}: providers")

    models: list[tuple[str, Mapping[str, Any]]] = []
    dates: list[str] = []
    sources: dict[str, None] = {}
    prefix, suffix = _MODELS_GLOB
    files = sorted(
        (p for p in data.iterdir() if p.name.startswith(prefix) and p.name.endswith(suffix)),
        key=lambda p: p.name,
    )
    if not files:
        raise CatalogError(f"no {prefix}*{suffix} files in the catalog data ({data})")
    for path in files:
        doc = _read(path.read_text(encoding="utf-8"), path.name)
        f.check_keys(doc, _MODEL_FILE_FIELDS, path.name)
        as_of = f.iso_date(doc, "prices_as_of", path.name)
        source = f.text(doc, "prices_source", path.name)
        if as_of is None or source is None:
            raise fail(path.name, "fields 'prices_as_of' (a date) and 'prices_source' are required")
        dates.append(as_of)
        sources[source] = None
        for i, raw in enumerate(f.sequence(doc.get("models"), f"{path.name}: models")):
            models.append((f"{path.name}: models[{i}]", f.mapping(raw, f"{path.name}: models[{i}]")))
    # The catalog is as fresh as its oldest file.
    return _Documents(providers, tuple(models), min(dates), "; ".join(sources))


def _read(content: str, name: str) -> Mapping[str, Any]:
    try:
        doc = yaml.load(content, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise CatalogError(f"{name}: not valid YAML: {exc}") from None
    doc = f.mapping(doc, name)
    return {k: v for k, v in doc.items() if not (isinstance(k, str) and k.startswith("x-"))}


def _build(
    providers_raw: Mapping[str, Any],
    models_raw: tuple[tuple[str, Mapping[str, Any]], ...],
    prices_as_of: str,
    prices_source: str,
) -> Catalog:
    providers: dict[str, Provider] = {
        slug: build_provider(slug, raw, _PROVIDERS_FILE) for slug, raw in providers_raw.items()
    }
    models: dict[str, Model] = {}
    for where, raw in models_raw:
        model = build_model(raw, where, providers)
        if model.id in models:
            raise fail(where, f"model {model.id!r} is defined twice")
        models[model.id] = model
    return Catalog(
        models=models,
        providers={slug: p.info for slug, p in providers.items()},
        prices_as_of=prices_as_of,
        prices_source=prices_source,
        names=build_names(models),
    )


# -- overrides -------------------------------------------------------------------------------------


def _merge_providers(shipped: Mapping[str, Any], overrides: Any) -> dict[str, Any]:
    merged = dict(shipped)
    if overrides is None:
        return merged
    for slug, raw in f.mapping(overrides, f"{_OVERRIDES}: providers").items():
        raw = f.mapping(raw, f"{_OVERRIDES}: providers: {slug}")
        known = merged.get(slug)
        merged[slug] = _merged(known, raw) if isinstance(known, Mapping) else raw
    return merged


def _merge_models(
    shipped: tuple[tuple[str, Mapping[str, Any]], ...], overrides: Any
) -> tuple[tuple[str, Mapping[str, Any]], ...]:
    if overrides is None:
        return shipped
    merged = list(shipped)
    index = {raw.get("id"): i for i, (_, raw) in enumerate(shipped)}
    for i, raw in enumerate(f.sequence(overrides, f"{_OVERRIDES}: models")):
        where = f"{_OVERRIDES}: models[{i}]"
        raw = f.mapping(raw, where)
        model_id = f.text(raw, "id", where, required=True)
        for j, endpoint in enumerate(f.sequence(raw.get("endpoints") or [], f"{where}: endpoints")):
            # Checked here because merging matches endpoints by provider.
            endpoint_where = f"{where}: endpoints[{j}]"
            f.text(f.mapping(endpoint, endpoint_where), "provider", endpoint_where, required=True)
        at = index.get(model_id)
        if at is None:
            index[model_id] = len(merged)
            merged.append((where, raw))
        else:
            shipped_where, shipped_raw = merged[at]
            merged[at] = (f"{shipped_where} with {where}", _merge_model(shipped_raw, raw))
    return tuple(merged)


def _merge_model(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = _merged(
        {k: v for k, v in base.items() if k != "endpoints"},
        {k: v for k, v in override.items() if k != "endpoints"},
    )
    endpoints = list(base.get("endpoints") or [])
    for endpoint in override.get("endpoints") or []:
        at = next((i for i, e in enumerate(endpoints) if e.get("provider") == endpoint["provider"]), None)
        if at is None:
            endpoints.append(endpoint)
        else:
            endpoints[at] = _merged(endpoints[at], endpoint)
    merged["endpoints"] = endpoints
    return merged


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base``: mappings merge key by key, anything else replaces. Copies what it
    changes and shares the rest, so the cached shipped documents are never modified."""
    out = dict(base)
    for key, value in override.items():
        current = out.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            out[key] = _merged(current, value)
        else:
            out[key] = value
    return out
