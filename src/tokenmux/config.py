"""Settings: from the YAML file given with ``--config``, the environment, and command-line flags.

The YAML file::

    providers:
      openai: {base_url: "http://127.0.0.1:9100/openai/v1", api_key: "${OPENAI_API_KEY}"}
      azure:  {base_url: "https://res.openai.azure.com", api_key: "...", api_version: "2024-10-21",
               deployments: {gpt-4.1-nano: my-nano-deployment}}
      local:  {kind: openai-compatible, base_url: "http://127.0.0.1:8000/v1"}
    catalog: {...}            # additions and overrides, see catalog/loader.py
    gateway: {request_timeout_s: 300, max_body_bytes: 67108864, stream_keepalive_s: 1.0}

``${VAR}`` anywhere in the file is replaced by the environment variable VAR; a missing one is an error that
names it. A provider's key falls back to its environment variable (``OPENAI_API_KEY``, ...). A provider of
the catalog is also configured, at its public base URL, when only its environment variable is set.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tokenmux.catalog.model import Catalog
from tokenmux.providers.base import ProviderConfig

DEFAULT_DATABASE_URL = "sqlite:///tokenmux.db"
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_KNOWN_KINDS = ("openai", "azure", "anthropic", "google", "openai-compatible")


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the fix."""


@dataclass(slots=True)
class GatewaySettings:
    request_timeout_s: float = 300.0  # one deadline for all attempts of a request
    attempt_timeout_s: float = 120.0  # per attempt, to the first byte of the answer (provider may lower it)
    max_body_bytes: int = 64 * 1024 * 1024
    max_header_bytes: int = 32 * 1024  # all header names and values of a request together; over it: 431
    max_headers: int = 100  # headers in one request; over it: 431
    stream_keepalive_s: float = 1.0  # comment lines while a stream waits for its first token
    cooldown_s: float = 10.0  # cooldown after a 429 that gave no Retry-After
    circuit_failures: int = 5  # consecutive provider failures that open an endpoint's circuit
    circuit_open_s: float = 30.0  # how long an open circuit rejects before a probe may close it
    # Upstream HTTP client: "http1" (our keep-alive HTTP/1.1 client on httptools, ~2x less CPU per call) or
    # "aiohttp" (for what http1 does not do: proxies, HTTP/2 servers that refuse HTTP/1.1).
    http_client: str = "http1"
    # A key with admin rights that is never stored (compared by digest in constant time); also
    # TOKENMUX_ADMIN_KEY. Empty: only keys made with `tokenmux keys create --admin` are admins.
    admin_key: str = ""
    # Redis calls (rate limits, reservations, shared cooldowns) give up after this long; see README "Faults".
    redis_timeout_s: float = 0.25
    # Where request records go when the database is down at shutdown; written to it at the next start.
    spool_dir: str = "tokenmux-spool"
    # Cross-origin access for browser clients, off when empty: {allow_origins: [...], allow_credentials: ...}
    cors: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Settings:
    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    catalog_overrides: dict[str, Any] = field(default_factory=dict)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None  # shared limits and health for replicas; None: kept in process


def expand_vars(value: Any, env: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` in every string of a parsed YAML document."""
    if isinstance(value, str):

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(
                    f"the configuration uses ${{{name}}}, but the environment variable {name} is not set"
                )
            return env[name]

        return _VAR.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_vars(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_vars(v, env) for v in value]
    return value


def read_config_file(path: str | Path, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"cannot read the configuration file {p}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must hold a mapping with keys such as 'providers' and 'catalog'")
    expanded: dict[str, Any] = expand_vars(data, os.environ if env is None else env)
    return expanded


def build_settings(
    data: Mapping[str, Any],
    catalog: Catalog,
    *,
    env: Mapping[str, str] | None = None,
    database_url: str | None = None,
    redis_url: str | None = None,
) -> Settings:
    """Settings from a parsed configuration document plus the environment."""
    env = os.environ if env is None else env
    gateway = _gateway_settings(data.get("gateway") or {})
    if not gateway.admin_key and env.get("TOKENMUX_ADMIN_KEY"):
        gateway.admin_key = env["TOKENMUX_ADMIN_KEY"]
    providers: dict[str, ProviderConfig] = {}
    raw_providers = data.get("providers") or {}
    if not isinstance(raw_providers, dict):
        raise ConfigError("'providers' must be a mapping of provider slug to {base_url, api_key, ...}")
    for slug, raw in raw_providers.items():
        providers[slug] = _provider_config(str(slug), raw or {}, catalog, env, gateway)
    # Providers known to the catalog whose key is in the environment are configured at their public URL.
    for slug, info in catalog.providers.items():
        if slug in providers or not info.api_key_env or not info.base_url:
            continue
        if env.get(info.api_key_env):
            providers[slug] = _provider_config(slug, {}, catalog, env, gateway)
    catalog_overrides = data.get("catalog") or {}
    if not isinstance(catalog_overrides, dict):
        raise ConfigError("'catalog' must be a mapping with 'providers' and/or 'models'")
    url = database_url or env.get("TOKENMUX_DATABASE_URL") or data.get("database") or DEFAULT_DATABASE_URL
    redis = redis_url or env.get("TOKENMUX_REDIS_URL") or data.get("redis") or None
    if redis is not None and not str(redis).startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(
            f"the Redis URL must start with redis://, rediss:// or unix://, got {str(redis)[:20]!r}"
        )
    return Settings(
        providers=providers,
        catalog_overrides=catalog_overrides,
        gateway=gateway,
        database_url=url,
        redis_url=str(redis) if redis else None,
    )


def _gateway_settings(raw: Mapping[str, Any]) -> GatewaySettings:
    if not isinstance(raw, Mapping):
        raise ConfigError("'gateway' must be a mapping")
    settings = GatewaySettings()
    for name, value in raw.items():
        if not hasattr(settings, name):
            known = ", ".join(GatewaySettings.__slots__)
            raise ConfigError(f"unknown gateway setting {name!r}; known: {known}")
        default = getattr(settings, name)
        if name == "cors" and not isinstance(value, Mapping):
            raise ConfigError("gateway.cors must be a mapping such as {allow_origins: [https://app.example]}")
        if name == "http_client" and value not in ("http1", "aiohttp"):
            raise ConfigError(f"gateway.http_client must be 'http1' or 'aiohttp', got {value!r}")
        try:
            setattr(settings, name, type(default)(value))
        except (TypeError, ValueError):
            raise ConfigError(f"gateway.{name} must be a {type(default).__name__}, got {value!r}") from None
    return settings


def _provider_config(
    slug: str, raw: Mapping[str, Any], catalog: Catalog, env: Mapping[str, str], gateway: GatewaySettings
) -> ProviderConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"providers.{slug} must be a mapping such as {{base_url: ..., api_key: ...}}")
    info = catalog.providers.get(slug)
    kind = str(raw.get("kind") or (info.kind if info else "openai-compatible"))
    if kind not in _KNOWN_KINDS:
        raise ConfigError(f"providers.{slug}.kind is {kind!r}; known kinds: {', '.join(_KNOWN_KINDS)}")
    base_url = raw.get("base_url") or (info.base_url if info else None)
    if not base_url:
        raise ConfigError(
            f"providers.{slug} needs a base_url (for Azure: https://<resource>.openai.azure.com)"
        )
    api_key = raw.get("api_key")
    key_env = (info.api_key_env if info else None) or f"{slug.upper().replace('-', '_')}_API_KEY"
    if not api_key:
        api_key = env.get(key_env)
    api_version = raw.get("api_version") or env.get("AZURE_OPENAI_API_VERSION") if kind == "azure" else None
    if kind == "azure" and not api_version:
        api_version = "2024-10-21"
    headers = raw.get("headers") or {}
    if not isinstance(headers, Mapping):
        raise ConfigError(f"providers.{slug}.headers must be a mapping of header name to value")
    for name, value in headers.items():
        # A line break in a header would let the configuration smuggle a second header or request upstream.
        if any(c in f"{name}{value}" for c in "\r\n\0"):
            raise ConfigError(f"providers.{slug}.headers.{name} must not contain a line break or NUL")
    deployments = raw.get("deployments") or {}
    if not isinstance(deployments, Mapping):
        raise ConfigError(f"providers.{slug}.deployments must map a model name to its Azure deployment")
    timeout = float(raw.get("timeout_s") or gateway.attempt_timeout_s)
    return ProviderConfig(
        slug=slug,
        kind=kind,
        base_url=str(base_url).rstrip("/"),
        api_key=str(api_key) if api_key else None,
        api_version=str(api_version) if api_version else None,
        headers=tuple((str(k), str(v)) for k, v in headers.items()),
        timeout_s=timeout,
        deployments={str(k): str(v) for k, v in deployments.items()},
    )
