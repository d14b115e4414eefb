"""``tokenmux catalog import``: public price tables into catalog data a person can review and merge.

Reads LiteLLM's price table (``litellm.py``) and OpenRouter's model list (``openrouter.py``), lays what
they state over catalog data (``merge.py``: refresh, add, never remove, keep what was written by hand)
and writes the result in the format of ``catalog/data`` (``files.py``). The shipped catalog is made this
way, so a refresh is one command::

    tokenmux catalog import model_prices_and_context_window.json \\
        --data src/tokenmux/catalog/data --out src/tokenmux/catalog/data --as-of 2026-12-07
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec

from tokenmux.catalog.fields import CatalogError
from tokenmux.catalog.importer.files import CatalogData, read_data, shipped_data, write_data
from tokenmux.catalog.importer.litellm import is_litellm_table, read_litellm
from tokenmux.catalog.importer.merge import Report, merge
from tokenmux.catalog.importer.offer import Offer
from tokenmux.catalog.importer.openrouter import PROVIDER as OPENROUTER
from tokenmux.catalog.importer.openrouter import is_openrouter_list, read_openrouter
from tokenmux.catalog.loader import load_catalog_data

__all__ = ["Report", "import_catalog", "read_offers"]


def read_offers(paths: Sequence[Path], data: CatalogData, as_of: str) -> tuple[list[Offer], list[str]]:
    """The offers in each file, and a description of each file's kind (for ``prices_source``)."""
    offers: list[Offer] = []
    kinds: list[str] = []
    for path in paths:
        doc = _read_json(path)
        if is_openrouter_list(doc):
            if OPENROUTER not in data.providers:
                raise CatalogError(
                    f"{path}: OpenRouter's models need an 'openrouter' provider in providers.yaml"
                )
            offers.extend(read_openrouter(doc))
            kinds.append("OpenRouter's model list")
        elif is_litellm_table(doc):
            offers.extend(read_litellm(doc, as_of, data.providers))
            kinds.append("LiteLLM's model price table")
        else:
            raise CatalogError(
                f"{path}: neither LiteLLM's price table (an object of models with 'litellm_provider') "
                'nor OpenRouter\'s model list ({"data": [{"id": ...}, ...]})'
            )
    return offers, kinds


def import_catalog(
    paths: Sequence[Path],
    *,
    out: Path,
    data_dir: Path | None = None,
    as_of: str | None = None,
    source: str | None = None,
) -> Report:
    """Merge the price tables at ``paths`` into the catalog data in ``data_dir`` (default: the shipped
    data) and write the result into ``out``."""
    as_of = as_of or dt.datetime.now(dt.UTC).date().isoformat()
    try:
        dt.date.fromisoformat(as_of)
    except ValueError:
        raise CatalogError(f"--as-of must be a date such as 2026-12-07, got {as_of!r}") from None
    data = read_data(data_dir if data_dir is not None else shipped_data())
    offers, kinds = read_offers(paths, data, as_of)
    report = merge(
        data, offers, as_of, source or f"public provider prices, as compiled in {' and '.join(kinds)}"
    )
    write_data(data, out)
    # What was written must load as a catalog: an error here names the file and the field to look at.
    load_catalog_data(out)
    return report


def _read_json(path: Path) -> Any:
    try:
        return msgspec.json.decode(path.read_bytes())
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror}") from None
    except msgspec.DecodeError as exc:
        raise CatalogError(f"{path} is not JSON: {exc}") from None
