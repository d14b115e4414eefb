"""Close matches among the names models answer to, for "did you mean": each name's character trigrams.

This runs on every request for an unknown model: a full comparison (difflib) costs tens of microseconds a
name, so an unknown name is compared in full only with the names that share most of its trigrams, found by
one set intersection (in C) per name. It knows names only (name -> model ids), not models, so the catalog
can hold one without a circle of imports.
"""

from __future__ import annotations

import difflib
import heapq
from collections.abc import Mapping

CUTOFF = 0.6  # difflib ratio below which a name is not offered as "did you mean"
_LONGEST_NAME = 200
_SHORTLIST = 24  # names compared in full with an unknown name, after the trigram preselection


class NameGrams:
    """Each name's character trigrams, for ``close``."""

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
                if matcher.real_quick_ratio() >= CUTOFF and matcher.quick_ratio() >= CUTOFF:
                    score = max(score, matcher.ratio())
            if score >= CUTOFF:
                for model_id in ids:
                    if score > best.get(model_id, 0.0):
                        best[model_id] = score
        scored = sorted(best.items(), key=lambda item: (-item[1], item[0]))
        return [model_id for model_id, _ in scored[:n]]


def _trigrams(text: str) -> frozenset[str]:
    padded = f" {text} "
    return frozenset(padded[i : i + 3] for i in range(len(padded) - 2))
