"""The gateway's one route table: every path the API answers, the handler of each, and what each handler is
given (only the services it uses).

To add a route: write its handler (an ASGI callable, usually a small class in its own module taking its
services as constructor arguments), then add one ``Route`` line below. Paths the table does not claim go to
the web pages (``web/pages.py``, built at the first page request by ``web/on_demand.py``), then to a 404.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from tokenmux.server.anthropic_inbound import AnthropicMessages
from tokenmux.server.catalog_routes import ANTHROPIC_MODELS_PREFIX, MODELS_PREFIX, CatalogRoutes
from tokenmux.server.chat import ChatRoute
from tokenmux.server.count_tokens import AnthropicCounting, CountTokensRoute
from tokenmux.server.dispatch import Route, RouteTable
from tokenmux.server.embeddings_route import EmbeddingsRoute
from tokenmux.server.gemini_inbound import GEMINI_PREFIX, GeminiCounting, GeminiGenerate, GeminiRoutes
from tokenmux.server.generation_api import GenerationRoute
from tokenmux.server.key_api import KEYS_PREFIX, KeyApi
from tokenmux.server.lifecycle import Lifecycle
from tokenmux.server.live_figures import LiveFigures
from tokenmux.server.openai_inbound import OpenAIChat
from tokenmux.server.ops_routes import OpsRoutes
from tokenmux.server.pages_source import GatewayPages
from tokenmux.server.parts import Parts
from tokenmux.server.responses_inbound import OpenAIResponses
from tokenmux.web.on_demand import PagesOnDemand

if TYPE_CHECKING:
    from tokenmux.web.pages import WebPages


def route_table(parts: Parts, lifecycle: Lifecycle) -> RouteTable:
    gw = parts.settings.gateway
    chat = partial(
        ChatRoute,
        keys=parts.keys,
        key_limits=parts.key_limits,
        router=parts.router,
        affinity=parts.affinity,
        ledger=parts.ledger,
        attempts=parts.attempts,
        contents=parts.contents,
        metrics=parts.metrics,
        bodies=parts.bodies,
        max_body_bytes=gw.max_body_bytes,
        keepalive_s=gw.stream_keepalive_s,
    )
    count_tokens = partial(
        CountTokensRoute,
        keys=parts.keys,
        key_limits=parts.key_limits,
        router=parts.router,
        metrics=parts.metrics,
        bodies=parts.bodies,
        max_body_bytes=gw.max_body_bytes,
    )
    gemini = GeminiRoutes(
        generate=chat(GeminiGenerate()),
        count=count_tokens(GeminiCounting()),
        catalog=parts.catalog,
        router=parts.router,
        metrics=parts.metrics,
    )
    embeddings = EmbeddingsRoute(
        keys=parts.keys,
        key_limits=parts.key_limits,
        router=parts.router,
        providers=parts.providers,
        ledger=parts.ledger,
        attempts=parts.attempts,
        contents=parts.contents,
        metrics=parts.metrics,
        bodies=parts.bodies,
        max_body_bytes=gw.max_body_bytes,
    )
    live_figures = LiveFigures(parts.stats, parts.health, parts.configured)
    catalog = CatalogRoutes(
        catalog=parts.catalog,
        configured=parts.configured,
        router=parts.router,
        live_figures=live_figures,
        stats=parts.stats,
    )
    keys = KeyApi(
        keys=parts.keys,
        key_limits=parts.key_limits,
        ledger=parts.ledger,
        store=parts.store,
        key_changed=parts.key_changed,
    )
    generation = GenerationRoute(keys=parts.keys, recorder=parts.recorder)
    ops = OpsRoutes(
        lifecycle=lifecycle,
        store=parts.store,
        redis_link=parts.redis_link,
        ledger=parts.ledger,
        recorder=parts.recorder,
        metrics=parts.metrics,
    )
    page_source = GatewayPages(
        catalog=parts.catalog,
        configured=parts.configured,
        live_figures=live_figures,
        stats=parts.stats,
        health=parts.health,
        keys=parts.keys,
        public_url=parts.public_url,
    )
    pages = PagesOnDemand(partial(_web_pages, page_source))
    routes = [
        # OpenAI's protocols (and OpenRouter's extensions)
        Route("POST", "/api/v1/chat/completions", chat(OpenAIChat())),
        Route("POST", "/api/v1/responses", chat(OpenAIResponses())),
        Route("POST", "/api/v1/embeddings", embeddings),
        Route("GET", "/api/v1/models", catalog.list_models),
        Route("GET", MODELS_PREFIX, catalog.model_or_endpoints, prefix=True),
        Route("GET", "/api/v1/generation", generation),
        # keys and usage
        Route("GET", "/api/v1/key", keys.current_key),
        Route("GET", "/api/v1/keys", keys.list_keys),
        Route("POST", "/api/v1/keys", keys.create_key),
        Route("GET", KEYS_PREFIX, keys.key_route, prefix=True),
        Route("PATCH", KEYS_PREFIX, keys.key_route, prefix=True),
        Route("DELETE", KEYS_PREFIX, keys.key_route, prefix=True),
        Route("GET", "/api/v1/usage", keys.usage),
        # Anthropic's protocol
        Route("POST", "/api/anthropic/v1/messages", chat(AnthropicMessages())),
        Route("POST", "/api/anthropic/v1/messages/count_tokens", count_tokens(AnthropicCounting())),
        Route("GET", "/api/anthropic/v1/models", catalog.list_models_anthropic),
        Route("GET", ANTHROPIC_MODELS_PREFIX, catalog.get_model_anthropic, prefix=True),
        # Gemini's protocol: the model name (which may hold slashes) and the method share the path
        Route("GET", GEMINI_PREFIX, gemini, prefix=True, shown=f"{GEMINI_PREFIX}v1beta/models/{{model}}"),
        Route(
            "POST",
            GEMINI_PREFIX,
            gemini,
            prefix=True,
            shown=f"{GEMINI_PREFIX}v1beta/models/{{model}}:generateContent",
        ),
        # operations
        Route("GET", "/health", ops.health_check),
        Route("GET", "/ready", ops.ready_check),
        Route("GET", "/metrics", ops.metrics_page),
    ]
    return RouteTable(routes, pages=pages.route, metrics=parts.metrics)


def _web_pages(source: GatewayPages) -> WebPages:
    from tokenmux.web.pages import WebPages  # here: Jinja2 is imported only when a page is first asked for

    return WebPages(source)
