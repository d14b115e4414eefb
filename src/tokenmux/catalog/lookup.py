"""Finding a model by the name a client wrote: exactly, loosely, or by its nearest neighbours."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from tokenmux.catalog.model import Catalog, Model

_CUTOFF = 0.6  # difflib ratio below which a name is not offered as "did you mean"
_LONGEST_NAME = 200


def build_aliases(models: Mapping[str, Model]) -> dict[str, str]:
    """Lower-cased ids, and bare slugs that only one model has, mapped to the model id."""
    aliases: dict[str, str] = {}
    owners: dict[str, list[str]] = {}
    for model_id in models:
        aliases[model_id.lower()] = model_id
        owners.setdefault(model_id.split("/", 1)[1].lower(), []).append(model_id)
    for slug, ids in owners.items():
        if len(ids) == 1:
            aliases.setdefault(slug, ids[0])
    return aliases


def find_model(catalog: Catalog, name: str) -> Model | None:
    """The model ``name`` refers to: its exact id, the id in another case, or a bare slug that only one
    model has ("gpt-4.1-nano" is openai/gpt-4.1-nano). ``None`` when there is no such model."""
    model = catalog.models.get(name)
    if model is not None:
        return model
    aliases = catalog.aliases or build_aliases(catalog.models)
    model_id = aliases.get(name.strip().lower())
    return catalog.models.get(model_id) if model_id is not None else None


def close_matches(catalog: Catalog, name: str, n: int = 3) -> list[str]:
    """Up to ``n`` model ids that look like ``name``, best first, for "did you mean" messages.

    A name is compared with each whole id and, slug to slug, with the part after the author, so that
    "gpt4.1-nano" or "openai/gpt-4.1-nan" both find "openai/gpt-4.1-nano".
    """
    wanted = name.strip().lower()
    if not wanted or len(wanted) > _LONGEST_NAME:
        return []  # nothing is close to it, and comparing a huge string is wasted work on an error path
    wanted_slug = wanted.split("/", 1)[-1]
    matcher = difflib.SequenceMatcher(autojunk=False)
    scored: list[tuple[float, str]] = []
    for model_id in catalog.models:
        candidate = model_id.lower()
        score = 0.0
        for mine, theirs in ((wanted, candidate), (wanted_slug, candidate.split("/", 1)[1])):
            matcher.set_seqs(mine, theirs)
            if matcher.real_quick_ratio() >= _CUTOFF and matcher.quick_ratio() >= _CUTOFF:
                score = max(score, matcher.ratio())
        if score >= _CUTOFF:
            scored.append((score, model_id))
    scored.sort(key=lambda item: (-item[0], item[1]))
    return [model_id for _, model_id in scored[:n]]
