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

import difflib
import heapq
from collections.abc import Mapping
from typing import TYPE_CHECKING

from tokenmux.catalog.fields import CatalogError

if TYPE_CHECKING:
    from tokenmux.catalog.model import Catalog, Model

_CUTOFF = 0.6  # difflib ratio below which a name is not offered as "did you mean"
_LONGEST_NAME = 200
_SHORTLIST = 24  # names compared in full with an unknown name, after the trigram preselection
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
    return tuple(models[model_id] for model_id in _lookup(catalog.names, name) if model_id in models)


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
    grams = catalog.name_grams
    if grams is None or grams.names is not catalog.names:
        grams = catalog.name_grams = NameGrams(catalog.names)
    return grams.close(name, n)


class NameGrams:
    """Each name's character trigrams. This runs on every request for an unknown model: a full comparison
    (difflib) costs tens of microseconds a name, so an unknown name is compared in full only with the
    names that share most of its trigrams, found by one set intersection (in C) per name."""

    def __init__(self, names: Mapping[str, tuple[str, ...]]) -> None:
        self.names = names
        self._entries = [
            (name, ids, _trigrams(name), _trigrams(name.rsplit("/", 1)[-1])) for name, ids in names.items()
        ]

    def close(self, name: str, n: int) -> list[str]:
        wanted = name.strip().lower()
        if not wanted or len(wanted) > _LONGEST_NAME:
            return []  # nothing is close to it, and comparing a huge string is wasted work on an error path
        wanted_slug = wanted.split("/", 1)[-1]
        whole_grams, slug_grams = _trigrams(wanted), _trigrams(wanted_slug)
        shortlist = heapq.nlargest(
            _SHORTLIST,
            self._entries,
            key=lambda e: max(len(whole_grams & e[2]), len(slug_grams & e[3])),
        )
        # The name asked for is the matchers' second sequence, which difflib indexes once.
        whole = difflib.SequenceMatcher(None, "", wanted, autojunk=False)
        slug = difflib.SequenceMatcher(None, "", wanted_slug, autojunk=False)
        best: dict[str, float] = {}
        for candidate, ids, _, _ in shortlist:
            score = 0.0
            for matcher, theirs in ((whole, candidate), (slug, candidate.rsplit("/", 1)[-1])):
                matcher.set_seq1(theirs)
                if matcher.real_quick_ratio() >= _CUTOFF and matcher.quick_ratio() >= _CUTOFF:
                    score = max(score, matcher.ratio())
            if score >= _CUTOFF:
                for model_id in ids:
                    if score > best.get(model_id, 0.0):
                        best[model_id] = score
        scored = sorted(best.items(), key=lambda item: (-item[1], item[0]))
        return [model_id for model_id, _ in scored[:n]]


def _trigrams(text: str) -> frozenset[str]:
    padded = f" {text} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))
