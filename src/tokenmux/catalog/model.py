"""Catalog values: a Model, its Endpoints (the model at one provider), their Price and DataPolicy.

All prices are USD per million tokens (``web_search`` is USD per request), as public price pages state them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenmux.catalog.name_grams import NameGrams


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Prices that apply instead of the base ones when the prompt is larger than ``above_tokens``."""

    above_tokens: int
    input: float
    output: float
    cache_read: float | None = None
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None


@dataclass(frozen=True, slots=True)
class Price:
    input: float
    output: float
    cache_read: float | None = None
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None
    web_search: float | None = None  # USD per request that used web search
    tiers: tuple[PriceTier, ...] = ()  # ascending by above_tokens


@dataclass(frozen=True, slots=True)
class DataPolicy:
    prompt_training: bool = False
    # None: retention unknown; 0: zero retention; N: prompts kept N days.
    retention_days: int | None = None
    moderation: str = "developer"  # "developer" (responsibility of the developer) | "provider"

    @property
    def zero_retention(self) -> bool:
        return self.retention_days == 0


@dataclass(frozen=True, slots=True)
class Endpoint:
    model_id: str  # "author/slug"
    provider: str  # provider slug, e.g. "openai", "azure", "groq"
    upstream_model: str  # the model name (or Azure deployment) the provider expects
    context_length: int
    max_output: int
    price: Price
    supported_parameters: frozenset[str]
    protocols: tuple[str, ...] = ("openai",)  # inbound protocols this endpoint is offered through
    data_policy: DataPolicy = field(default_factory=DataPolicy)
    status_page_url: str | None = None
    quantization: str | None = None
    # Other names the provider gives this model (dated snapshots such as "claude-sonnet-4-5-20250929"):
    # clients may send them; the request still goes upstream as ``upstream_model``.
    snapshots: tuple[str, ...] = ()
    # Where the price and limits come from when not from the public price table (kept by the importer).
    source: str | None = None
    # Stable identity of the endpoint in health state, stats and the request log: "model@provider".
    # Stored, not derived per call: routing reads it several times per request.
    key: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.model_id}@{self.provider}")


@dataclass(frozen=True, slots=True)
class Model:
    id: str  # "author/slug"
    name: str
    author: str
    description: str
    created: str  # ISO date the model was released
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    context_length: int
    max_output: int
    tokenizer: str  # "o200k" | "cl100k" | "claude" | "gemini" | "llama3" | ... (family, for prompt fitting)
    endpoints: tuple[Endpoint, ...]
    supported_parameters: frozenset[str] = frozenset()  # union over endpoints
    # An embedding model's vector size when the request asks for none (the most it gives); None: unknown,
    # or not an embedding model.
    dimensions: int | None = None

    @property
    def slug(self) -> str:
        return self.id.split("/", 1)[1]

    @property
    def embedding(self) -> bool:
        """An embedding model: it answers with vectors, never with a chat message."""
        return self.output_modalities == ("embeddings",)


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """A provider as the catalog knows it: which adapter speaks to it and where it lives by default."""

    slug: str
    name: str
    kind: str  # adapter: "openai" | "azure" | "anthropic" | "google" | "openai-compatible"
    base_url: str | None = None  # default public base URL (None when it must be configured, e.g. Azure)
    status_page_url: str | None = None
    api_key_env: str | None = None  # environment variable that supplies its key


@dataclass(slots=True)
class Catalog:
    models: dict[str, Model]
    providers: dict[str, ProviderInfo]
    prices_as_of: str  # ISO date the shipped prices were taken
    prices_source: str = ""
    # Every name a model answers to, lower-cased -> the ids it may mean (several when ambiguous): ids,
    # configured aliases, providers' names, bare slugs. Built once, so that resolving a name is one dict
    # lookup (see ``lookup``); worked out on first use when not given.
    names: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # For "did you mean": built on the first unknown name (see ``lookup.close_matches``).
    name_grams: NameGrams | None = field(default=None, repr=False, compare=False)

    def endpoints_of(self, model_id: str) -> tuple[Endpoint, ...]:
        model = self.models.get(model_id)
        return model.endpoints if model else ()
