"""The ``providers:`` section and the environment -> one ``ProviderConfig`` per configured provider.

A value not written in the file comes from the catalog (kind, public base URL) or the environment (the
provider's key variable, e.g. ``OPENAI_API_KEY``; Azure's ``AZURE_OPENAI_API_VERSION``). A catalog provider
whose key variable is set is configured at its public URL without a ``providers:`` entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenmux.catalog.model import Catalog
from tokenmux.config.document import GatewaySettings, ProviderSettings, decode
from tokenmux.config.problems import ConfigError
from tokenmux.providers.base import ProviderConfig

_KNOWN_KINDS = ("openai", "azure", "anthropic", "google", "openai-compatible")
DEFAULT_AZURE_API_VERSION = "2024-10-21"


def configured_providers(
    sections: Mapping[str, Any] | None, catalog: Catalog, env: Mapping[str, str], gateway: GatewaySettings
) -> dict[str, ProviderConfig]:
    """Every provider the file names, then every catalog provider whose key is in the environment."""
    providers: dict[str, ProviderConfig] = {}
    for slug, raw in (sections or {}).items():
        section = decode(raw or {}, ProviderSettings, f"providers.{slug}")
        providers[slug] = provider_config(slug, section, catalog, env, gateway)
    for slug, info in catalog.providers.items():
        if slug in providers or not info.api_key_env or not info.base_url:
            continue
        if env.get(info.api_key_env):
            providers[slug] = provider_config(slug, ProviderSettings(), catalog, env, gateway)
    return providers


def provider_config(
    slug: str, section: ProviderSettings, catalog: Catalog, env: Mapping[str, str], gateway: GatewaySettings
) -> ProviderConfig:
    where = f"providers.{slug}"
    info = catalog.providers.get(slug)
    kind = section.kind or (info.kind if info else "openai-compatible")
    if kind not in _KNOWN_KINDS:
        raise ConfigError(f"{where}.kind is {kind!r}; known kinds: {', '.join(_KNOWN_KINDS)}")
    base_url = section.base_url or (info.base_url if info else None)
    if not base_url:
        raise ConfigError(f"{where} needs a base_url (for Azure: https://<resource>.openai.azure.com)")
    key_env = (info.api_key_env if info else None) or f"{slug.upper().replace('-', '_')}_API_KEY"
    api_key = section.api_key or env.get(key_env)
    api_version = None
    if kind == "azure":
        api_version = section.api_version or env.get("AZURE_OPENAI_API_VERSION") or DEFAULT_AZURE_API_VERSION
    for name, value in section.headers.items():
        # A line break in a header would let the configuration smuggle a second header or request upstream.
        if any(c in f"{name}{value}" for c in "\r\n\0"):
            raise ConfigError(f"{where}.headers.{name} must not contain a line break or NUL")
    return ProviderConfig(
        slug=slug,
        kind=kind,
        base_url=base_url.rstrip("/"),
        api_key=api_key or None,
        api_version=api_version,
        headers=tuple(section.headers.items()),
        timeout_s=section.timeout_s or gateway.attempt_timeout_s,
        deployments=dict(section.deployments),
    )
