"""Building a Gateway from a configuration document: the one place that knows all the parts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tokenmux.catalog.loader import load_catalog
from tokenmux.config import ConfigDocument, build_settings, decode_document
from tokenmux.providers.registry import provider_kinds
from tokenmux.providers.transport import Transport
from tokenmux.server.app import Gateway, Parts
from tokenmux.store.url import open_store


def build_gateway(
    config: Mapping[str, Any] | ConfigDocument,
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    transport: Transport | None = None,
    env: Mapping[str, str] | None = None,
) -> Gateway:
    document = decode_document(config)
    catalog = load_catalog(document.catalog or None, document.aliases or None, kinds=provider_kinds())
    settings = build_settings(document, catalog, env=env, database_url=database_url, redis_url=redis_url)
    store = open_store(settings.database_url)
    return Gateway(Parts(settings=settings, catalog=catalog, store=store, transport=transport))
