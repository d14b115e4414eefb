"""The catalog's routes: the model lists and one model, in OpenAI's (OpenRouter's) and Anthropic's shapes,
and a model's endpoints with their live figures (bodies built by ``catalog_api.py``)."""

from __future__ import annotations

from tokenmux.asgi import Receive, Scope, Send, send_bytes
from tokenmux.catalog.model import Catalog, Model
from tokenmux.errors import ModelNotFound
from tokenmux.json_codec import encode_json
from tokenmux.protocols import anthropic_messages
from tokenmux.routing.router import Router
from tokenmux.server.catalog_api import model_endpoints_json, model_json, models_json
from tokenmux.server.live_figures import LiveFigures
from tokenmux.stats import Stats

MODELS_PREFIX = "/api/v1/models/"
ANTHROPIC_MODELS_PREFIX = "/api/anthropic/v1/models/"
_ENDPOINTS = "/endpoints"


class CatalogRoutes:
    def __init__(
        self,
        *,
        catalog: Catalog,
        configured: frozenset[str],
        router: Router,
        live_figures: LiveFigures,
        stats: Stats,
    ) -> None:
        self.catalog = catalog
        self.configured = configured
        self.router = router
        self.live_figures = live_figures
        self.stats = stats
        # The lists change only with the catalog and the configuration: encoded once.
        self._models_body = encode_json(models_json(catalog, configured))
        self._anthropic_models_body = anthropic_messages.models_json(catalog)

    async def list_models(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self._models_body)

    async def list_models_anthropic(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send_bytes(send, 200, self._anthropic_models_body)

    async def model_or_endpoints(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /api/v1/models/{id}`` and ``GET /api/v1/models/{id}/endpoints``."""
        if scope["path"].endswith(_ENDPOINTS):
            await self.model_endpoints(scope, receive, send)
        else:
            await self.get_model(scope, receive, send)

    async def get_model(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /api/v1/models/{id}``: one model as an OpenAI model object; any name the model answers
        to finds it (the id may hold a slash), and the answer carries the catalog id."""
        model = self.router.resolve(scope["path"][len(MODELS_PREFIX) :])[0]
        await send_bytes(send, 200, encode_json(model_json(model, self.configured)))

    async def get_model_anthropic(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``GET /api/anthropic/v1/models/{id}``: one model as an Anthropic model object (errors in
        Anthropic's shape, as everything under its prefix)."""
        model = self.router.resolve(scope["path"][len(ANTHROPIC_MODELS_PREFIX) :])[0]
        if not _offered_through(model, "anthropic"):
            raise ModelNotFound(
                f"model {model.id!r} is not offered through the Anthropic protocol; "
                "GET /api/anthropic/v1/models lists the models that are"
            )
        await send_bytes(send, 200, encode_json(anthropic_messages.model_object(model)))

    async def model_endpoints(self, scope: Scope, receive: Receive, send: Send) -> None:
        model = self.router.resolve(scope["path"][len(MODELS_PREFIX) : -len(_ENDPOINTS)])[0]
        body = model_endpoints_json(
            model, self.catalog, self.configured, self.live_figures, self.stats.tokens_per_day(model.id)
        )
        await send_bytes(send, 200, encode_json(body))


def _offered_through(model: Model, protocol: str) -> bool:
    """Whether a chat protocol reaches the model (an embedding model is reached by none)."""
    return not model.embedding and any(protocol in e.protocols for e in model.endpoints)
