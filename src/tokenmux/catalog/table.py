"""The catalog as a plain-text table, for ``tokenmux models``."""

from __future__ import annotations

from collections.abc import Sequence

from tokenmux.catalog.model import Catalog, Endpoint

_HEADERS = ("ID", "CONTEXT", "MAX OUTPUT", "INPUT $/M", "OUTPUT $/M", "PROVIDERS")
_RIGHT_ALIGNED = (False, True, True, True, True, False)
_GAP = "  "


def format_models_table(
    catalog: Catalog, *, provider: str | None = None, max_width: int | None = None
) -> str:
    """One row per model, sorted by id: context, max output, input and output price (a range when its
    providers differ), providers. With ``provider``, only that provider's models, with its figures.
    With ``max_width``, the last column is cut to fit (for a terminal of that many columns)."""
    rows: list[tuple[str, ...]] = []
    for model_id in sorted(catalog.models):
        model = catalog.models[model_id]
        endpoints: Sequence[Endpoint] = model.endpoints
        if provider is not None:
            endpoints = [e for e in endpoints if e.provider == provider]
            if not endpoints:
                continue
            context, max_output = endpoints[0].context_length, endpoints[0].max_output
        else:
            context, max_output = model.context_length, model.max_output
        rows.append(
            (
                model_id,
                format_tokens(context),
                format_tokens(max_output),
                _price_range([e.price.input for e in endpoints]),
                _price_range([e.price.output for e in endpoints]),
                ", ".join(e.provider for e in endpoints),
            )
        )
    lines = _aligned([_HEADERS, *rows], max_width)
    where = f" at {provider}" if provider is not None else ""
    noun = "model" if len(rows) == 1 else "models"
    lines.append("")
    lines.append(f"{len(rows)} {noun}{where}. Prices in USD per million tokens as of {catalog.prices_as_of}.")
    if catalog.prices_source:
        lines.append(f"Source: {catalog.prices_source}.")
    return "\n".join(lines) + "\n"


def format_tokens(n: int) -> str:
    """A token count the way model pages show it: 1047576 -> "1.05M", 32768 -> "32.77K", 128000 -> "128K"."""
    if n >= 999_995:
        return _trimmed(n / 1_000_000, 2) + "M"
    if n >= 1_000:
        return _trimmed(n / 1_000, 2) + "K"
    return str(n)


def format_price(usd_per_million: float) -> str:
    """Cents always shown, further decimals only when the price has them: 0.1 -> "0.10", 0.025 -> "0.025"."""
    if round(usd_per_million, 2) == usd_per_million:
        return f"{usd_per_million:.2f}"
    return _trimmed(usd_per_million, 6)


def _price_range(prices: list[float]) -> str:
    low, high = min(prices), max(prices)
    return format_price(low) if low == high else f"{format_price(low)}-{format_price(high)}"


def _trimmed(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def _aligned(rows: list[tuple[str, ...]], max_width: int | None) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADERS))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(row, widths, _RIGHT_ALIGNED, strict=True)
        ]
        line = _GAP.join(cells).rstrip()
        if max_width is not None and len(line) > max_width:
            line = line[: max(max_width - 1, 0)] + "…"
        lines.append(line)
    return lines
