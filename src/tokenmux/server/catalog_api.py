"""The catalog as the API shows it: ``GET /api/v1/models`` and a model's ``/endpoints``.

Prices follow OpenRouter's convention (USD per token, as decimal strings) so that clients written for it
read them unchanged; ``pricing_per_million`` carries the same figures the way price pages state them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tokenmux.catalog.model import Catalog, Endpoint, Model, Price

HOURS_OF_UPTIME = 72


def _per_token(per_million: float | None) -> str | None:
    if per_million is None:
        return None
    return format(Decimal(repr(per_million)) / Decimal(1_000_000), "f")


def pricing_json(price: Price) -> dict[str, Any]:
    per_token = {
        "prompt": _per_token(price.input),
        "completion": _per_token(price.output),
        "input_cache_read": _per_token(price.cache_read),
        "input_cache_write_5m": _per_token(price.cache_write_5m),
        "input_cache_write_1h": _per_token(price.cache_write_1h),
        "web_search": None if price.web_search is None else format(Decimal(repr(price.web_search)), "f"),
    }
    return {
        **per_token,
        "pricing_per_million": {
            "input": price.input,
            "output": price.output,
            "cache_read": price.cache_read,
            "cache_write_5m": price.cache_write_5m,
            "cache_write_1h": price.cache_write_1h,
            "tiers": [
                {
                    "above_tokens": t.above_tokens,
                    "input": t.input,
                    "output": t.output,
                    "cache_read": t.cache_read,
                }
                for t in price.tiers
            ],
        },
    }


def _created_unix(model: Model) -> int:
    try:
        return int(dt.datetime.fromisoformat(model.created).replace(tzinfo=dt.UTC).timestamp())
    except ValueError:
        return 0


def _architecture(model: Model) -> dict[str, Any]:
    return {
        "input_modalities": list(model.input_modalities),
        "output_modalities": list(model.output_modalities),
        "modality": f"{'+'.join(model.input_modalities)}->{'+'.join(model.output_modalities)}",
        "tokenizer": model.tokenizer,
    }


def model_json(model: Model, configured: frozenset[str]) -> dict[str, Any]:
    cheapest = min(model.endpoints, key=lambda e: (e.price.input, e.price.output))
    body = {
        "id": model.id,
        "object": "model",
        "created": _created_unix(model),
        "owned_by": model.author,
        "name": model.name,
        "description": model.description,
        "context_length": model.context_length,
        "max_output_tokens": model.max_output,
        "architecture": _architecture(model),
        "pricing": pricing_json(cheapest.price),
        "top_provider": {"context_length": model.context_length, "max_completion_tokens": model.max_output},
        "supported_parameters": sorted(model.supported_parameters),
        "providers": [e.provider for e in model.endpoints],
        "available": any(e.provider in configured for e in model.endpoints),
    }
    if model.dimensions is not None:
        body["dimensions"] = model.dimensions  # an embedding model's vector size
    return body


def models_json(catalog: Catalog, configured: frozenset[str]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [model_json(m, configured) for m in catalog.models.values()],
        "prices_as_of": catalog.prices_as_of,
    }


def prompt_logging(endpoint: Endpoint) -> str:
    days = endpoint.data_policy.retention_days
    if days is None:
        return "unknown"
    return "zero retention" if days == 0 else f"{days} day retention"


def endpoint_json(
    endpoint: Endpoint, catalog: Catalog, configured: frozenset[str], live: dict[str, Any]
) -> dict[str, Any]:
    provider = catalog.providers.get(endpoint.provider)
    policy = endpoint.data_policy
    return {
        "name": f"{provider.name if provider else endpoint.provider} | {endpoint.model_id}",
        "provider_name": endpoint.provider,
        "provider_display_name": provider.name if provider else endpoint.provider,
        "model_name": endpoint.upstream_model,
        "context_length": endpoint.context_length,
        "max_completion_tokens": endpoint.max_output,
        "pricing": pricing_json(endpoint.price),
        "supported_parameters": sorted(endpoint.supported_parameters),
        "protocols": list(endpoint.protocols),
        "data_policy": {
            "prompt_training": policy.prompt_training,
            "prompt_logging": prompt_logging(endpoint),
            "retention_days": policy.retention_days,
            "zero_retention": policy.zero_retention,
            "moderation": policy.moderation,
        },
        "status_page_url": endpoint.status_page_url or (provider.status_page_url if provider else None),
        "quantization": endpoint.quantization,
        "configured": endpoint.provider in configured,
        **live,
    }


def empty_live_figures() -> dict[str, Any]:
    """The live-figure fields with nothing measured yet (the stats module fills them)."""
    return {
        "status": "unknown",
        "uptime_last_30m": None,
        "uptime_last_1d": None,
        "uptime_hourly": [None] * HOURS_OF_UPTIME,
        "latency_last_30m": None,
        "latency_last_1d": None,
        "throughput_last_30m": None,
        "throughput_last_1d": None,
        "cache_hit_last_30m": None,
        "cache_hit_last_1d": None,
    }


def model_endpoints_json(
    model: Model,
    catalog: Catalog,
    configured: frozenset[str],
    live_for: Callable[[Endpoint], dict[str, Any]],
    tokens_per_day: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "data": {
            "id": model.id,
            "name": model.name,
            "author": model.author,
            "created": _created_unix(model),
            "description": model.description,
            "context_length": model.context_length,
            "max_output_tokens": model.max_output,
            "architecture": _architecture(model),
            "endpoints": [endpoint_json(e, catalog, configured, live_for(e)) for e in model.endpoints],
            "tokens_per_day": tokens_per_day,
        }
    }
