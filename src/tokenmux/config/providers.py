"""The ``providers:`` section and the environment -> one ``ProviderConfig`` per configured provider.

Each section is checked as the settings of its kind (``providers/registry.py``). A value not written in
the file comes from the catalog (kind, public base URL) or the environment (the provider's key variable,
e.g. ``OPENAI_API_KEY``, and the kind's own fallbacks, e.g. Azure's ``AZURE_OPENAI_API_VERSION``). A
catalog provider whose key variable is set is configured at its public URL without a ``providers:`` entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenmux.catalog.model import Catalog
from tokenmux.config.document import GatewaySettings, decode
from tokenmux.config.problems import ConfigError
from tokenmux.providers.base import ProviderConfig
from tokenmux.providers.registry import ProviderKind, provider_kinds, unknown_kind_message

DEFAULT_KIND = "openai-compatible"  # a provider the catalog does not know


def configured_providers(
    sections: Mapping[str, Any] | None, catalog: Catalog, env: Mapping[str, str], gateway: GatewaySettings
) -> dict[str, ProviderConfig]:
    """Every provider the file names, then every catalog provider whose key is in the environment."""
    providers: dict[str, ProviderConfig] = {}
    for slug, raw in (sections or {}).items():
        providers[slug] = provider_config(slug, raw or {}, catalog, env, gateway)
    for slug, info in catalog.providers.items():
        if slug in providers or not info.api_key_env or not info.base_url:
            continue
        if env.get(info.api_key_env):
            providers[slug] = provider_config(slug, {}, catalog, env, gateway)
    return providers


def provider_config(
    slug: str, raw: Any, catalog: Catalog, env: Mapping[str, str], gateway: GatewaySettings
) -> ProviderConfig:
    where = f"providers.{slug}"
    info = catalog.providers.get(slug)
    kind = _kind(raw, info.kind if info else DEFAULT_KIND, where)
    section = decode(_with_env_fallbacks(raw, kind, env), kind.settings, where)
    base_url = section.base_url or (info.base_url if info else None)
    if not base_url:
        raise ConfigError(f"{where} needs a base_url (for Azure: https://<resource>.openai.azure.com)")
    key_env = (info.api_key_env if info else None) or f"{slug.upper().replace('-', '_')}_API_KEY"
    for name, value in section.headers.items():
        # A line break in a header would let the configuration smuggle a second header or request upstream.
        if any(c in f"{name}{value}" for c in "\r\n\0"):
            raise ConfigError(f"{where}.headers.{name} must not contain a line break or NUL")
    return ProviderConfig(
        slug=slug,
        kind=kind.name,
        base_url=base_url.rstrip("/"),
        api_key=section.api_key or env.get(key_env) or None,
        headers=tuple(section.headers.items()),
        timeout_s=section.timeout_s or gateway.attempt_timeout_s,
        settings=section,
    )


def _kind(raw: Any, default: str, where: str) -> ProviderKind:
    """The kind a section names, else ``default``; read before the section, whose keys depend on it."""
    written = raw.get("kind") if isinstance(raw, Mapping) else None
    if written is not None and not isinstance(written, str):
        raise ConfigError(f"{where}.kind must be text, the name of a provider kind")
    name = written or default
    kind = provider_kinds().get(name)
    if kind is None:
        raise ConfigError(f"{where}.kind: {unknown_kind_message(name)}")
    return kind


def _with_env_fallbacks(raw: Any, kind: ProviderKind, env: Mapping[str, str]) -> Any:
    """The section with the kind's environment fallbacks filled in where it leaves them out."""
    if not isinstance(raw, Mapping):
        return raw  # decoding says what is wrong with it
    unset = {
        name: env[var] for name, var in kind.env_fallbacks.items() if raw.get(name) is None and env.get(var)
    }
    return {**raw, **unset} if unset else raw
