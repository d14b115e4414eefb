"""The catalog: models, their endpoints at each provider, prices and data policies.

``load_catalog()`` reads the data shipped in ``catalog/data`` and applies the user's overrides;
``find_model``/``close_matches`` resolve the names clients write; ``cost_usd`` prices a call.
"""

from tokenmux.catalog.loader import load_catalog
from tokenmux.catalog.lookup import close_matches, find_model
from tokenmux.catalog.model import Catalog, DataPolicy, Endpoint, Model, Price, PriceTier, ProviderInfo
from tokenmux.catalog.pricing import cost_usd, max_cost_usd
from tokenmux.errors import CatalogError

__all__ = [
    "Catalog",
    "CatalogError",
    "DataPolicy",
    "Endpoint",
    "Model",
    "Price",
    "PriceTier",
    "ProviderInfo",
    "close_matches",
    "cost_usd",
    "find_model",
    "load_catalog",
    "max_cost_usd",
]
