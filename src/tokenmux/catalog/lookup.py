"""Finding a model by the name a client wrote: its id, an alias, a provider's own name, or close matches.

A model answers to, in this order of precedence:

1. its catalog id, in any case ("openai/gpt-4.1-nano", "OpenAI/GPT-4.1-Nano");
2. an alias from the configuration (``aliases: {sonnet: anthropic/claude-sonnet-4.6}``);
3. the names its providers give it: each endpoint's ``upstream_model`` and ``snapshots``
   ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929", "gpt-4o-2024-08-06"), and its bare slug
   ("claude-sonnet-4.5").

Gemini's ``models/`` prefix ("models/gemini-2.5-flash") is ignored when the name with it is not known.
A name of the third kind that two models share is ambiguous: ``find_models`` returns both, and callers
refuse it naming them. Every name is lower-cased into one dict when the catalog is built, so resolving is a
dict lookup, never a scan of the catalog.
"""

from __future__ import annotations

from collections.abc import Mapping

from tokenmux.catalog.fields import CatalogError
from tokenmux.catalog.model import Catalog, Model
from tokenmux.catalog.name_grams import NameGrams

_GEMINI_PREFIX = "models/"
_ALIASES = "config aliases"


def build_names(
    models: Mapping[str, Model], aliases: Mapping[str, str] | None = None
) -> dict[str, tuple[str, ...]]:
    """Every name a model answers to, lower-cased, mapped to the ids it may mean (one, or several when
    the name is ambiguous). ``aliases`` (name -> model id) must already be checked (``check_aliases``)."""
    names: dict[str, tuple[str, ...]] = {model_id.lower(): (model_id,) for model_id in models}
    for alias, model_id in (aliases or {}).items():
        names[_key(alias)] = (model_id,)
    claimed = set(names)  # ids and aliases are never shared with a provider's name
    owners: dict[str, dict[str, None]] = {}
    for model_id, model in models.items():
        for name in _native_names(model):
            if name not in claimed:
                owners.setdefault(name, {})[model_id] = None
    for name, ids in owners.items():
        names[name] = tuple(sorted(ids))
    return names


def _native_names(model: Model) -> list[str]:
    found = [model.slug.lower()]
    for endpoint in model.endpoints:
        found.append(endpoint.upstream_model.lower())
        found.extend(s.lower() for s in endpoint.snapshots)
    return found


def check_aliases(models: Mapping[str, Model], raw: object) -> dict[str, str]:
    """The ``aliases:`` section of the configuration as name -> model id. A target may be written as any
    name that finds exactly one model; an alias may not redefine a catalog id."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise CatalogError(
            f"{_ALIASES}: expected a mapping of name to model, such as {{sonnet: anthropic/claude-sonnet-4.5}}"
        )
    plain = build_names(models)
    ids_lower = {model_id.lower() for model_id in models}
    out: dict[str, str] = {}
    for alias, target in raw.items():
        where = f"{_ALIASES}: {alias!r}"
        if not isinstance(alias, str) or not alias.strip() or not isinstance(target, str):
            raise CatalogError(f"{where}: an alias maps a name to a model id, both text")
        if _key(alias) in ids_lower:
            raise CatalogError(f"{where}: {alias!r} is a catalog model id; an alias cannot redefine it")
        ids = _lookup(plain, target)
        if len(ids) != 1:
            if ids:
                raise CatalogError(f"{where}: {target!r} is ambiguous, it may mean {', '.join(ids)}")
            near = NameGrams(plain).close(target, 3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise CatalogError(f"{where}: {target!r} is not a model in the catalog{hint}")
        out[alias.strip()] = ids[0]
    return out


def _key(name: str) -> str:
    return name.strip().lower()


def _lookup(names: Mapping[str, tuple[str, ...]], name: str) -> tuple[str, ...]:
    key = _key(name)
    ids = names.get(key)
    if ids is None and key.startswith(_GEMINI_PREFIX):
        ids = names.get(key[len(_GEMINI_PREFIX) :])
    return ids or ()


def find_models(catalog: Catalog, name: str) -> tuple[Model, ...]:
    """Every model ``name`` may mean: none when unknown, one when found, several when ambiguous."""
    model = catalog.models.get(name)
    if model is not None:
        return (model,)
    models = catalog.models
    names = catalog.names
    if not names and models:
        # A catalog made by hand (tests) rather than loaded: its names are worked out on first use.
        names = catalog.names = build_names(models)
    return tuple(models[model_id] for model_id in _lookup(names, name) if model_id in models)


def find_model(catalog: Catalog, name: str) -> Model | None:
    """The one model ``name`` refers to (see the module docstring), or ``None`` when it names no model or
    several."""
    found = find_models(catalog, name)
    return found[0] if len(found) == 1 else None


def close_matches(catalog: Catalog, name: str, n: int = 3) -> list[str]:
    """Up to ``n`` model ids that look like ``name``, best first, for "did you mean" messages.

    A name is compared with every name a model answers to (ids, slugs, providers' names, so that a
    mistyped snapshot "claude-sonnet-4-5-2025092" finds its model too), whole and, slug to slug, with the
    part after the author, so that "gpt4.1-nano" or "openai/gpt-4.1-nan" both find "openai/gpt-4.1-nano".
    """
    if not catalog.names and catalog.models:
        catalog.names = build_names(catalog.models)
    grams = catalog.name_grams
    if grams is None or grams.names is not catalog.names:
        grams = catalog.name_grams = NameGrams(catalog.names)
    return grams.close(name, n)
