"""Upstream adapters, one per wire format, and the registry that builds them from configuration.

A provider kind is registered here and nowhere else: routing and the server only call ``build_provider``.
"""

from __future__ import annotations

from collections.abc import Callable

from tokenmux.providers.anthropic import AnthropicProvider
from tokenmux.providers.azure import AzureProvider
from tokenmux.providers.base import CallContext, Provider, ProviderConfig
from tokenmux.providers.google import GoogleProvider
from tokenmux.providers.http1 import Http1Transport
from tokenmux.providers.openai import OpenAIProvider
from tokenmux.providers.openai_compatible import OpenAICompatibleProvider
from tokenmux.providers.redaction import RedactedProvider, Redactor, credentials_of
from tokenmux.providers.transport import AiohttpTransport, MockResponse, MockTransport, Transport

ProviderFactory = Callable[[ProviderConfig, Transport], Provider]

# kind (the ``kind`` of a ProviderConfig and a catalog ProviderInfo) -> adapter class
PROVIDER_KINDS: dict[str, ProviderFactory] = {
    OpenAIProvider.kind: OpenAIProvider,
    AzureProvider.kind: AzureProvider,
    OpenAICompatibleProvider.kind: OpenAICompatibleProvider,
    AnthropicProvider.kind: AnthropicProvider,
    GoogleProvider.kind: GoogleProvider,
}


def build_provider(config: ProviderConfig, transport: Transport) -> Provider:
    """The adapter for ``config.kind``, sending through ``transport`` (shared by all adapters), its errors
    scrubbed of the provider's credentials (``redaction.py``) when it has any."""
    factory = PROVIDER_KINDS.get(config.kind)
    if factory is None:
        known = ", ".join(sorted(PROVIDER_KINDS))
        raise ValueError(
            f"provider {config.slug!r} has unknown kind {config.kind!r}; the known kinds are: {known}"
        )
    adapter = factory(config, transport)
    redactor = Redactor(credentials_of(config))
    return RedactedProvider(adapter, redactor) if redactor else adapter


__all__ = [
    "PROVIDER_KINDS",
    "AiohttpTransport",
    "CallContext",
    "Http1Transport",
    "MockResponse",
    "MockTransport",
    "Provider",
    "ProviderConfig",
    "ProviderFactory",
    "Transport",
    "build_provider",
]
