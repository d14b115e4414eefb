"""Upstream adapters, one module per wire format, and the registry that builds them from configuration.

Each adapter module registers its kind (``registry.py``); routing and the server only call
``build_provider``.
"""

from __future__ import annotations

from tokenmux.providers.base import CallContext, Provider, ProviderConfig, ProviderSettings
from tokenmux.providers.http1 import Http1Transport
from tokenmux.providers.registry import (
    ProviderFactory,
    ProviderKind,
    build_provider,
    provider_kinds,
    register,
)
from tokenmux.providers.transport import MockResponse, MockTransport, Transport

__all__ = [
    "CallContext",
    "Http1Transport",
    "MockResponse",
    "MockTransport",
    "Provider",
    "ProviderConfig",
    "ProviderFactory",
    "ProviderKind",
    "ProviderSettings",
    "Transport",
    "build_provider",
    "provider_kinds",
    "register",
]
