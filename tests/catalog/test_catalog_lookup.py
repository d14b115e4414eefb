"""Resolving the model names clients write: ids, aliases, providers' own names, close matches."""

from __future__ import annotations

from typing import Any

import pytest

from tokenmux.catalog import CatalogError, close_matches, find_model, load_catalog
from tokenmux.catalog.lookup import find_models
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


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        ("claude-sonnet-4-5", "anthropic/claude-sonnet-4.5"),
        ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4.5"),
        ("claude-haiku-4-5-20251001", "anthropic/claude-haiku-4.5"),
        ("Claude-Opus-4-5", "anthropic/claude-opus-4.5"),
        ("anthropic/claude-haiku-4-5", "anthropic/claude-haiku-4.5"),  # DeepInfra's name for it
        ("gpt-4o-2024-08-06", "openai/gpt-4o"),
        ("gpt-4.1-nano-2025-04-14", "openai/gpt-4.1-nano"),
        ("gemini-2.5-flash", "google/gemini-2.5-flash"),
        ("models/gemini-2.5-flash", "google/gemini-2.5-flash"),  # as Gemini's API writes it
        ("models/google/gemini-2.5-pro", "google/gemini-2.5-pro"),
        ("deepseek-ai/DeepSeek-V3", "deepseek/deepseek-v3"),
        ("accounts/fireworks/models/deepseek-v3", "deepseek/deepseek-v3"),
    ],
)
def test_providers_native_names_and_dated_snapshots_find_the_model(name: str, model_id: str) -> None:
    assert find_model(load_catalog(), name) is load_catalog().models[model_id]


def _together_model(model_id: str, upstream: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "context_length": 1000,
        "max_output": 100,
        "endpoints": [
            {"provider": "together", "upstream_model": upstream, "price": {"input": 1, "output": 1}}
        ],
    }


def test_a_name_two_models_answer_to_is_ambiguous_and_an_alias_settles_it() -> None:
    overrides = {"models": [_together_model("someone/sonnet-clone", "claude-sonnet-4-5")]}
    catalog = load_catalog(overrides)
    found = find_models(catalog, "claude-sonnet-4-5")
    assert sorted(m.id for m in found) == ["anthropic/claude-sonnet-4.5", "someone/sonnet-clone"]
    assert find_model(catalog, "claude-sonnet-4-5") is None
    # The dated snapshot is still the Anthropic model's alone.
    assert find_model(catalog, "claude-sonnet-4-5-20250929") is catalog.models["anthropic/claude-sonnet-4.5"]
    settled = load_catalog(overrides, {"claude-sonnet-4-5": "anthropic/claude-sonnet-4.5"})
    assert find_model(settled, "claude-sonnet-4-5") is settled.models["anthropic/claude-sonnet-4.5"]


def test_aliases_from_the_configuration() -> None:
    catalog = load_catalog(aliases={"sonnet": "anthropic/claude-sonnet-4.5", "Fast": "gpt-4.1-nano"})
    assert find_model(catalog, "sonnet") is catalog.models["anthropic/claude-sonnet-4.5"]
    assert find_model(catalog, "SONNET") is catalog.models["anthropic/claude-sonnet-4.5"]
    assert find_model(catalog, "fast") is catalog.models["openai/gpt-4.1-nano"]  # target written loosely
    assert close_matches(catalog, "sonet")[0] == "anthropic/claude-sonnet-4.5"
    # An alias may take a name a provider uses for another model: configured names come first.
    moved = load_catalog(aliases={"gpt-4o": "openai/gpt-4.1"})
    assert find_model(moved, "gpt-4o") is moved.models["openai/gpt-4.1"]
    assert find_model(moved, "openai/gpt-4o") is moved.models["openai/gpt-4o"]
    assert find_model(load_catalog(), "sonnet") is None  # the shipped catalog is left as it was


@pytest.mark.parametrize(
    ("aliases", "message"),
    [
        (
            {"sonnet": "anthropic/claude-sonet-4.5"},
            "not a model in the catalog; did you mean anthropic/claude-sonnet-4.5",
        ),
        ({"openai/gpt-4o": "openai/gpt-4.1"}, "is a catalog model id; an alias cannot redefine it"),
        ({"x": 3}, "an alias maps a name to a model id"),
        (["sonnet"], "expected a mapping of name to model"),
    ],
)
def test_bad_aliases_are_refused_naming_the_fix(aliases: Any, message: str) -> None:
    with pytest.raises(CatalogError, match="config aliases") as info:
        load_catalog(aliases=aliases)
    assert message in str(info.value)


def test_an_alias_to_an_ambiguous_name_names_the_choices() -> None:
    overrides = {"models": [_together_model("someone/sonnet-clone", "claude-sonnet-4-5")]}
    with pytest.raises(CatalogError) as info:
        load_catalog(overrides, {"sonnet": "claude-sonnet-4-5"})
    assert "ambiguous" in str(info.value) and "anthropic/claude-sonnet-4.5, someone/sonnet-clone" in str(
        info.value
    )


def test_resolving_never_scans_the_catalog() -> None:
    class NoScan(dict[str, Any]):
        def __iter__(self) -> Any:
            raise AssertionError("the catalog was scanned")

        values = items = keys = __iter__  # type: ignore[assignment]

    shipped = load_catalog()
    catalog = Catalog(
        models=NoScan(shipped.models), providers=shipped.providers, prices_as_of="", names=shipped.names
    )
    assert find_model(catalog, "claude-sonnet-4-5-20250929") is shipped.models["anthropic/claude-sonnet-4.5"]
    assert find_model(catalog, "openai/gpt-4o") is shipped.models["openai/gpt-4o"]
    assert find_model(catalog, "nobody/nothing") is None


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


def test_find_model_works_on_a_catalog_built_without_names() -> None:
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
    assert close_matches(catalog, "claude-sonnet-4-5-2025092")[0] == "anthropic/claude-sonnet-4.5"
    assert close_matches(catalog, "zzzzqqqq") == []
    assert len(close_matches(catalog, "gpt", n=5)) <= 5
