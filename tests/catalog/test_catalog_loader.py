"""Loading: caching, the user's overrides merged into the shipped data, and errors that name the fault."""

from __future__ import annotations

from typing import Any

import pytest

from tokenmux.catalog import CatalogError, load_catalog
from tokenmux.catalog.build import build_model, build_provider
from tokenmux.providers.registry import provider_kinds


def test_each_load_is_a_fresh_catalog_sharing_immutable_models() -> None:
    first = load_catalog()
    first.models.pop("openai/gpt-4.1-nano")
    first.providers.clear()
    second = load_catalog()
    assert "openai/gpt-4.1-nano" in second.models
    assert "openai" in second.providers
    assert second.models["openai/gpt-4o"] is load_catalog().models["openai/gpt-4o"]


def test_override_merges_into_an_existing_endpoint_field_by_field() -> None:
    catalog = load_catalog(
        {
            "models": [
                {
                    "id": "openai/gpt-4.1-nano",
                    "endpoints": [
                        {"provider": "azure", "upstream_model": "my-nano", "price": {"input": 0.08}}
                    ],
                }
            ]
        }
    )
    openai, azure = catalog.endpoints_of("openai/gpt-4.1-nano")
    assert (azure.provider, azure.upstream_model) == ("azure", "my-nano")
    assert (azure.price.input, azure.price.output, azure.price.cache_read) == (0.08, 0.40, 0.03)
    assert azure.context_length == 1_047_576 and azure.data_policy.retention_days == 30
    assert openai.price.input == 0.10  # the other endpoint is untouched
    # ...and so is the cached shipped catalog.
    assert load_catalog().endpoints_of("openai/gpt-4.1-nano")[1].price.input == 0.10


def test_override_keeps_tiers_when_changing_a_base_price() -> None:
    catalog = load_catalog(
        {
            "models": [
                {"id": "google/gemini-2.5-pro", "endpoints": [{"provider": "google", "price": {"output": 9}}]}
            ]
        }
    )
    price = catalog.endpoints_of("google/gemini-2.5-pro")[0].price
    assert (price.input, price.output) == (1.25, 9.0)
    assert [t.above_tokens for t in price.tiers] == [200_000]


def test_override_adds_a_provider_and_an_endpoint_inheriting_from_model_and_provider() -> None:
    catalog = load_catalog(
        {
            "providers": {
                "ollama": {
                    "name": "Ollama",
                    "kind": "openai-compatible",
                    "base_url": "http://127.0.0.1:11434/v1",
                    "defaults": {
                        "supported_parameters": ["max_tokens", "temperature", "top_k"],
                        "data_policy": {"retention_days": 0},
                    },
                }
            },
            "models": [
                {
                    "id": "meta-llama/llama-3.1-8b-instruct",
                    "endpoints": [
                        {
                            "provider": "ollama",
                            "upstream_model": "llama3.1:8b",
                            "max_output": 4096,
                            "price": {"input": 0, "output": 0},
                        }
                    ],
                }
            ],
        }
    )
    assert catalog.providers["ollama"].base_url == "http://127.0.0.1:11434/v1"
    model = catalog.models["meta-llama/llama-3.1-8b-instruct"]
    assert [e.provider for e in model.endpoints] == ["fireworks", "deepinfra", "ollama"]
    local = model.endpoints[-1]
    assert local.context_length == 131_072  # from the model
    assert local.max_output == 4096
    assert local.supported_parameters == {"max_tokens", "temperature", "top_k"}
    assert local.data_policy.zero_retention and local.data_policy.prompt_training is False
    assert local.protocols == ("openai",)  # the provider states none: the plain default
    assert local.key == "meta-llama/llama-3.1-8b-instruct@ollama"


def test_override_adds_a_whole_model() -> None:
    catalog = load_catalog(
        {
            "models": [
                {
                    "id": "acme/tiny-1",
                    "name": "Acme: Tiny 1",
                    "tokenizer": "cl100k",
                    "endpoints": [
                        {
                            "provider": "together",
                            "context_length": 8192,
                            "max_output": 2048,
                            "price": {"input": 0.1, "output": 0.2},
                        },
                        {
                            "provider": "groq",
                            "upstream_model": "acme-tiny",
                            "context_length": 16384,
                            "max_output": 1024,
                            "price": {"input": 0.3, "output": 0.4},
                            "extra_parameters": ["logprobs"],
                        },
                    ],
                }
            ]
        }
    )
    model = catalog.models["acme/tiny-1"]
    assert (model.name, model.author, model.slug) == ("Acme: Tiny 1", "acme", "tiny-1")
    assert (model.context_length, model.max_output) == (16384, 2048)  # largest over its endpoints
    together, groq = model.endpoints
    assert together.upstream_model == "tiny-1"  # defaults to the slug
    assert "logit_bias" in together.supported_parameters and "logit_bias" not in groq.supported_parameters
    assert "logprobs" in groq.supported_parameters
    assert model.supported_parameters == together.supported_parameters | groq.supported_parameters
    assert catalog.names["tiny-1"] == ("acme/tiny-1",)
    assert len(catalog.models) == len(load_catalog().models) + 1


def test_override_can_mark_retention_unknown_and_parameters_unsupported() -> None:
    catalog = load_catalog(
        {
            "models": [
                {
                    "id": "openai/gpt-4o",
                    "endpoints": [
                        {
                            "provider": "openai",
                            "data_policy": {"retention_days": None},
                            "unsupported_parameters": ["seed"],
                        }
                    ],
                }
            ]
        }
    )
    openai, azure = catalog.endpoints_of("openai/gpt-4o")
    assert openai.data_policy.retention_days is None
    assert "seed" not in openai.supported_parameters and "seed" in azure.supported_parameters
    assert "seed" in catalog.models["openai/gpt-4o"].supported_parameters  # still offered through azure


def test_override_changes_provider_fields() -> None:
    catalog = load_catalog({"providers": {"openai": {"base_url": "https://proxy.example/v1"}}})
    assert catalog.providers["openai"].base_url == "https://proxy.example/v1"
    assert catalog.providers["openai"].api_key_env == "OPENAI_API_KEY"
    assert catalog.endpoints_of("openai/gpt-4.1")[0].supported_parameters  # defaults still apply


def _error(overrides: Any) -> str:
    with pytest.raises(CatalogError) as info:
        load_catalog(overrides)
    return str(info.value)


def test_errors_name_the_place_the_field_and_the_fix() -> None:
    nano = "openai/gpt-4.1-nano"
    message = _error(
        {"models": [{"id": nano, "endpoints": [{"provider": "openai", "price": {"cache_reed": 0.01}}]}]}
    )
    assert "config catalog: models[0]" in message and "endpoints[0]" in message and "(openai)" in message
    assert "'cache_reed'" in message and "did you mean 'cache_read'" in message

    message = _error(
        {
            "models": [
                {"id": "x/y", "endpoints": [{"provider": "nowhere", "price": {"input": 1, "output": 1}}]}
            ]
        }
    )
    assert "provider 'nowhere' is not known" in message and "catalog.providers" in message

    message = _error(
        {"models": [{"id": nano, "endpoints": [{"provider": "openai", "price": {"input": -1}}]}]}
    )
    assert "'input' must be a number >= 0" in message

    message = _error(
        {"models": [{"id": nano, "endpoints": [{"provider": "openai", "max_output": 2_000_000}]}]}
    )
    assert "max_output 2000000 is larger than context_length 1047576" in message

    message = _error(
        {
            "models": [
                {"id": "x/y", "context_length": 10, "max_output": 5, "endpoints": [{"provider": "openai"}]}
            ]
        }
    )
    assert "needs a price" in message

    message = _error(
        {"models": [{"id": "x/y", "endpoints": [{"provider": "openai", "price": {"input": 1, "output": 1}}]}]}
    )
    assert "'context_length' is required on the endpoint or its model" in message

    message = _error({"models": [{"id": "no-slash", "endpoints": []}]})
    assert "must look like 'author/slug'" in message

    message = _error({"models": [{"id": "x/y", "endpoints": []}]})
    assert "at least one endpoint" in message

    message = _error({"models": {"id": "x/y"}})
    assert "config catalog: models" in message and "expected a list" in message

    message = _error({"model": []})
    assert "unknown field 'model'" in message and "did you mean 'models'" in message

    message = _error({"providers": {"local": {"base_url": "http://x"}}})
    assert "provider 'local'" in message and "'kind' is required" in message

    with pytest.raises(CatalogError) as unknown_kind:
        load_catalog({"providers": {"local": {"kind": "vllm"}}}, kinds=provider_kinds())
    message = str(unknown_kind.value)
    assert message.startswith("catalog provider 'local' has kind 'vllm', which no adapter speaks; the known")
    assert all(kind in message for kind in ("anthropic", "azure", "google", "openai", "openai-compatible"))

    message = _error({"models": [{"id": nano, "endpoints": [{"price": {"input": 1}}]}]})
    assert "endpoints[0]" in message and "'provider' is required" in message

    message = _error(
        {
            "models": [
                {"id": nano, "endpoints": [{"provider": "openai", "data_policy": {"moderation": "maybe"}}]}
            ]
        }
    )
    assert "data_policy" in message and "'moderation' must be one of developer, provider" in message


def test_errors_in_shipped_data_name_the_file() -> None:
    providers = {"openai": build_provider("openai", {"kind": "openai"}, "providers.yaml")}
    raw = {
        "id": "openai/x",
        "context_length": 100,
        "max_output": 10,
        "endpoints": [{"provider": "openai", "price": {"input": 1, "output": 2, "tiers": [{"input": 2}]}}],
    }
    with pytest.raises(
        CatalogError, match=r"^models-openai\.yaml: models\[3\] \(openai/x\).*tiers\[0\].*above_tokens"
    ):
        build_model(raw, "models-openai.yaml: models[3]", providers)


def test_duplicate_providers_within_a_model_are_rejected() -> None:
    message = _error(
        {
            "models": [
                {
                    "id": "x/y",
                    "context_length": 10,
                    "max_output": 5,
                    "endpoints": [
                        {"provider": "openai", "price": {"input": 1, "output": 1}},
                        {"provider": "openai", "price": {"input": 2, "output": 2}},
                    ],
                }
            ]
        }
    )
    assert "'openai' is listed twice" in message


def test_tier_prices_default_to_the_base_prices_and_sort() -> None:
    catalog = load_catalog(
        {
            "models": [
                {
                    "id": "x/tiered",
                    "context_length": 1_000_000,
                    "max_output": 1000,
                    "endpoints": [
                        {
                            "provider": "openai",
                            "price": {
                                "input": 1,
                                "output": 2,
                                "tiers": [
                                    {"above_tokens": 500_000, "input": 4},
                                    {"above_tokens": 100_000, "output": 3},
                                ],
                            },
                        }
                    ],
                }
            ]
        }
    )
    tiers = catalog.endpoints_of("x/tiered")[0].price.tiers
    assert [(t.above_tokens, t.input, t.output) for t in tiers] == [(100_000, 1.0, 3.0), (500_000, 4.0, 2.0)]


def test_only_an_embedding_model_has_dimensions() -> None:
    assert load_catalog().models["openai/text-embedding-3-large"].dimensions == 3072
    message = _error({"models": [{"id": "openai/gpt-4.1-nano", "dimensions": 1536}]})
    assert "only an embedding model" in message and "dimensions" in message
