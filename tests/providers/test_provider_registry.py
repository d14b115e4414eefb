from __future__ import annotations

import pytest
from adapter_helpers import config

from tokenmux.providers import PROVIDER_KINDS, build_provider
from tokenmux.providers.azure import AzureProvider
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
    assert PROVIDER_KINDS[kind] is adapter_class


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"'bedrock'.*anthropic, azure, google, openai, openai-compatible"):
        build_provider(config("bedrock"), transport)


def test_config_repr_hides_the_key() -> None:
    assert "sk-test" not in repr(build_provider(config(), transport).config)


def test_a_provider_without_credentials_is_not_wrapped() -> None:
    provider = build_provider(config("openai-compatible", api_key=None), transport)
    assert type(provider) is OpenAICompatibleProvider
