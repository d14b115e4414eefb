"""The plain-text table behind ``tokenmux models``."""

from __future__ import annotations

from tokenmux.catalog import load_catalog
from tokenmux.catalog.table import format_models_table, format_price, format_tokens


def _row(table: str, model_id: str) -> list[str]:
    (line,) = [line for line in table.splitlines() if line.startswith(model_id + " ")]
    return line.split(None, 5)


def test_table_lists_every_model_with_the_seed_figures_for_gpt_41_nano() -> None:
    catalog = load_catalog()
    table = format_models_table(catalog)
    assert _row(table, "openai/gpt-4.1-nano") == [
        "openai/gpt-4.1-nano",
        "1.05M",
        "32.77K",
        "0.10",
        "0.40",
        "openai, azure",
    ]
    for model_id in catalog.models:
        assert _row(table, model_id)[0] == model_id
    assert f"{len(catalog.models)} models." in table
    assert "as of 2026-12-07" in table and "LiteLLM" in table


def test_columns_line_up() -> None:
    lines = format_models_table(load_catalog()).splitlines()
    header, rows = lines[0], [line for line in lines[1:] if line.startswith(("openai/", "google/"))]
    context_end = header.index("CONTEXT") + len("CONTEXT")
    providers_start = header.index("PROVIDERS")
    for row in rows:
        assert row[context_end - 1] != " " and row[context_end] == " "  # right-aligned under CONTEXT
        assert row[providers_start - 1] == " " and row[providers_start] != " "


def test_price_ranges_when_providers_differ() -> None:
    row = _row(format_models_table(load_catalog()), "meta-llama/llama-3.3-70b-instruct")
    assert row[3:] == ["0.23-0.90", "0.40-0.90", "fireworks, deepinfra"]


def test_filter_by_provider_shows_that_providers_figures() -> None:
    table = format_models_table(load_catalog(), provider="groq")
    assert _row(table, "openai/gpt-oss-120b") == [
        "openai/gpt-oss-120b",
        "131.07K",
        "65.54K",
        "0.15",
        "0.60",
        "groq",
    ]
    assert "openai/gpt-4.1-nano" not in table
    assert "at groq." in table


def test_max_width_cuts_long_lines() -> None:
    table = format_models_table(load_catalog(), max_width=70)
    body = table.split("\n\n")[0].splitlines()
    assert all(len(line) <= 70 for line in body)
    assert any(line.endswith("…") for line in body)


def test_token_and_price_formats() -> None:
    assert format_tokens(1_047_576) == "1.05M"
    assert format_tokens(1_000_000) == "1M"
    assert format_tokens(32_768) == "32.77K"
    assert format_tokens(128_000) == "128K"
    assert format_tokens(200_000) == "200K"
    assert format_tokens(999_999) == "1M"
    assert format_tokens(999) == "999"
    assert format_price(0.1) == "0.10"
    assert format_price(0.025) == "0.025"
    assert format_price(0.0375) == "0.0375"
    assert format_price(15) == "15.00"
    assert format_price(0) == "0.00"
