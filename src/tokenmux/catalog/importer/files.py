"""Catalog data as files: read a data directory (or the shipped one), write it back in the same format.

The writer lays every model out the same way (fields in a fixed order, prices and data policies on one
line, descriptions folded at 100 columns) so that a refresh changes only the lines whose facts changed
and a reviewer's diff shows just those. A file's leading comment is kept as written; comments between
entries are not (say what matters in a field: an endpoint's ``source``, a model's ``description``).
Every written file is read back and compared with what was meant before it is returned.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

PROVIDERS_FILE = "providers.yaml"
_PREFIX, _SUFFIX = "models-", ".yaml"
_WIDTH = 100
_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MODEL_ORDER = (
    "id",
    "name",
    "description",
    "created",
    "input_modalities",
    "output_modalities",
    "tokenizer",
    "context_length",
    "max_output",
    "dimensions",
    "supported_parameters",
    "extra_parameters",
    "unsupported_parameters",
    "protocols",
    "endpoints",
)
ENDPOINT_ORDER = (
    "provider",
    "upstream_model",
    "snapshots",
    "source",
    "context_length",
    "max_output",
    "quantization",
    "supported_parameters",
    "extra_parameters",
    "unsupported_parameters",
    "protocols",
    "price",
    "data_policy",
    "status_page_url",
)
_PRICE_ORDER = (
    "above_tokens",
    "input",
    "output",
    "cache_read",
    "cache_write_5m",
    "cache_write_1h",
    "web_search",
)


@dataclass(slots=True)
class ModelFile:
    name: str  # "models-openai.yaml"
    header: str  # the leading comment, as written ("" for none)
    prices_as_of: str
    prices_source: str
    models: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class CatalogData:
    providers_text: str  # providers.yaml as written (the importer does not change it)
    providers: dict[str, Any]
    files: dict[str, ModelFile]


def shipped_data() -> Traversable:
    return resources.files("tokenmux.catalog").joinpath("data")


def read_data(where: Traversable | Path) -> CatalogData:
    """The catalog data in a directory: ``providers.yaml`` and every ``models-*.yaml``."""
    providers_text = where.joinpath(PROVIDERS_FILE).read_text(encoding="utf-8")
    providers = (yaml.load(providers_text, Loader=_Loader) or {}).get("providers") or {}
    files: dict[str, ModelFile] = {}
    for path in sorted(where.iterdir(), key=lambda p: p.name):
        if not (path.name.startswith(_PREFIX) and path.name.endswith(_SUFFIX)):
            continue
        text = path.read_text(encoding="utf-8")
        doc = yaml.load(text, Loader=_Loader) or {}
        files[path.name] = ModelFile(
            name=path.name,
            header=_leading_comment(text),
            prices_as_of=_iso(doc.get("prices_as_of")),
            prices_source=str(doc.get("prices_source") or ""),
            models=[dict(m) for m in doc.get("models") or []],
        )
    return CatalogData(providers_text, providers, files)


def write_data(data: CatalogData, out: Path) -> list[Path]:
    """Every file of ``data`` into the directory ``out`` (created if need be); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [out / PROVIDERS_FILE]
    written[0].write_text(data.providers_text, encoding="utf-8")
    for name in sorted(data.files):
        path = out / name
        path.write_text(dump_model_file(data.files[name]), encoding="utf-8")
        written.append(path)
    return written


def file_for(author: str) -> str:
    return f"{_PREFIX}{author}{_SUFFIX}"


def dump_model_file(model_file: ModelFile) -> str:
    lines: list[str] = []
    if model_file.header:
        lines.extend(model_file.header.rstrip("\n").split("\n"))
    lines.append(f"prices_as_of: {model_file.prices_as_of}")
    lines.append(f"prices_source: {_scalar(model_file.prices_source)}")
    lines.append("")
    lines.append("models:")
    for i, model in enumerate(model_file.models):
        if i:
            lines.append("")
        lines.extend(_mapping_block(model, MODEL_ORDER, "  ", first="- "))
    text = "\n".join(lines) + "\n"
    _check_round_trip(text, model_file)
    return text


def _mapping_block(raw: dict[str, Any], order: tuple[str, ...], indent: str, first: str = "") -> list[str]:
    """``raw`` as block-style lines at ``indent``; ``first`` ("- ") opens a list item."""
    lines: list[str] = []
    keys = [k for k in order if k in raw] + [k for k in raw if k not in order]
    for n, key in enumerate(keys):
        lead = indent + (first if n == 0 else " " * len(first))
        inner = indent + " " * len(first)
        value = raw[key]
        if key == "endpoints" and isinstance(value, list):
            lines.append(f"{lead}endpoints:")
            for endpoint in value:
                lines.extend(_mapping_block(endpoint, ENDPOINT_ORDER, inner + "  ", first="- "))
        elif key == "price" and isinstance(value, dict) and value.get("tiers"):
            lines.append(f"{lead}price:")
            for name in [k for k in _PRICE_ORDER if k in value] + [k for k in value if k not in _PRICE_ORDER]:
                if name == "tiers":
                    continue
                lines.append(f"{inner}  {name}: {_number(value[name], name)}")
            lines.append(f"{inner}  tiers:")
            for tier in value["tiers"]:
                lines.append(f"{inner}    - {_flow_mapping(tier, price=True)}")
        elif key == "description" and isinstance(value, str):
            lines.extend(_text_lines(lead, value, inner + "  "))
        elif isinstance(value, dict):
            lines.append(f"{lead}{key}: {_flow_mapping(value, price=key == 'price')}")
        elif isinstance(value, list):
            lines.extend(_flow_list_lines(f"{lead}{key}: ", value, inner + "  "))
        else:
            lines.append(f"{lead}{key}: {_value(value, key)}")
    return lines


def _text_lines(lead: str, text: str, indent: str) -> list[str]:
    """A description: folded over several lines when long and foldable, else one scalar."""
    one = f"{lead}description: {_scalar(text)}"
    foldable = text == text.strip() and "\n" not in text and "  " not in text and text.isprintable()
    if len(one) <= _WIDTH or not foldable:
        return [one]
    wrapped = textwrap.wrap(text, _WIDTH - len(indent), break_long_words=False, break_on_hyphens=False)
    return [f"{lead}description: >-", *(indent + line for line in wrapped)]


def _flow_list_lines(head: str, items: list[Any], indent: str) -> list[str]:
    cells = [_scalar(item) if isinstance(item, str) else _value(item, "") for item in items]
    lines = [head + "["]
    for n, cell in enumerate(cells):
        piece = cell + (", " if n < len(cells) - 1 else "")
        if len(lines[-1]) + len(piece.rstrip()) > _WIDTH and not lines[-1].endswith("["):
            lines[-1] = lines[-1].rstrip()
            lines.append(indent + " " + piece)
        else:
            lines[-1] += piece
    lines[-1] = lines[-1].rstrip() + "]"
    return lines


def _flow_mapping(raw: dict[str, Any], *, price: bool = False) -> str:
    keys = [k for k in _PRICE_ORDER if k in raw] + [k for k in raw if k not in _PRICE_ORDER]
    cells = []
    for key in keys:
        value = raw[key]
        shown = _number(value, key) if price else _value(value, key)
        cells.append(f"{key}: {shown}")
    return "{" + ", ".join(cells) + "}"


def _value(value: Any, key: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return _count(value)
    if isinstance(value, float):
        return _decimal(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        if key in ("created",) and _is_date(value):
            return value
        return _scalar(value)
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, "") for v in value) + "]"
    if isinstance(value, dict):
        return _flow_mapping(value)
    raise TypeError(f"cannot write {type(value).__name__} in catalog data")


def _number(value: Any, key: str) -> str:
    """A price as price pages write it (2.50, 0.025), a token count with thousands marked (200_000)."""
    if key == "above_tokens" or isinstance(value, bool) or not isinstance(value, int | float):
        return _value(value, key)
    text = _decimal(float(value))
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}"


def _count(n: int) -> str:
    return f"{n:_}" if abs(n) >= 10_000 else str(n)


def _decimal(value: float) -> str:
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _scalar(text: str) -> str:
    """A string as YAML reads it back unchanged, in flow and block context alike."""
    dumped: str = yaml.safe_dump([text], default_flow_style=True, width=10**9, allow_unicode=True)
    return dumped.strip()[1:-1]


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _iso(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.date) else str(value or "")


def _leading_comment(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def _check_round_trip(text: str, model_file: ModelFile) -> None:
    doc = yaml.load(text, Loader=_Loader)
    meant = {
        "prices_as_of": model_file.prices_as_of,
        "prices_source": model_file.prices_source,
        "models": model_file.models,
    }
    got = {**doc, "prices_as_of": _iso(doc.get("prices_as_of"))}
    if _plain(got) != _plain(meant):
        raise AssertionError(f"{model_file.name}: the YAML written does not read back as the data meant")


def _plain(value: Any) -> Any:
    """Values as YAML gives them back: dates as ISO text, numbers compared by value."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value
