"""Settings: from the YAML file given with ``--config``, the environment, and command-line flags.

The YAML file::

    providers:
      openai: {base_url: "http://127.0.0.1:9100/openai/v1", api_key: "${OPENAI_API_KEY}"}
      azure:  {base_url: "https://res.openai.azure.com", api_key: "...", api_version: "2024-10-21",
               deployments: {gpt-4.1-nano: my-nano-deployment}}
      local:  {kind: openai-compatible, base_url: "http://127.0.0.1:8000/v1"}
    catalog: {...}            # additions and overrides, see catalog/loader.py
    gateway: {request_timeout_s: 300, max_body_bytes: 33554432, stream_keepalive_s: 1.0}
    database: "sqlite:///tokenmux.db"
    redis: "redis://127.0.0.1:6379/0"

``file.py`` reads it (``${VAR}`` anywhere is replaced by the environment variable VAR; a missing one is an
error that names it); ``document.py`` is its shape, which refuses unknown keys and wrong types naming the
setting (``providers.openai.api_kye``); ``providers.py`` fills what the file leaves out from the catalog and
the environment; ``urls.py`` is the one resolver of the database and Redis URLs (flag, environment, file,
default) that ``serve``, ``demo`` and ``keys`` share; ``settings.py`` resolves it all into ``Settings``.
"""

from tokenmux.config.document import ConfigDocument, GatewaySettings, ProviderSettings, decode_document
from tokenmux.config.file import expand_vars, read_config, read_config_file
from tokenmux.config.problems import ConfigError
from tokenmux.config.settings import Settings, build_settings
from tokenmux.config.urls import DEFAULT_DATABASE_URL, database_url, redis_url

__all__ = [
    "DEFAULT_DATABASE_URL",
    "ConfigDocument",
    "ConfigError",
    "GatewaySettings",
    "ProviderSettings",
    "Settings",
    "build_settings",
    "database_url",
    "decode_document",
    "expand_vars",
    "read_config",
    "read_config_file",
    "redis_url",
]
