"""Resolving the model names clients write."""

from __future__ import annotations

from tokenmux.catalog import close_matches, find_model, load_catalog
from tokenmux.catalog.model import Catalog


def test_find_model_by_id_case_and_bare_slug() -> None:
    catalog = load_catalog()
    nano = catalog.models["openai/gpt-4.1-nano"]
    assert find_model(catalog, "openai/gpt-4.1-nano") is nano
    assert find_model(catalog, "OpenAI/GPT-4.1-Nano") is nano
    assert find_model(catalog, "gpt-4.1-nano") is nano
    assert find_model(catalog, " gpt-4.1-nano ") is nano
    assert find_model(catalog, "claude-sonnet-4.5") is catalog.models["anthropic/claude-sonnet-4.5"]
    assert find_model(catalog, "gpt-4.1-nan") is None
    assert find_model(catalog, "mistral/gpt-4.1-nano") is None  # a wrong author is not corrected silently
    assert find_model(catalog, "") is None


def test_an_ambiguous_bare_slug_finds_nothing() -> None:
    catalog = load_catalog(
        {
            "models": [
                {
                    "id": "someone/gpt-4.1-nano",
                    "context_length": 1000,
                    "max_output": 100,
                    "endpoints": [{"provider": "together", "price": {"input": 1, "output": 1}}],
                }
            ]
        }
    )
    assert find_model(catalog, "gpt-4.1-nano") is None
    assert find_model(catalog, "openai/gpt-4.1-nano") is catalog.models["openai/gpt-4.1-nano"]
    assert find_model(catalog, "someone/gpt-4.1-nano") is catalog.models["someone/gpt-4.1-nano"]


def test_find_model_works_on_a_catalog_built_without_aliases() -> None:
    shipped = load_catalog()
    bare = Catalog(models=shipped.models, providers=shipped.providers, prices_as_of=shipped.prices_as_of)
    assert find_model(bare, "gpt-4o-mini") is shipped.models["openai/gpt-4o-mini"]


def test_close_matches() -> None:
    catalog = load_catalog()
    assert close_matches(catalog, "gpt4.1-nano")[0] == "openai/gpt-4.1-nano"
    assert close_matches(catalog, "openai/gpt-4.1-nan")[0] == "openai/gpt-4.1-nano"
    assert close_matches(catalog, "GPT-4.1-NANO")[0] == "openai/gpt-4.1-nano"
    assert close_matches(catalog, "anthropic/claude-sonet-4.5")[0] == "anthropic/claude-sonnet-4.5"
    assert close_matches(catalog, "gemini-2.5-pr")[0] == "google/gemini-2.5-pro"
    assert close_matches(catalog, "llama-3.3-70b") == ["meta-llama/llama-3.3-70b-instruct"]
    top_two = close_matches(catalog, "gpt-4.1", n=2)
    assert len(top_two) == 2 and top_two[0] == "openai/gpt-4.1"
    assert close_matches(catalog, "zzzzqqqq") == []
    assert len(close_matches(catalog, "gpt", n=5)) <= 5
