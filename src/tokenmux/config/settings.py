"""Settings: the configuration file, the environment and the command line's flags, resolved once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tokenmux.catalog.model import Catalog
from tokenmux.config.document import ConfigDocument, GatewaySettings, decode_document
from tokenmux.config.problems import ConfigError
from tokenmux.config.providers import configured_providers
from tokenmux.providers.base import ProviderConfig

DEFAULT_DATABASE_URL = "sqlite:///tokenmux.db"


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
    """Settings from a parsed configuration document plus the environment."""
    env = os.environ if env is None else env
    document = decode_document(data)
    gateway = document.gateway or GatewaySettings()
    if not gateway.admin_key and env.get("TOKENMUX_ADMIN_KEY"):
        gateway = msgspec.structs.replace(gateway, admin_key=env["TOKENMUX_ADMIN_KEY"])
    url = database_url or env.get("TOKENMUX_DATABASE_URL") or document.database or DEFAULT_DATABASE_URL
    redis = redis_url or env.get("TOKENMUX_REDIS_URL") or document.redis or None
    if redis is not None and not redis.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"the Redis URL must start with redis://, rediss:// or unix://, got {redis[:20]!r}")
    return Settings(
        providers=configured_providers(document.providers, catalog, env, gateway),
        catalog_overrides=document.catalog or {},
        gateway=gateway,
        database_url=url,
        redis_url=redis,
    )
