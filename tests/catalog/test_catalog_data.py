"""The shipped catalog data: the seed model's figures exactly, and the shape every entry must have."""

from __future__ import annotations

import pytest

from tokenmux.catalog import load_catalog
from tokenmux.catalog.model import Catalog
from tokenmux.providers.registry import provider_kinds

SEED_PARAMETERS = {
    "max_completion_tokens",
    "temperature",
    "top_p",
    "frequency_penalty",
    "presence_penalty",
    "seed",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
}
# Every parameter name the data may use: a typo in a YAML list would otherwise silently drop a parameter.
KNOWN_PARAMETERS = SEED_PARAMETERS | {
    "max_tokens",
    "top_k",
    "min_p",
    "repetition_penalty",
    "reasoning_effort",
    "reasoning",
    "thinking",  # Anthropic's own name for extended thinking, as the Anthropic protocol sends it
    "output_config",  # Anthropic's structured-output setting, as the Anthropic protocol sends it
    # The Messages API's own fields, as an Anthropic client sends them.
    "context_management",
    "cache_control",
    "service_tier",
    "speed",
    "container",
    "mcp_servers",
    "inference_geo",
}
KNOWN_TOKENIZERS = {
    "o200k",
    "cl100k",
    "claude",
    "gemini",
    "llama3",
    "llama4",
    "deepseek",
    "mistral",
    "qwen",
    "kimi",
    "grok",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_gpt_41_nano_model_carries_the_seed_page_figures(catalog: Catalog) -> None:
    model = catalog.models["openai/gpt-4.1-nano"]
    assert model.name == "OpenAI: GPT-4.1 Nano"
    assert model.author == "openai"
    assert model.description.startswith("For tasks that demand low latency, GPT\u20114.1 nano is the fastest")
    assert "scores 80.1% on MMLU, 50.3% on GPQA, and 9.8% on Aider polyglot coding" in model.description
    assert model.description.endswith("It\u2019s ideal for tasks like classification or autocompletion.")
    assert model.input_modalities == ("text", "image")
    assert model.output_modalities == ("text",)
    assert model.context_length == 1_047_576
    assert model.max_output == 32_768
    assert model.tokenizer == "o200k"
    assert model.supported_parameters == SEED_PARAMETERS | {"max_tokens"}
    assert [e.provider for e in model.endpoints] == ["openai", "azure"]


def test_gpt_41_nano_openai_endpoint(catalog: Catalog) -> None:
    (endpoint,) = [e for e in catalog.endpoints_of("openai/gpt-4.1-nano") if e.provider == "openai"]
    assert endpoint.upstream_model == "gpt-4.1-nano"
    assert (endpoint.price.input, endpoint.price.output, endpoint.price.cache_read) == (0.10, 0.40, 0.025)
    assert endpoint.price.cache_write_5m is None and endpoint.price.cache_write_1h is None
    assert endpoint.price.web_search is None and endpoint.price.tiers == ()
    assert (endpoint.context_length, endpoint.max_output) == (1_047_576, 32_768)
    assert endpoint.supported_parameters == SEED_PARAMETERS | {"max_tokens"}
    assert endpoint.protocols == ("openai", "anthropic")
    assert endpoint.data_policy.prompt_training is False
    assert endpoint.data_policy.retention_days == 0 and endpoint.data_policy.zero_retention
    assert endpoint.data_policy.moderation == "developer"
    assert endpoint.status_page_url is not None and "status.openai.com" in endpoint.status_page_url


def test_gpt_41_nano_azure_endpoint(catalog: Catalog) -> None:
    (endpoint,) = [e for e in catalog.endpoints_of("openai/gpt-4.1-nano") if e.provider == "azure"]
    assert endpoint.upstream_model == "gpt-4.1-nano"
    assert (endpoint.price.input, endpoint.price.output, endpoint.price.cache_read) == (0.10, 0.40, 0.03)
    assert (endpoint.context_length, endpoint.max_output) == (1_047_576, 32_768)
    assert endpoint.supported_parameters == SEED_PARAMETERS | {"max_tokens"}
    assert endpoint.protocols == ("openai", "anthropic")
    assert endpoint.data_policy.prompt_training is False
    assert endpoint.data_policy.retention_days == 30 and not endpoint.data_policy.zero_retention
    assert endpoint.data_policy.moderation == "developer"
    assert endpoint.status_page_url is not None and "azure.status.microsoft" in endpoint.status_page_url


def test_prices_say_when_and_where_they_were_taken(catalog: Catalog) -> None:
    assert catalog.prices_as_of == "2026-11-26"
    assert catalog.prices_source == (
        "public provider price pages, as compiled in LiteLLM's model_prices table v1.106.12"
    )


def test_catalog_is_large_enough(catalog: Catalog) -> None:
    providers_used = {e.provider for m in catalog.models.values() for e in m.endpoints}
    assert len(catalog.models) >= 30
    assert len(providers_used) >= 8
    # Routing needs real choices: several models offered by more than one provider.
    assert sum(1 for m in catalog.models.values() if len(m.endpoints) > 1) >= 10
    assert len(catalog.endpoints_of("deepseek/deepseek-v3")) >= 3
    assert {e.provider for e in catalog.endpoints_of("openai/gpt-4o")} == {"openai", "azure"}


def test_every_endpoint_is_well_formed(catalog: Catalog) -> None:
    for model in catalog.models.values():
        assert model.id == f"{model.author}/{model.slug}"
        assert model.name and model.description and model.tokenizer in KNOWN_TOKENIZERS, model.id
        assert model.context_length >= model.max_output > 0, model.id
        assert model.supported_parameters == frozenset().union(
            *(e.supported_parameters for e in model.endpoints)
        )
        for e in model.endpoints:
            where = e.key
            assert e.model_id == model.id, where
            assert e.provider in catalog.providers, where
            assert e.price.input > 0 and e.price.output > 0, where
            assert e.context_length >= e.max_output > 0, where
            assert e.context_length <= model.context_length and e.max_output <= model.max_output, where
            if e.price.cache_read is not None:
                assert e.price.cache_read < e.price.input, where
            assert e.supported_parameters <= KNOWN_PARAMETERS, (
                where,
                e.supported_parameters - KNOWN_PARAMETERS,
            )
            assert {"max_tokens", "max_completion_tokens"} <= e.supported_parameters, where
            assert set(e.protocols) <= {"openai", "anthropic"}, where
            assert e.data_policy.moderation in {"developer", "provider"}, where
            assert e.status_page_url, where


def test_providers(catalog: Catalog) -> None:
    providers = catalog.providers
    assert providers["openai"].base_url == "https://api.openai.com/v1"
    assert providers["groq"].base_url == "https://api.groq.com/openai/v1"
    assert providers["deepseek"].base_url == "https://api.deepseek.com/v1"
    assert providers["together"].base_url == "https://api.together.xyz/v1"
    assert providers["fireworks"].base_url == "https://api.fireworks.ai/inference/v1"
    assert providers["mistral"].base_url == "https://api.mistral.ai/v1"
    assert providers["xai"].base_url == "https://api.x.ai/v1"
    assert providers["anthropic"].base_url == "https://api.anthropic.com"
    assert providers["google"].base_url == "https://generativelanguage.googleapis.com"
    assert providers["azure"].base_url is None  # every Azure resource is the user's own
    assert providers["openai"].api_key_env == "OPENAI_API_KEY"
    assert providers["azure"].api_key_env == "AZURE_OPENAI_API_KEY"
    assert providers["anthropic"].api_key_env == "ANTHROPIC_API_KEY"
    assert providers["google"].api_key_env == "GEMINI_API_KEY"
    assert providers["groq"].api_key_env == "GROQ_API_KEY"
    assert providers["deepseek"].api_key_env == "DEEPSEEK_API_KEY"
    kinds = {slug: p.kind for slug, p in providers.items()}
    assert kinds["openai"] == "openai" and kinds["azure"] == "azure"
    assert kinds["anthropic"] == "anthropic" and kinds["google"] == "google"
    assert {
        kinds[s] for s in ("groq", "deepseek", "together", "fireworks", "deepinfra", "mistral", "xai")
    } == {"openai-compatible"}
    for slug, info in providers.items():
        assert info.slug == slug and info.name and info.status_page_url and info.api_key_env


def test_every_provider_has_an_adapter_for_its_kind() -> None:
    kinds = provider_kinds()
    checked = load_catalog(kinds=kinds)
    assert {info.kind for info in checked.providers.values()} <= set(kinds)


def test_claude_and_gemini_have_third_party_hosts(catalog: Catalog) -> None:
    hosts = {e.provider for e in catalog.models["anthropic/claude-haiku-4.5"].endpoints}
    assert hosts == {"anthropic", "azure-foundry", "deepinfra"}
    foundry = next(
        e for e in catalog.models["anthropic/claude-sonnet-4.5"].endpoints if e.provider == "azure-foundry"
    )
    assert catalog.providers["azure-foundry"].kind == "anthropic" and foundry.price.cache_write_5m == 3.75
    assert {e.provider for e in catalog.models["google/gemini-2.5-flash"].endpoints} == {
        "google",
        "deepinfra",
    }


def test_claude_endpoints_have_cache_write_prices_and_anthropic_parameters(catalog: Catalog) -> None:
    claude = [m for m in catalog.models.values() if m.author == "anthropic"]
    assert len(claude) >= 3
    for model in claude:
        assert model.tokenizer == "claude"
        endpoint = model.endpoints[0]  # first-party first; third-party hosts follow
        assert endpoint.provider == "anthropic"
        price = endpoint.price
        assert (
            price.cache_read is not None
            and price.cache_write_5m is not None
            and price.cache_write_1h is not None
        )
        # Anthropic's published multipliers: read 0.1x, 5-minute write 1.25x, 1-hour write 2x the input price.
        assert price.cache_read == pytest.approx(price.input * 0.1)
        assert price.cache_write_5m == pytest.approx(price.input * 1.25)
        assert price.cache_write_1h == pytest.approx(price.input * 2)
        assert "top_k" in endpoint.supported_parameters
        assert not endpoint.supported_parameters & {
            "logit_bias",
            "logprobs",
            "frequency_penalty",
            "presence_penalty",
            "seed",
        }
    sonnet = catalog.models["anthropic/claude-sonnet-4.5"].endpoints[0]
    assert (sonnet.upstream_model, sonnet.price.input, sonnet.price.output) == (
        "claude-sonnet-4-5",
        3.0,
        15.0,
    )


def test_gemini_pro_has_the_above_200k_tier(catalog: Catalog) -> None:
    (endpoint,) = catalog.endpoints_of("google/gemini-2.5-pro")
    assert endpoint.provider == "google"
    (tier,) = endpoint.price.tiers
    assert (tier.above_tokens, tier.input, tier.output, tier.cache_read) == (200_000, 2.5, 15.0, 0.25)
    assert (endpoint.price.input, endpoint.price.output) == (1.25, 10.0)


def test_provider_parameter_sets_follow_the_providers(catalog: Catalog) -> None:
    (groq,) = [e for e in catalog.endpoints_of("openai/gpt-oss-120b") if e.provider == "groq"]
    assert not groq.supported_parameters & {"logit_bias", "logprobs", "top_logprobs"}
    assert "reasoning_effort" in groq.supported_parameters  # added for this model on every host
    o3 = catalog.endpoints_of("openai/o3")[0]
    assert "reasoning_effort" in o3.supported_parameters
    assert not o3.supported_parameters & {"temperature", "top_p", "logit_bias"}


def test_data_policies(catalog: Catalog) -> None:
    deepseek = catalog.endpoints_of("deepseek/deepseek-v4-flash")[0]
    assert deepseek.data_policy.prompt_training is True
    azure = [e for m in catalog.models.values() for e in m.endpoints if e.provider == "azure"]
    assert azure and all(e.data_policy.retention_days == 30 for e in azure)
