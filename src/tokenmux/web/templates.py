"""The Jinja environment: autoescaping on, every template compiled once when the pages are built.

``auto_reload`` is off, so rendering never looks at the file system again; a page costs its render only.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import jinja2

from tokenmux.web import catalog_filter, formatting
from tokenmux.web.static_files import StaticFiles

PAGES = ("model.html", "models.html", "status.html", "activity.html", "not_found.html")

STATE_LABELS = {
    "up": "Up",
    "degraded": "Degraded",
    "cooling_down": "Cooling down",
    "down": "Down",
    "unknown": "No data yet",
    "not_configured": "Not configured",
}
MODERATION_LABELS = {"developer": "Responsibility of developer", "provider": "Moderated by provider"}


def outside_link(url: str | None) -> str | None:
    """A link to another site only when it is plain http(s): a ``javascript:`` URL in configuration must
    not become a clickable script."""
    if not url:
        return None
    return url if urlsplit(url).scheme in ("http", "https") else None


def yes_no(flag: object) -> str:
    if flag is None:
        return formatting.MISSING
    return "Yes" if flag else "No"


def with_unit(text: str, unit: str) -> str:
    """ "0.58" -> "0.58 s"; a missing figure stays "-" rather than "- s"."""
    return text if text == formatting.MISSING else f"{text} {unit}"


def sentence_case(text: str | None) -> str:
    if not text:
        return formatting.MISSING
    return text[:1].upper() + text[1:]


def build_environment(static: StaticFiles) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tokenmux.web", "templates"),
        autoescape=True,
        auto_reload=False,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails the tests instead of rendering blank
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        compact=formatting.compact,
        grouped=formatting.grouped,
        plain=formatting.plain,
        usd=formatting.usd,
        per_million=formatting.per_million,
        per_request=formatting.per_request,
        cost=formatting.cost,
        decimal2=formatting.decimal2,
        fixed2=formatting.fixed2,
        seconds=formatting.seconds,
        percent=formatting.percent,
        day_label=formatting.day_label,
        timestamp=formatting.timestamp,
        unix_date=formatting.unix_date,
        search_text=catalog_filter.search_text,
        input_price=catalog_filter.input_price,
        output_price=catalog_filter.output_price,
        outside_link=outside_link,
        yes_no=yes_no,
        with_unit=with_unit,
        sentence_case=sentence_case,
        state_label=lambda state: STATE_LABELS.get(state, sentence_case(state)),
        moderation_label=lambda who: MODERATION_LABELS.get(who, sentence_case(who)),
    )
    env.globals["static_url"] = static.url
    for name in PAGES:
        env.get_template(name)  # compile now; later lookups hit the cache
    return env
