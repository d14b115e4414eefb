"""``tokenmux catalog import``: public price tables merged into catalog data, on small fixture files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tokenmux.catalog import CatalogError, find_model
from tokenmux.catalog.importer import import_catalog
from tokenmux.catalog.importer.merge import Report
from tokenmux.catalog.loader import load_catalog_data
from tokenmux.catalog.model import Catalog
from tokenmux.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
DATA = FIXTURES / "data"
LITELLM = FIXTURES / "litellm-prices.json"
OPENROUTER = FIXTURES / "openrouter-models.json"
AS_OF = "2026-12-07"


def run(tmp_path: Path, *files: Path, data: Path = DATA) -> tuple[Report, Catalog, Path]:
    out = tmp_path / "out"
    report = import_catalog(list(files), out=out, data_dir=data, as_of=AS_OF, source="the fixture table")
    return report, load_catalog_data(out), out


def test_new_models_come_with_prices_tiers_limits_snapshots_and_parameters(tmp_path: Path) -> None:
    report, catalog, _ = run(tmp_path, LITELLM)
    assert {"openai/gpt-5.4", "anthropic/claude-opus-4.8", "anthropic/claude-opus-4.6"} <= set(
        report.models_added
    )
    gpt = catalog.models["openai/gpt-5.4"]
    assert (gpt.name, gpt.created, gpt.tokenizer) == ("OpenAI: GPT-5.4", "2026-03-05", "o200k")
    assert gpt.input_modalities == ("text", "image", "file")
    assert "1.05M-token context" in gpt.description  # made of what the table states, nothing else
    (endpoint,) = gpt.endpoints
    assert (endpoint.provider, endpoint.upstream_model, endpoint.snapshots) == (
        "openai",
        "gpt-5.4",
        ("gpt-5.4-2026-03-05",),
    )
    assert (endpoint.context_length, endpoint.max_output) == (1_050_000, 128_000)
    price = endpoint.price
    assert (price.input, price.output, price.cache_read, price.web_search) == (2.5, 15.0, 0.25, 0.01)
    (tier,) = price.tiers  # the priority-tier prices of the table are not ours to charge
    assert (tier.above_tokens, tier.input, tier.output, tier.cache_read) == (272_000, 5.0, 22.5, 0.5)
    # A reasoning model at OpenAI takes reasoning_effort and none of the sampling parameters.
    assert "reasoning_effort" in endpoint.supported_parameters
    assert not {"temperature", "top_p", "stop"} & endpoint.supported_parameters

    opus = catalog.endpoints_of("anthropic/claude-opus-4.8")[0]
    assert opus.upstream_model == "claude-opus-4-8"
    assert (opus.price.cache_write_5m, opus.price.cache_write_1h) == (6.25, 10.0)
    assert "top_k" not in opus.supported_parameters  # supports_sampling_params: false
    older = catalog.endpoints_of("anthropic/claude-opus-4.6")[0]
    assert older.snapshots == ("claude-opus-4-6-20260205",)
    assert catalog.models["anthropic/claude-opus-4.6"].created == "2026-02-05"

    embedding = catalog.models["openai/text-embedding-3-small"]
    assert embedding.embedding and embedding.max_output == 0 and embedding.context_length == 8191
    assert embedding.endpoints[0].price.input == 0.02 and embedding.dimensions == 1536


def test_what_the_catalog_has_is_refreshed_and_what_the_table_lacks_is_kept(tmp_path: Path) -> None:
    report, catalog, out = run(tmp_path, LITELLM)
    openai = catalog.endpoints_of("openai/gpt-4o")[0]
    assert (openai.price.input, openai.price.output, openai.price.cache_read) == (2.5, 10.0, 1.25)
    assert openai.snapshots == ("gpt-4o-2024-08-06",)  # same prices: a snapshot of gpt-4o
    assert "openai/gpt-4o@openai: input 5 -> 2.5, output 15 -> 10" in report.prices_changed
    # A dated name with prices of its own is a model of its own.
    assert catalog.models["openai/gpt-4o-2024-05-13"].endpoints[0].price.input == 5.0
    assert catalog.models["openai/gpt-4o"].description == "Written by hand, and kept."

    nano_openai, nano_azure = catalog.endpoints_of("openai/gpt-4.1-nano")
    # The endpoint that names its own source keeps its figures (and its data policy) whatever the table says.
    assert (nano_openai.price.input, nano_openai.source) == (0.10, "a model page")
    assert nano_openai.data_policy.retention_days == 0
    assert nano_azure.price.cache_read == 0.025  # refreshed
    assert "openai/gpt-4.1-nano@openai (a model page)" in report.kept_by_source
    # The table retired gpt-4.1-nano at OpenAI: kept, and said.
    assert "openai/gpt-4.1-nano@openai" in report.retired_kept

    written = yaml.safe_load((out / "models-openai.yaml").read_text())
    assert (str(written["prices_as_of"]), written["prices_source"]) == (AS_OF, "the fixture table")
    assert (out / "providers.yaml").read_text() == (DATA / "providers.yaml").read_text()


def test_entries_that_are_not_current_text_models_of_known_providers_are_left_out(tmp_path: Path) -> None:
    report, catalog, _ = run(tmp_path, LITELLM)
    names = {name for model in catalog.models.values() for name in (model.id, *model.endpoints[0].snapshots)}
    for left_out in ("gpt-5.4-pro", "gpt-audio", "ft:gpt-4o-2024-08-06", "kimi-k2.5"):
        assert find_model(catalog, left_out) is None, left_out
    assert not any("fireworks-ai" in n or "bedrock" in n for n in names)
    assert "moonshot/kimi-k2.5" in report.retired  # retired by the prices' date
    azure = catalog.endpoints_of("openai/gpt-4.1-nano")[1]
    assert azure.price.input == 0.10  # the EU deployment's 0.11 is another price for the same model


def test_hosts_add_endpoints_to_known_models_only(tmp_path: Path) -> None:
    report, catalog, _ = run(tmp_path, LITELLM)
    kimi = catalog.models["moonshotai/kimi-k2.6"]
    # Written by hand with only a host's name for it; the table fills the rest.
    assert kimi.name == "MoonshotAI: Kimi K2.6" and kimi.tokenizer == "kimi"
    assert [e.provider for e in kimi.endpoints] == ["fireworks", "moonshot"]
    fireworks = kimi.endpoints[0]
    assert (fireworks.price.input, fireworks.context_length) == (0.95, 262_144)
    assert find_model(catalog, "kimi-k3") is None  # a host's model the catalog does not have
    assert report.unmatched == 1


def test_importing_again_changes_nothing(tmp_path: Path) -> None:
    _, _, first = run(tmp_path, LITELLM)
    again = tmp_path / "again"
    report = import_catalog([LITELLM], out=again, data_dir=first, as_of=AS_OF, source="the fixture table")
    assert not report.models_added and not report.endpoints_added and not report.prices_changed
    for path in sorted(first.iterdir()):
        assert (again / path.name).read_text() == path.read_text(), path.name


def test_openrouter_models_become_openrouter_endpoints(tmp_path: Path) -> None:
    _, catalog, _ = run(tmp_path, LITELLM, OPENROUTER)
    glm = catalog.models["z-ai/glm-5.1"]
    assert (glm.name, glm.description, glm.created) == ("Z.ai: GLM 5.1", "GLM 5.1 from Z.ai.", "2026-02-02")
    (endpoint,) = glm.endpoints
    assert (endpoint.provider, endpoint.upstream_model) == ("openrouter", "z-ai/glm-5.1")
    assert (endpoint.price.input, endpoint.price.output, endpoint.max_output) == (1.0, 3.2, 131_072)
    assert endpoint.supported_parameters == {
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "tools",
        "tool_choice",
        "seed",
        "min_p",
    }
    opus = catalog.models["anthropic/claude-opus-4.8"]
    assert [e.provider for e in opus.endpoints] == ["anthropic", "openrouter"]
    assert opus.endpoints[1].price.cache_write_5m == 6.25
    assert opus.description != "Anthropic's most capable model, as OpenRouter describes it."  # kept
    assert catalog.models["openai/text-embedding-3-small"].endpoints[-1].provider == "openrouter"
    for absent in ("z-ai/glm-5.1:free", "openrouter/auto", "google/gemini-3-pro-image"):
        assert absent not in catalog.models


def test_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    code = main(
        ["catalog", "import", str(LITELLM), "--data", str(data), "--out", str(data), "--as-of", AS_OF]
    )
    assert code == 0
    err = capsys.readouterr().err
    assert "models added" in err and "openai/gpt-5.4" in err and f"written to {data}" in err
    assert "openai/gpt-5.4" in load_catalog_data(data).models

    assert main(["catalog", "import", str(DATA / "providers.yaml"), "--out", str(tmp_path / "x")]) == 2
    assert "is not JSON" in capsys.readouterr().err
    bad = tmp_path / "list.json"
    bad.write_text('{"data": 3}')
    with pytest.raises(CatalogError, match="neither LiteLLM's price table"):
        import_catalog([bad], out=tmp_path / "y", data_dir=DATA)
    assert main(["catalog", "import", str(LITELLM), "--out", str(tmp_path / "z"), "--as-of", "soon"]) == 2
