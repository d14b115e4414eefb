"""``tokenmux catalog import``: refresh catalog data from public price tables (see ``catalog/importer``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> None:
    catalog = sub.add_parser("catalog", help="refresh the catalog's data from public price tables")
    catalog_sub = catalog.add_subparsers(dest="catalog_command", required=True)
    imp = catalog_sub.add_parser(
        "import",
        help="merge LiteLLM's price table or OpenRouter's /api/v1/models JSON into catalog data",
        description=(
            "Read each FILE (LiteLLM's model_prices_and_context_window.json, or the JSON of OpenRouter's "
            "GET /api/v1/models), lay its prices, limits and models over the catalog data, and write the "
            "result in the catalog's YAML format for review. Nothing is removed; names, descriptions, "
            "data policies and endpoints with a 'source' are kept."
        ),
    )
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE")
    imp.add_argument("--out", type=Path, required=True, help="directory to write the merged catalog data to")
    imp.add_argument(
        "--data",
        type=Path,
        help="catalog data to merge into (a directory with providers.yaml and models-*.yaml; "
        "default: the shipped catalog)",
    )
    imp.add_argument("--as-of", help="the date the prices were taken (default: today, UTC)")
    imp.add_argument("--source", help="where the prices come from, as the catalog states it")
    imp.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from tokenmux.catalog.importer import import_catalog

    report = import_catalog(
        args.files, out=args.out, data_dir=args.data, as_of=args.as_of, source=args.source
    )
    for line in report.lines():
        print(line, file=sys.stderr)
    print(f"catalog data written to {args.out}", file=sys.stderr)
    return 0
