"""Typed readers for the catalog's YAML values, failing with the file and field that are wrong.

Catalog data comes from two places a person edits by hand (the shipped files and the ``catalog:`` section
of the user's configuration), so every error names where it is (``where``), which field, what was found,
and, for a misspelt field, the nearest known name.
"""

from __future__ import annotations

import datetime
import difflib
from collections.abc import Collection, Mapping
from typing import Any

from tokenmux.errors import CatalogError


def fail(where: str, message: str) -> CatalogError:
    return CatalogError(f"{where}: {message}")


def check_keys(raw: Mapping[str, Any], allowed: Collection[str], where: str) -> None:
    for key in raw:
        if key in allowed:
            continue
        near = difflib.get_close_matches(str(key), list(allowed), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise fail(where, f"unknown field {key!r}{hint}; known fields: {', '.join(sorted(allowed))}")


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise fail(where, f"expected a mapping of fields, got {_shown(value)}")
    return value


def sequence(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise fail(where, f"expected a list, got {_shown(value)}")
    return value


def text(raw: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            raise fail(where, f"field {key!r} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise fail(where, f"field {key!r} must be a non-empty string, got {_shown(value)}")
    return value


def iso_date(raw: Mapping[str, Any], key: str, where: str) -> str | None:
    """A date written as 2025-04-14 (YAML reads it as a date) or as a quoted string."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return datetime.date.fromisoformat(value).isoformat()
        except ValueError:
            pass
    raise fail(where, f"field {key!r} must be a date such as 2025-04-14, got {_shown(value)}")


def count(raw: Mapping[str, Any], key: str, where: str, *, minimum: int = 1) -> int | None:
    """A whole number of tokens (or days) of at least ``minimum``."""
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise fail(where, f"field {key!r} must be a whole number >= {minimum}, got {_shown(value)}")
    return value


def price(raw: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> float | None:
    """USD per million tokens (or per request): a number >= 0."""
    value = raw.get(key)
    if value is None:
        if required:
            raise fail(where, f"field {key!r} is required (USD per million tokens)")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise fail(where, f"field {key!r} must be a number >= 0 (USD per million), got {_shown(value)}")
    return float(value)


def flag(raw: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise fail(where, f"field {key!r} must be true or false, got {_shown(value)}")
    return value


def names(
    raw: Mapping[str, Any], key: str, where: str, *, allowed: Collection[str] | None = None
) -> tuple[str, ...] | None:
    """A list of short names, each from ``allowed`` when given; duplicates are dropped, order kept."""
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise fail(where, f"field {key!r} must be a list of names, got {_shown(value)}")
    out: dict[str, None] = {}
    for item in value:
        if not isinstance(item, str) or not item:
            raise fail(where, f"field {key!r} must hold names, got {_shown(item)}")
        if allowed is not None and item not in allowed:
            raise fail(where, f"field {key!r}: {item!r} is not one of {', '.join(sorted(allowed))}")
        out[item] = None
    return tuple(out)


def choice(raw: Mapping[str, Any], key: str, where: str, allowed: Collection[str]) -> str | None:
    value = text(raw, key, where)
    if value is not None and value not in allowed:
        raise fail(where, f"field {key!r} must be one of {', '.join(sorted(allowed))}, got {value!r}")
    return value


def _shown(value: Any) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({type(value).__name__})"
