"""Provider kinds: the wire formats the gateway speaks upstream, in the one registry that the configuration
and the catalog both read.

The module that implements a kind registers it, at its end::

    register(ProviderKind("azure", AzureProvider, AzureSettings, env_fallbacks={"api_version": ...}))

Every module of this package (but a transport loaded on demand) is imported on the first read of the
registry, so a new kind is one new module in ``providers/`` plus catalog data, and nothing else changes. A module elsewhere (a plugin, a
test) registers the same way once it has been imported.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from tokenmux.providers.base import Provider, ProviderConfig, ProviderSettings
from tokenmux.providers.redaction import RedactedProvider, Redactor, credentials_of
from tokenmux.providers.transport import Transport

ProviderFactory = Callable[[ProviderConfig, Transport], Provider]


@dataclass(frozen=True, slots=True)
class ProviderKind:
    """One wire format: the adapter that speaks it and the settings its configuration section takes."""

    name: str  # the ``kind`` of a ProviderConfig and of a catalog provider
    adapter: ProviderFactory
    settings: type[ProviderSettings] = ProviderSettings
    # setting -> environment variable it is read from when the configuration leaves it out
    env_fallbacks: Mapping[str, str] = field(default_factory=dict)


_kinds: dict[str, ProviderKind] = {}
_built_ins_loaded = False
# Modules of the package that register no kind and are imported only when configured: the aiohttp
# transport loads aiohttp (about 9 MB) for ``gateway.http_client: aiohttp`` alone.
_ON_DEMAND = frozenset({"aiohttp_transport"})


def register(kind: ProviderKind) -> ProviderKind:
    """Make ``kind`` known; registering the same kind again is harmless, another under its name is not."""
    known = _kinds.get(kind.name)
    if known is not None and known != kind:
        raise ValueError(f"provider kind {kind.name!r} is already registered (by {known.adapter!r})")
    _kinds[kind.name] = kind
    return kind


def provider_kinds() -> Mapping[str, ProviderKind]:
    """Every registered kind by name, the package's own included."""
    _load_built_ins()
    return MappingProxyType(_kinds)


def unknown_kind_message(kind: str) -> str:
    return f"unknown provider kind {kind!r}; the known kinds are: {', '.join(sorted(provider_kinds()))}"


def build_provider(config: ProviderConfig, transport: Transport) -> Provider:
    """The adapter for ``config.kind``, sending through ``transport`` (shared by all adapters), its errors
    scrubbed of the provider's credentials (``redaction.py``) when it has any."""
    kind = provider_kinds().get(config.kind)
    if kind is None:
        raise ValueError(f"provider {config.slug!r}: {unknown_kind_message(config.kind)}")
    adapter = kind.adapter(config, transport)
    redactor = Redactor(credentials_of(config))
    return RedactedProvider(adapter, redactor) if redactor else adapter


def _load_built_ins() -> None:
    """Import every module of this package once: each adapter module registers its kind."""
    global _built_ins_loaded
    if _built_ins_loaded:
        return
    _built_ins_loaded = True
    package = importlib.import_module(__package__ or "tokenmux.providers")
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in _ON_DEMAND:
            importlib.import_module(f"{package.__name__}.{module.name}")
