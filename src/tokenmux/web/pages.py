"""The web pages as plain ASGI handlers: a model page, the models list, status and a key's activity.

``WebPages.route(method, path)`` answers the handler for a path the API did not claim, or None. Handlers
read everything from a ``PageSource`` (the same payloads as the JSON API) and render templates compiled
once at start-up; a page costs one payload call and one render.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from tokenmux.asgi import (
    AsgiApp,
    Receive,
    Scope,
    Send,
    read_form,
    redirect,
    send_html,
)
from tokenmux.catalog.lookup import close_matches, find_model
from tokenmux.errors import AuthenticationFailed, FormTooLarge
from tokenmux.web.catalog_filter import (
    CONTEXT_CHOICES,
    PRICE_CHOICES,
    SORTS,
    ModelQuery,
    filter_choices,
)
from tokenmux.web.charts import HourBar, hourly_uptime_bars, responsive_daily_chart
from tokenmux.web.model_view import model_page_view
from tokenmux.web.page_paths import page_handler_name
from tokenmux.web.source import PageSource
from tokenmux.web.static_files import StaticFiles
from tokenmux.web.templates import PAGES, STATE_LABELS, build_environment

# A form carrying one API key is tiny; anything larger is not our form.
FORM_LIMIT = 4096
# What a key's page shows must not stay in shared caches or the browser's back-forward history on disk.
NO_STORE = [(b"cache-control", b"no-store")]
PAGE_CACHE = [(b"cache-control", b"no-cache")]
PROBLEM_STATES = ("degraded", "cooling_down", "down")


@dataclass(frozen=True, slots=True)
class StatusRow:
    provider: Mapping[str, Any]
    bars: tuple[HourBar, ...]


class WebPages:
    def __init__(
        self,
        source: PageSource,
        *,
        clock: Callable[[], float] = time.time,
        static: StaticFiles | None = None,
    ) -> None:
        self.source = source
        self.clock = clock
        self.static = static or StaticFiles()
        env = build_environment(self.static)
        self._templates = {name: env.get_template(name) for name in PAGES}

    def route(self, method: str, path: str) -> AsgiApp | None:
        name = page_handler_name(method, path)
        return None if name is None else getattr(self, name)

    # -- rendering ------------------------------------------------------------------------------------

    def _render(self, template: str, nav: str, **context: Any) -> str:
        return self._templates[template].render(
            nav=nav, prices_as_of=self.source.catalog.prices_as_of, **context
        )

    async def not_found_page(
        self, scope: Scope, receive: Receive, send: Send, message: str = "", suggestions: Sequence[str] = ()
    ) -> None:
        html = self._render(
            "not_found.html",
            "",
            message=message or "There is nothing at this address.",
            suggestions=list(suggestions),
        )
        await send_html(send, 404, html)

    # -- handlers -------------------------------------------------------------------------------------

    async def home(self, scope: Scope, receive: Receive, send: Send) -> None:
        await redirect(send, "/models")

    async def model_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        model_id = scope["path"][1:]
        payload = self.source.model_payload(model_id)
        if payload is None:
            catalog = self.source.catalog
            known = find_model(catalog, model_id)
            if known is not None and known.id != model_id:
                # A loosely written name ("OpenAI/GPT-4.1-Nano") gets the page's one canonical address.
                await redirect(send, "/" + quote(known.id))
                return
            await self.not_found_page(
                scope,
                receive,
                send,
                message=f"No model is called “{model_id}” in this gateway's catalog.",
                suggestions=close_matches(catalog, model_id),
            )
            return
        view = model_page_view(payload, self.source.base_url(scope), self.clock())
        await send_html(send, 200, self._render("model.html", "models", view=view), PAGE_CACHE)

    async def models_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        entries = self.source.models_payload()
        query = ModelQuery.from_query_string(scope.get("query_string", b""))
        chosen = {id(e) for e in query.select(entries)}
        # Every model is rendered, in the chosen order, and the ones filtered out are hidden: the page is
        # right without JavaScript, and the script can widen a filter without asking the server again.
        ordered = ModelQuery(sort=query.sort).select(entries)
        rows = [{"entry": e, "visible": id(e) in chosen} for e in ordered]
        provider_names = {slug: p.name for slug, p in self.source.catalog.providers.items()}
        html = self._render(
            "models.html",
            "models",
            query=query,
            rows=rows,
            shown=len(chosen),
            choices=filter_choices(entries, provider_names),
            provider_names=provider_names,
            context_choices=CONTEXT_CHOICES,
            price_choices=PRICE_CHOICES,
            sorts=SORTS,
        )
        await send_html(send, 200, html, PAGE_CACHE)

    async def status_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        providers = self.source.status_payload()
        now = self.clock()
        rows = [StatusRow(p, hourly_uptime_bars(p.get("uptime_hourly") or (), now)) for p in providers]
        html = self._render("status.html", "status", rows=rows, summary=status_summary(providers))
        await send_html(send, 200, html, PAGE_CACHE)

    async def activity_page(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await self._activity_form(send, 200)
            return
        try:
            form = await read_form(receive, FORM_LIMIT)
        except FormTooLarge:
            await self._activity_form(send, 413, "That form was too large. Paste only the API key.")
            return
        key = form.get("key", "").strip()
        if not key:
            await self._activity_form(send, 400, "Enter an API key.")
            return
        try:
            activity = await self.source.activity_payload(key)
        except AuthenticationFailed:
            await self._activity_form(send, 401, "That key is not valid: check it was pasted whole.")
            return
        by_day = activity.get("by_day") or []
        html = self._render(
            "activity.html",
            "activity",
            activity=activity,
            error=None,
            activity_totals=activity_totals(by_day),
            tokens_chart=responsive_daily_chart(
                [(d["date"], float(d["prompt_tokens"] + d["completion_tokens"])) for d in by_day],
                unit="tokens",
            ),
        )
        await send_html(send, 200, html, NO_STORE)

    async def _activity_form(self, send: Send, status: int, error: str | None = None) -> None:
        html = self._render("activity.html", "activity", activity=None, error=error)
        await send_html(send, status, html, NO_STORE)


def activity_totals(by_day: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    fields = ("requests", "prompt_tokens", "completion_tokens", "cost_usd")
    return {name: sum(d[name] for d in by_day) for name in fields}


def status_summary(providers: Sequence[Mapping[str, Any]]) -> str:
    """One sentence a person reads first: all is well, or which providers are not."""
    configured = [p for p in providers if p["state"] != "not_configured"]
    if not configured:
        return "No provider is configured yet: add a provider key to start routing."
    troubled = [p for p in configured if p["state"] in PROBLEM_STATES]
    if not troubled:
        unmeasured = sum(1 for p in configured if p["state"] == "unknown")
        if unmeasured == len(configured):
            return f"No traffic measured yet on the {_providers(len(configured))} configured."
        return f"All systems operational: {_providers(len(configured))} configured."
    named = ", ".join(f"{p['name']} is {STATE_LABELS[p['state']].lower()}" for p in troubled)
    verb = "needs" if len(troubled) == 1 else "need"
    return f"{len(troubled)} of {_providers(len(configured))} {verb} attention: {named}."


def _providers(n: int) -> str:
    return "1 provider" if n == 1 else f"{n} providers"
