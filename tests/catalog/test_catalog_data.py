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
# OpenAI's own prompt-cache and abuse-tracing hints, which only OpenAI's endpoints take.
OPENAI_HINTS = {"prompt_cache_key", "prompt_cache_retention", "safety_identifier"}
KNOWN_PARAMETERS = (
    SEED_PARAMETERS
    | OPENAI_HINTS
    | {
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
)
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
    "glm",
    "minimax",
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
    # The seed page's parameters, and OpenAI's own hints, which its openai endpoint takes.
    assert model.supported_parameters == SEED_PARAMETERS | OPENAI_HINTS | {"max_tokens"}
    assert [e.provider for e in model.endpoints] == ["openai", "azure"]


def test_gpt_41_nano_openai_endpoint(catalog: Catalog) -> None:
    (endpoint,) = [e for e in catalog.endpoints_of("openai/gpt-4.1-nano") if e.provider == "openai"]
    assert endpoint.upstream_model == "gpt-4.1-nano"
    assert (endpoint.price.input, endpoint.price.output, endpoint.price.cache_read) == (0.10, 0.40, 0.025)
    assert endpoint.price.cache_write_5m is None and endpoint.price.cache_write_1h is None
    assert endpoint.price.web_search is None and endpoint.price.tiers == ()
    assert (endpoint.context_length, endpoint.max_output) == (1_047_576, 32_768)
    assert endpoint.supported_parameters == SEED_PARAMETERS | OPENAI_HINTS | {"max_tokens"}
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
    assert catalog.prices_as_of == "2026-12-07"
    assert catalog.prices_source == (
        "public provider price pages, as compiled in LiteLLM's model_prices table v1.110.2"
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
        # An embedding model answers with vectors: no output limit, nothing charged for output.
        least_output = 0 if model.embedding else 1
        assert model.context_length >= model.max_output >= least_output, model.id
        assert model.supported_parameters == frozenset().union(
            *(e.supported_parameters for e in model.endpoints)
        )
        for e in model.endpoints:
            where = e.key
            assert e.model_id == model.id, where
            assert e.provider in catalog.providers, where
            # Free tiers (Gemma through Google's API) are listed at 0.
            assert e.price.input >= 0 and e.price.output >= 0, where
            assert e.context_length >= e.max_output >= least_output, where
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
        # Anthropic's published multipliers: 5-minute write 1.25x, 1-hour write 2x the input price; reads
        # cost at most a tenth of it.
        assert price.cache_read <= price.input * 0.1 + 1e-9
        assert price.cache_write_5m == pytest.approx(price.input * 1.25)
        assert price.cache_write_1h == pytest.approx(price.input * 2)
        # Models that take sampling parameters take Anthropic's top_k too; the newest take none.
        sampling = {"temperature", "top_p", "top_k"} & endpoint.supported_parameters
        assert sampling in (set(), {"temperature", "top_p", "top_k"}), model.id
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
    endpoint = catalog.endpoints_of("google/gemini-2.5-pro")[0]
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


@pytest.mark.parametrize(
    ("name", "model_id"),
    [
        # What clients send by default today, by the names they send.
        ("claude-opus-4-6", "anthropic/claude-opus-4.6"),
        ("claude-opus-4-6-20260205", "anthropic/claude-opus-4.6"),
        ("claude-opus-4-8", "anthropic/claude-opus-4.8"),
        ("claude-sonnet-4-6", "anthropic/claude-sonnet-4.6"),
        ("claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4.5"),
        ("claude-haiku-4-5-20251001", "anthropic/claude-haiku-4.5"),
        ("claude-opus-4-5", "anthropic/claude-opus-4.5"),
        ("gpt-5.4", "openai/gpt-5.4"),
        ("gpt-5.4-2026-03-05", "openai/gpt-5.4"),
        ("gpt-5.6-luna", "openai/gpt-5.6-luna"),
        ("gpt-5.2", "openai/gpt-5.2"),
        ("gpt-5-mini", "openai/gpt-5-mini"),
        ("gemini-2.5-flash", "google/gemini-2.5-flash"),
        ("models/gemini-3.5-flash", "google/gemini-3.5-flash"),
        ("gemini-3.1-pro-preview", "google/gemini-3.1-pro-preview"),
        ("text-embedding-3-small", "openai/text-embedding-3-small"),
        ("kimi-k3", "moonshotai/kimi-k3"),
        ("qwen3.8-max", "qwen/qwen3.8-max"),
        ("grok-4.7", "x-ai/grok-4.7"),
        ("deepseek-v4-pro", "deepseek/deepseek-v4-pro"),
        ("mistral-large-2512", "mistralai/mistral-large-2512"),
    ],
)
def test_current_models_are_in_the_catalog_under_their_native_names(
    catalog: Catalog, name: str, model_id: str
) -> None:
    from tokenmux.catalog import find_model

    model = find_model(catalog, name)
    assert model is not None and model.id == model_id


def test_current_claude_and_gpt_models_carry_the_tables_figures(catalog: Catalog) -> None:
    opus = catalog.endpoints_of("anthropic/claude-opus-4.8")[0]
    assert (opus.provider, opus.upstream_model, opus.context_length, opus.max_output) == (
        "anthropic",
        "claude-opus-4-8",
        1_000_000,
        128_000,
    )
    assert (opus.price.input, opus.price.output, opus.price.cache_read) == (5.0, 25.0, 0.5)
    assert (opus.price.cache_write_5m, opus.price.cache_write_1h) == (6.25, 10.0)
    # The newest Claude models refuse sampling parameters; the table says so and the catalog follows.
    assert "temperature" not in opus.supported_parameters
    gpt = catalog.endpoints_of("openai/gpt-5.4")[0]
    assert (gpt.price.input, gpt.price.output, gpt.price.cache_read) == (2.5, 15.0, 0.25)
    (tier,) = gpt.price.tiers
    assert (tier.above_tokens, tier.input, tier.output) == (272_000, 5.0, 22.5)
    assert "gpt-5.4-2026-03-05" in gpt.snapshots
    assert not {"temperature", "top_p", "stop"} & gpt.supported_parameters  # a reasoning model


def test_first_party_providers_and_open_weight_models_at_hosts(catalog: Catalog) -> None:
    makers = {"openai", "anthropic", "google", "mistral", "deepseek", "xai", "moonshot", "dashscope"}
    used = {e.provider for m in catalog.models.values() for e in m.endpoints}
    assert makers <= used
    for model_id, hosts in (
        ("openai/gpt-oss-120b", {"groq", "together", "deepinfra"}),
        ("moonshotai/kimi-k3", {"moonshot", "deepinfra", "fireworks", "together"}),
        ("z-ai/glm-5.1", {"deepinfra", "fireworks"}),
        ("qwen/qwen3-235b-a22b-2507", {"fireworks", "deepinfra"}),
        ("meta-llama/llama-3.3-70b-instruct", {"fireworks", "deepinfra"}),
    ):
        assert hosts <= {e.provider for e in catalog.endpoints_of(model_id)}, model_id
    assert len(catalog.models) >= 120


def test_embedding_models_have_no_output_limit_and_no_chat(catalog: Catalog) -> None:
    small = catalog.models["openai/text-embedding-3-small"]
    assert small.embedding and small.output_modalities == ("embeddings",)
    assert (small.max_output, small.endpoints[0].context_length) == (0, 8191)
    assert {e.provider for e in small.endpoints} == {"openai", "azure"}
    assert small.endpoints[0].price.input == 0.02
    assert catalog.models["google/gemini-embedding-001"].embedding
    assert not catalog.models["openai/gpt-5.4"].embedding


def test_the_seed_endpoints_keep_their_figures_and_say_where_they_come_from(catalog: Catalog) -> None:
    for endpoint in catalog.endpoints_of("openai/gpt-4.1-nano"):
        assert endpoint.source is not None and "seed model page" in endpoint.source
