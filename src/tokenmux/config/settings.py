"""Settings: the configuration file, the environment and the command line's flags, resolved once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tokenmux.catalog.model import Catalog
from tokenmux.config import urls
from tokenmux.config.document import ConfigDocument, GatewaySettings, decode_document
from tokenmux.config.providers import configured_providers
from tokenmux.config.urls import DEFAULT_DATABASE_URL
from tokenmux.providers.base import ProviderConfig


@dataclass(slots=True)
class Settings:
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    catalog_overrides: dict[str, Any] = field(default_factory=dict)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None  # shared limits and health for replicas; None: kept in process


def build_settings(
    data: Mapping[str, Any] | ConfigDocument,
    catalog: Catalog,
    *,
    env: Mapping[str, str] | None = None,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> Settings:
    """Settings from a parsed configuration document plus the environment; ``database_url`` and
    ``redis_url`` are the command line's flags (``config/urls.py`` says what else they come from)."""
    env = os.environ if env is None else env
    document = decode_document(data)
    gateway = document.gateway or GatewaySettings()
    if not gateway.admin_key and env.get("TOKENMUX_ADMIN_KEY"):
        gateway = msgspec.structs.replace(gateway, admin_key=env["TOKENMUX_ADMIN_KEY"])
    return Settings(
        providers=configured_providers(document.providers, catalog, env, gateway),
        catalog_overrides=document.catalog or {},
        gateway=gateway,
        database_url=urls.database_url(database_url, document, env),
        redis_url=urls.redis_url(redis_url, document, env),
    )
