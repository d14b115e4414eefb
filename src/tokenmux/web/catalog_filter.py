"""Search, filters and sorting of the models page, read from GET query parameters.

The page works without JavaScript: the form submits these parameters and the server renders the matching
rows. ``static/tokenmux.js`` applies the same rules in the browser for instant filtering, reading the
``data-*`` attributes the template writes from ``row_data``; the two must agree, and the browser tests
check that they do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

SORTS = {"name": "Name", "price": "Lowest price", "context": "Largest context", "throughput": "Fastest"}
CONTEXT_CHOICES = (
    (16_000, "16K"),
    (32_000, "32K"),
    (64_000, "64K"),
    (128_000, "128K"),
    (200_000, "200K"),
    (1_000_000, "1M"),
)
PRICE_CHOICES = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)  # USD per million input tokens
_MAX_TEXT = 200


def _number(text: str, kind: type[float] | type[int]) -> float | None:
    try:
        value = kind(text)
    except ValueError:
        return None
    return value if value >= 0 else None


@dataclass(frozen=True, slots=True)
class ModelQuery:
    q: str = ""
    provider: str = ""
    modality: str = ""
    min_context: int | None = None
    max_price: float | None = None
    param: str = ""
    sort: str = "name"

    @classmethod
    def from_query_string(cls, raw: bytes | str) -> ModelQuery:
        """Lenient by design: a value that does not parse is ignored rather than answered with an error."""
        text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
        values = {k: v[0].strip()[:_MAX_TEXT] for k, v in parse_qs(text).items() if v}
        min_context = _number(values.get("min_context", ""), int)
        sort = values.get("sort", "name")
        return cls(
            q=values.get("q", ""),
            provider=values.get("provider", ""),
            modality=values.get("modality", ""),
            min_context=None if min_context is None else int(min_context),
            max_price=_number(values.get("max_price", ""), float),
            param=values.get("param", ""),
            sort=sort if sort in SORTS else "name",
        )

    @property
    def active(self) -> bool:
        return self != ModelQuery(sort=self.sort)

    def matches(self, entry: Mapping[str, Any]) -> bool:
        if self.q:
            haystack = search_text(entry)
            if not all(term in haystack for term in self.q.lower().split()):
                return False
        if self.provider and self.provider not in entry["providers"]:
            return False
        if self.modality and self.modality not in entry["architecture"]["input_modalities"]:
            return False
        if self.min_context is not None and entry["context_length"] < self.min_context:
            return False
        if self.max_price is not None and input_price(entry) > self.max_price:
            return False
        return not (self.param and self.param not in entry["supported_parameters"])

    def select(self, entries: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        chosen = [e for e in entries if self.matches(e)]
        chosen.sort(key=lambda e: str(e["name"]).casefold())
        if self.sort == "price":
            chosen.sort(key=lambda e: (input_price(e), output_price(e)))
        elif self.sort == "context":
            chosen.sort(key=lambda e: -e["context_length"])
        elif self.sort == "throughput":
            # Unmeasured models last; Python's sort is stable, so each group keeps the name order.
            chosen.sort(key=lambda e: -measured_throughput(e))
        return chosen


def search_text(entry: Mapping[str, Any]) -> str:
    """What the search box looks in: id, name, author and provider slugs, lower-cased."""
    return " ".join([entry["id"], entry["name"], entry.get("owned_by") or "", *entry["providers"]]).lower()


def measured_throughput(entry: Mapping[str, Any]) -> float:
    """Best measured tokens/s, or -1 for a model nobody has called yet (so it sorts last)."""
    value = entry.get("throughput")
    return -1.0 if value is None else float(value)


def input_price(entry: Mapping[str, Any]) -> float:
    return float(entry["pricing"]["pricing_per_million"]["input"])


def output_price(entry: Mapping[str, Any]) -> float:
    return float(entry["pricing"]["pricing_per_million"]["output"])


@dataclass(frozen=True, slots=True)
class FilterChoices:
    """The options the filter form offers, gathered from the catalog once."""

    providers: tuple[tuple[str, str], ...]  # (slug, display name)
    modalities: tuple[str, ...]
    parameters: tuple[str, ...]


def filter_choices(entries: Iterable[Mapping[str, Any]], provider_names: Mapping[str, str]) -> FilterChoices:
    providers: set[str] = set()
    modalities: set[str] = set()
    parameters: set[str] = set()
    for entry in entries:
        providers.update(entry["providers"])
        modalities.update(entry["architecture"]["input_modalities"])
        parameters.update(entry["supported_parameters"])
    named = sorted(((slug, provider_names.get(slug, slug)) for slug in providers), key=lambda p: p[1].lower())
    return FilterChoices(tuple(named), tuple(sorted(modalities)), tuple(sorted(parameters)))
