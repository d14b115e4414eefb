from __future__ import annotations

import pytest
from adapter_helpers import config

from tokenmux.providers import ProviderKind, build_provider, provider_kinds, register
from tokenmux.providers.azure import AzureProvider, AzureSettings
from tokenmux.providers.openai import OpenAIProvider
from tokenmux.providers.openai_compatible import OpenAICompatibleProvider
from tokenmux.providers.redaction import RedactedProvider
from tokenmux.providers.transport import MockResponse, MockTransport

transport = MockTransport(lambda request: MockResponse())


@pytest.mark.parametrize(
    ("kind", "adapter_class"),
    [("openai", OpenAIProvider), ("azure", AzureProvider), ("openai-compatible", OpenAICompatibleProvider)],
)
def test_each_kind_builds_its_adapter(kind: str, adapter_class: type[OpenAIProvider]) -> None:
    provider_config = config(kind, slug=f"my-{kind}")
    provider = build_provider(provider_config, transport)
    assert isinstance(provider, RedactedProvider)  # the config has a key: errors are scrubbed of it
    assert type(provider.adapter) is adapter_class
    assert provider.kind == kind
    assert provider.config is provider_config
    assert provider_kinds()[kind].adapter is adapter_class


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown provider kind 'bedrock'; the known kinds are: ") as caught:
        build_provider(config("bedrock"), transport)
    assert all(kind in str(caught.value) for kind in ("anthropic", "azure", "google", "openai-compatible"))


def test_config_repr_hides_the_key() -> None:
    assert "sk-test" not in repr(build_provider(config(), transport).config)


def test_a_provider_without_credentials_is_not_wrapped() -> None:
    provider = build_provider(config("openai-compatible", api_key=None), transport)
    assert type(provider) is OpenAICompatibleProvider


def test_the_package_registers_each_kind_it_implements() -> None:
    kinds = provider_kinds()
    assert {"openai", "azure", "openai-compatible", "anthropic", "google"} <= set(kinds)
    assert kinds["azure"].settings is AzureSettings
    assert kinds["azure"].env_fallbacks == {"api_version": "AZURE_OPENAI_API_VERSION"}


def test_a_kind_is_registered_once() -> None:
    openai_kind = provider_kinds()["openai"]
    assert register(openai_kind) is openai_kind  # the same again is harmless
    with pytest.raises(ValueError, match="'openai' is already registered"):
        register(ProviderKind("openai", OpenAICompatibleProvider))
