"""The pages rendered server-side against a fake PageSource: figures, formatting, filters, escaping, files."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fake_pages import (
    AZURE_HOURLY,
    GOOD_KEY,
    HOSTILE,
    NANO,
    NOW,
    FakePageSource,
    hostile_catalog,
    pages_app,
)

from tokenmux.asgi import Message
from tokenmux.catalog import load_catalog
from tokenmux.web import WebPages, formatting
from tokenmux.web.catalog_filter import ModelQuery
from tokenmux.web.charts import daily_bar_chart, hourly_uptime_bars, nice_ceiling, uptime_level
from tokenmux.web.pages import status_summary
from tokenmux.web.samples import code_samples
from tokenmux.web.static_files import load_static_files

BASE = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog()


@pytest.fixture(scope="module")
def source(catalog: Any) -> FakePageSource:
    return FakePageSource(catalog)


@pytest.fixture(scope="module")
def pages(source: FakePageSource) -> WebPages:
    return WebPages(source, clock=lambda: NOW)  # compiling the templates is the slow part: once per module


@pytest.fixture
def client(pages: WebPages, source: FakePageSource) -> Iterator[httpx.AsyncClient]:
    source.activity_calls.clear()
    yield httpx.AsyncClient(transport=httpx.ASGITransport(app=pages_app(pages)), base_url=BASE)


def between(text: str, start: str, end: str) -> str:
    """The part of ``text`` from ``start`` up to the next ``end``; fails the test when either is missing."""
    at = text.index(start)
    return text[at : text.index(end, at + len(start))]


def visible_model_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-model="([^"]+)"(?:(?!>).)*?(?<! hidden)>', page, flags=re.S)


def all_model_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-model="([^"]+)"', page)


# -- formatting ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (1_047_576, "1.05M"),
        (32_768, "32.77K"),
        (128_000, "128K"),
        (200_000, "200K"),
        (999_999, "1M"),  # rounds into the next unit rather than "1000K"
        (2_500_000_000, "2.5B"),
        (950, "950"),
        (0, "0"),
        (None, "-"),
    ],
)
def test_compact_counts_like_the_seed_page(value: int | None, shown: str) -> None:
    assert formatting.compact(value) == shown


def test_prices_and_figures_like_the_seed_page() -> None:
    assert formatting.per_million(0.1) == "$ 0.1 / M tokens"
    assert formatting.per_million(0.4) == "$ 0.4 / M tokens"
    assert formatting.per_million(None) == "-"
    assert formatting.usd(0.025) == "$ 0.025"
    assert formatting.usd(0.03) == "$ 0.03"
    assert formatting.usd(15.0) == "$ 15"
    assert formatting.per_request(0.01) == "$ 0.01 / request"
    assert formatting.decimal2(1296.4321) == "1296.43"
    assert formatting.decimal2(1149.0) == "1149"
    assert formatting.decimal2(None) == "-"
    assert formatting.fixed2(12.05) == "12.05"
    assert formatting.fixed2(100.0) == "100.00"
    assert formatting.seconds(580.0) == "0.58"
    assert formatting.seconds(None) == "-"
    assert formatting.percent(99.5) == "99.50%"
    assert formatting.cost(0.00013) == "$ 0.00013"
    assert formatting.cost(1234.5) == "$ 1,234.50"
    assert formatting.grouped(1_047_576) == "1,047,576"


def test_times_read_as_people_write_them() -> None:
    assert formatting.hour_label(NOW) == "Oct 10, 2025 - 3 PM UTC"
    assert formatting.hour_label(NOW - 15 * 3600) == "Oct 10, 2025 - 12 AM UTC"
    assert formatting.hour_label(NOW - 3 * 3600) == "Oct 10, 2025 - 12 PM UTC"
    assert formatting.day_label("2025-10-03") == "Oct 3"
    assert formatting.timestamp("2025-10-10T15:04:05.123Z") == "2025-10-10 15:04:05 UTC"
    assert formatting.unix_date(1_744_588_800) == "Apr 14, 2025"


# -- charts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uptime", "level"),
    [
        (100.0, "good"),
        (95.0, "good"),
        (94.99, "fair"),
        (85.0, "fair"),
        (84.99, "poor"),
        (0.0, "poor"),
        (None, "none"),
    ],
)
def test_uptime_colour_thresholds(uptime: float | None, level: str) -> None:
    assert uptime_level(uptime) == level


def test_hourly_bars_end_at_the_current_hour_with_the_figure_on_hover() -> None:
    bars = hourly_uptime_bars(AZURE_HOURLY, NOW)
    assert len(bars) == 72
    assert bars[-1].title == "Oct 10, 2025 - 3 PM UTC: 100.00%"
    assert bars[0].title == "Oct 7, 2025 - 4 PM UTC: 100.00%"
    assert [b.level for b in bars[-7:-1]] == ["fair", "good", "none", "poor", "fair", "good"]
    assert bars[-5].title == "Oct 10, 2025 - 11 AM UTC: no traffic"
    assert bars[-4].title == "Oct 10, 2025 - 12 PM UTC: 50.00%"


def test_daily_chart_scales_bars_to_a_round_axis() -> None:
    assert [nice_ceiling(v) for v in (7, 10, 11, 180, 2400, 0)] == [10, 10, 20, 200, 2500, 1]
    chart = daily_bar_chart([("2025-10-01", 50.0), ("2025-10-02", 100.0), ("2025-10-03", 0.0)], unit="tokens")
    half, full, empty = chart.bars
    assert full.height == pytest.approx(2 * half.height)
    assert full.y + full.height == pytest.approx(chart.plot_bottom)
    assert empty.height == 0
    assert [t.label for t in chart.grid] == ["0", "25", "50", "75", "100"]
    assert half.title == "Oct 1: 50 tokens"
    assert chart.days[-1].label == "Oct 3"  # the latest day is always labelled
    assert daily_bar_chart([], unit="tokens").empty


# -- model page ----------------------------------------------------------------------------------------


async def test_model_page_shows_the_model_and_both_providers_figures(client: httpx.AsyncClient) -> None:
    r = await client.get(f"/{NANO}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    page = r.text
    assert "<h1>OpenAI: GPT-4.1 Nano</h1>" in page
    assert "fastest and cheapest model in the GPT-4.1 series" in page
    facts = between(page, '<dl class="facts">', "</dl>")
    for shown in (
        "openai",
        "Apr 14, 2025",
        '<span class="chip">text</span>',
        '<span class="chip">image</span>',
        "1.05M",
        "32.77K",
    ):
        assert shown in facts

    throughput = between(page, 'id="throughput-table"', "</table>")
    latency = between(page, 'id="latency-table"', "</table>")
    azure_t = between(throughput, 'data-provider="azure"', "</tr>")
    openai_t = between(throughput, 'data-provider="openai"', "</tr>")
    assert re.findall(r">([\d.-]+)</td>", azure_t) == ["6.25", "108.82", "29.85"]
    assert re.findall(r">([\d.-]+)</td>", openai_t) == ["8.54", "80.78", "17.45"]
    assert re.findall(r">([\d.-]+)</td>", between(latency, 'data-provider="azure"', "</tr>")) == [
        "1149",
        "1800",
        "1296.43",
    ]
    assert re.findall(r">([\d.-]+)</td>", between(latency, 'data-provider="openai"', "</tr>")) == [
        "540",
        "722",
        "627.59",
    ]
    # The best average of each table is marked: azure is faster, openai answers sooner.
    assert 'best" title="Fastest provider">29.85' in azure_t
    assert 'best" title="Quickest first token">627.59' in latency

    openai_card = between(page, 'id="provider-openai"', "</article>")
    azure_card = between(page, 'id="provider-azure"', "</article>")
    assert ">0.63<small>s</small>" in openai_card
    assert ">17.45<small>tps</small>" in openai_card
    assert ">100.00<small>%</small>" in openai_card
    assert "30 min: 0.61 s" in openai_card
    assert ">1.30<small>s</small>" in azure_card
    assert ">29.85<small>tps</small>" in azure_card
    assert ">97.31<small>%</small>" in azure_card
    assert "30 min: 90.00%" in azure_card
    assert "Degraded" in azure_card and ">Up<" in openai_card
    # The share of prompt tokens each provider read from its prompt cache, "-" where none was measured.
    openai_cache = between(openai_card, 'data-metric="cache-hits"', "</div>")
    assert ">62.50<small>%</small>" in openai_cache and "30 min: 81.25%" in openai_cache
    azure_cache = between(azure_card, 'data-metric="cache-hits"', "</div>")
    assert 'class="metric-value">-</span>' in azure_cache and "30 min: -" in azure_cache


async def test_provider_cards_carry_prices_limits_parameters_and_policy(client: httpx.AsyncClient) -> None:
    page = (await client.get(f"/{NANO}")).text
    openai_card = between(page, 'id="provider-openai"', "</article>")
    azure_card = between(page, 'id="provider-azure"', "</article>")

    def price(card: str, label: str) -> str:
        row = between(card, f"<dt>{label}</dt>", "</div>")
        return re.sub(r"<[^>]+>", "", row.split("</dt>", 1)[1]).strip()

    assert price(openai_card, "Input") == "$ 0.1 / M tokens"
    assert price(openai_card, "Output") == "$ 0.4 / M tokens"
    assert price(openai_card, "Cache read") == "$ 0.025 / M tokens"
    assert price(azure_card, "Cache read") == "$ 0.03 / M tokens"
    for missing in ("Cache write 5m", "Cache write 1h", "Web search"):
        assert price(openai_card, missing) == "-"
    assert price(openai_card, "Context") == "1.05M"
    assert price(openai_card, "Max output") == "32.77K"
    assert price(openai_card, "Prompt training") == "No"
    assert price(openai_card, "Prompt logging") == "Zero retention"
    assert price(azure_card, "Prompt logging") == "30 day retention"
    assert price(azure_card, "Moderation") == "Responsibility of developer"
    for parameter in (
        "max_completion_tokens",
        "temperature",
        "logit_bias",
        "response_format",
        "parallel_tool_calls",
    ):
        assert f'<li class="chip">{parameter}</li>' in openai_card
    assert '<li class="chip protocol">openai</li>' in openai_card
    assert '<li class="chip protocol">anthropic</li>' in openai_card
    assert 'href="https://status.openai.com"' in openai_card
    assert 'href="https://azure.status.microsoft"' in azure_card


async def test_uptime_bars_are_coloured_by_threshold_with_the_figure_on_hover(
    client: httpx.AsyncClient,
) -> None:
    page = (await client.get(f"/{NANO}")).text
    azure_bars = between(between(page, 'id="provider-azure"', "</article>"), 'class="uptime-bars"', "</div>")
    bars = re.findall(r'<span class="hour (\w+)" title="([^"]+)"></span>', azure_bars)
    assert len(bars) == 72
    assert bars[-4] == ("poor", "Oct 10, 2025 - 12 PM UTC: 50.00%")
    assert bars[-3] == ("fair", "Oct 10, 2025 - 1 PM UTC: 90.00%")
    assert bars[-2] == ("good", "Oct 10, 2025 - 2 PM UTC: 96.50%")
    assert bars[-5] == ("none", "Oct 10, 2025 - 11 AM UTC: no traffic")
    openai_bars = between(
        between(page, 'id="provider-openai"', "</article>"), 'class="uptime-bars"', "</div>"
    )
    levels = re.findall(r'<span class="hour (\w+)"', openai_bars)
    assert levels == ["none"] * 48 + ["good"] * 24


async def test_activity_chart_shows_tokens_per_day(client: httpx.AsyncClient) -> None:
    page = (await client.get(f"/{NANO}")).text
    chart = between(page, '<svg class="chart"', "</svg>")
    titles = re.findall(r"<title>([^<]+)</title>", chart)
    assert len(titles) == 30
    assert titles[0] == "Sep 11: 0 tokens"
    assert titles[-1] == "Oct 10: 10.01M tokens"
    assert "55.12M in the last 30 days" in page  # 1M * (1 + ... + 10) + 10 * 12,345


async def test_sample_code_points_at_this_server_for_this_model(client: httpx.AsyncClient) -> None:
    page = (await client.get(f"/{NANO}")).text
    tabs = re.findall(r'role="tab" id="tab-([\w-]+)"[^>]*>([^<]+)</button>', page)
    assert tabs == [
        ("openai-python", "OpenAI Python"),
        ("anthropic-python", "Anthropic Python"),
        ("typescript", "TypeScript"),
        ("curl", "cURL"),
    ]
    code = {slug: html.unescape(between(page, f'id="code-{slug}">', "</code>")) for slug, _ in tabs}
    assert f'base_url="{BASE}/api/v1"' in code["openai-python"]
    assert f'base_url="{BASE}/api/anthropic"' in code["anthropic-python"]
    assert f'baseURL: "{BASE}/api/v1"' in code["typescript"]
    assert f"curl {BASE}/api/v1/chat/completions" in code["curl"]
    for text in code.values():
        assert f'"{NANO}"' in text
    assert page.count('class="copy" data-copy="code-') == 4


def test_python_samples_are_valid_python() -> None:
    for sample in code_samples("http://gw.example:8080", NANO):
        if sample.language == "python":
            compile(sample.code, sample.slug, "exec")


def test_curl_sample_quotes_what_the_shell_would_read() -> None:
    curl = code_samples("http://h:1", "x/it's")[-1].code
    assert "-d '{" in curl and "it'\"'\"'s" in curl


async def test_unknown_model_is_a_friendly_404_with_suggestions(client: httpx.AsyncClient) -> None:
    r = await client.get("/openai/gpt-4.1-nanoo")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("text/html")
    assert "No model is called “openai/gpt-4.1-nanoo”" in r.text
    assert f'<a href="/{NANO}">{NANO}</a>' in r.text
    assert 'href="/models"' in r.text


async def test_a_loosely_written_model_id_redirects_to_its_page(client: httpx.AsyncClient) -> None:
    r = await client.get("/OpenAI/GPT-4.1-Nano")
    assert r.status_code == 302
    assert r.headers["location"] == f"/{NANO}"


async def test_hostile_catalog_strings_are_escaped(catalog: Any) -> None:
    source = FakePageSource(hostile_catalog(catalog))
    app = pages_app(WebPages(source, clock=lambda: NOW))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as hostile:
        model_page = (await hostile.get(f"/{NANO}")).text
        models_page = (await hostile.get("/models", params={"q": HOSTILE})).text
        not_found = (await hostile.get('/x/"><script>alert(1)</script>')).text
    for page in (model_page, models_page, not_found):
        assert "<script>alert" not in page
        assert "<b>" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;&lt;b&gt;" in model_page
    assert "javascript:" not in model_page  # the status-page link is dropped, not escaped into an href
    assert 'value="&lt;script&gt;' in models_page


# -- models page ---------------------------------------------------------------------------------------


async def test_models_page_lists_every_catalog_model(client: httpx.AsyncClient, catalog: Any) -> None:
    page = (await client.get("/models")).text
    assert sorted(all_model_rows(page)) == sorted(catalog.models)
    assert sorted(visible_model_rows(page)) == sorted(catalog.models)
    assert f'<span id="model-count">{len(catalog.models)}</span> of {len(catalog.models)} models' in page
    nano_row = between(page, f'<tr data-model="{NANO}"', "</tr>")
    assert "1.05M" in nano_row and "$ 0.1<" in nano_row and "29.85 tps" in nano_row


@pytest.mark.parametrize(
    ("params", "rule"),
    [
        ({"q": "nano"}, lambda m: "nano" in m.id),
        ({"q": "GPT 4.1"}, lambda m: "gpt" in m.id.lower() and "4.1" in m.id),
        ({"provider": "azure"}, lambda m: any(e.provider == "azure" for e in m.endpoints)),
        ({"modality": "image"}, lambda m: "image" in m.input_modalities),
        ({"min_context": "1000000"}, lambda m: m.context_length >= 1_000_000),
        ({"max_price": "0.1"}, lambda m: min(e.price.input for e in m.endpoints) <= 0.1),
        ({"param": "logit_bias"}, lambda m: "logit_bias" in m.supported_parameters),
        (
            {"provider": "openai", "max_price": "0.5"},
            lambda m: (
                any(e.provider == "openai" for e in m.endpoints)
                and min(e.price.input for e in m.endpoints) <= 0.5
            ),
        ),
    ],
)
async def test_models_page_filters_by_query_parameters(
    client: httpx.AsyncClient, catalog: Any, params: dict[str, str], rule: Any
) -> None:
    page = (await client.get("/models", params=params)).text
    expected = sorted(m.id for m in catalog.models.values() if rule(m))
    assert expected, "the filter should keep some models, or the test shows nothing"
    assert len(expected) < len(catalog.models), "the filter should drop some models"
    assert sorted(visible_model_rows(page)) == expected
    assert sorted(all_model_rows(page)) == sorted(catalog.models)  # the rest are there, hidden
    assert f'<span id="model-count">{len(expected)}</span>' in page


async def test_models_page_keeps_the_chosen_filters_in_the_form(client: httpx.AsyncClient) -> None:
    page = (
        await client.get(
            "/models", params={"q": "mini", "provider": "azure", "max_price": "0.3", "sort": "price"}
        )
    ).text
    assert 'name="q" value="mini"' in page
    assert '<option value="azure" selected>Azure</option>' in page
    assert '<option value="0.3" selected>$ 0.3 / M</option>' in page  # a price not among the presets
    assert '<option value="price" selected>' in page


async def test_models_page_sorts(client: httpx.AsyncClient, catalog: Any) -> None:
    by_price = all_model_rows((await client.get("/models", params={"sort": "price"})).text)
    prices = [min(e.price.input for e in catalog.models[i].endpoints) for i in by_price]
    assert prices == sorted(prices)
    by_context = all_model_rows((await client.get("/models", params={"sort": "context"})).text)
    contexts = [catalog.models[i].context_length for i in by_context]
    assert contexts == sorted(contexts, reverse=True)
    by_speed = all_model_rows((await client.get("/models", params={"sort": "throughput"})).text)
    assert by_speed[0] == NANO  # the only measured model comes first


async def test_models_page_ignores_values_it_cannot_read(client: httpx.AsyncClient, catalog: Any) -> None:
    page = (
        await client.get("/models", params={"max_price": "cheap", "min_context": "-5", "sort": "random"})
    ).text
    assert len(visible_model_rows(page)) == len(catalog.models)
    assert ModelQuery.from_query_string(b"max_price=cheap&min_context=-5&sort=random") == ModelQuery()


# -- status and activity -------------------------------------------------------------------------------


async def test_status_page_shows_every_provider_state_and_uptime(
    client: httpx.AsyncClient, catalog: Any
) -> None:
    page = (await client.get("/status")).text
    cards = re.findall(r'<article class="card status-card" id="status-([\w-]+)"', page)
    assert cards == list(catalog.providers)
    azure = between(page, 'id="status-azure"', "</article>")
    assert 'data-state="degraded"' in azure and "Degraded" in azure and "97.31%" in azure
    assert len(re.findall(r'class="hour ', azure)) == 72
    assert 'class="hour poor" title="Oct 10, 2025 - 12 PM UTC: 50.00%"' in azure
    assert "Up" in between(page, 'id="status-openai"', "</article>")
    assert "1 of 2 providers needs attention: Azure is degraded." in page


def test_status_summary_says_first_what_needs_attention() -> None:
    def provider(name: str, state: str) -> dict[str, Any]:
        return {"name": name, "state": state}

    assert status_summary([provider("A", "not_configured")]).startswith("No provider is configured yet")
    assert (
        status_summary([provider("A", "unknown")]) == "No traffic measured yet on the 1 provider configured."
    )
    assert status_summary([provider("A", "up"), provider("B", "unknown")]) == (
        "All systems operational: 2 providers configured."
    )
    assert (
        status_summary(
            [
                provider("A", "down"),
                provider("B", "cooling_down"),
                provider("C", "up"),
                provider("D", "not_configured"),
            ]
        )
        == "2 of 3 providers need attention: A is down, B is cooling down."
    )


async def test_activity_form_asks_for_a_key_in_a_post_body(client: httpx.AsyncClient) -> None:
    r = await client.get("/activity")
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert '<form class="panel key-form" method="post" action="/activity"' in r.text
    assert 'type="password" id="key" name="key"' in r.text


async def test_activity_shows_a_keys_usage_and_attempts(
    client: httpx.AsyncClient, source: FakePageSource
) -> None:
    r = await client.post("/activity", data={"key": GOOD_KEY})
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert "set-cookie" not in r.headers
    assert source.activity_calls == [GOOD_KEY]
    page = r.text
    assert GOOD_KEY not in page  # the page shows the key's name and display prefix, never the key
    assert "demo-key" in page and "sk-tm-test-a…" in page
    by_day = between(page, 'id="by-day"', "</table>")
    assert re.findall(r'<th scope="row">([\d-]+)</th>', by_day) == [
        "2025-10-10",
        "2025-10-09",
    ]  # newest first
    assert "3,400" in by_day and "$ 0.00148" in by_day
    by_model = between(page, 'id="by-model"', "</table>")
    assert f'<a href="/{NANO}">{NANO}</a>' in by_model and ">15<" in by_model
    recent = between(page, 'id="recent"', "</table>")
    attempts = re.findall(r'<li class="outcome-(\w+)"><strong>(\w+)</strong> (\w+)', recent)
    assert attempts == [
        ("error", "azure", "error"),
        ("success", "openai", "success"),
        ("success", "openai", "success"),
    ]
    assert '<span class="error-class">timeout</span>' in recent
    assert "1640 ms" in recent and "1900 ms" in recent
    # A non-streamed call shows no first-token latency, and says why.
    unseen = between(recent, '<tr id="gen-1">', "</tr>")
    assert re.findall(r'<td class="num"( title="[^"]*")?>([^<]*)</td>', unseen)[-2:] == [
        (' title="Not streamed: the answer arrived whole, so its first token was not seen"', "-"),
        ("", "2300 ms"),
    ]
    assert "Not streamed" not in between(recent, '<tr id="gen-2">', "</tr>")


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"key": "sk-tm-wrong"}, 401, "That key is not valid"),
        ({"key": "  "}, 400, "Enter an API key."),
        ({"key": "x" * 5000}, 413, "That form was too large"),
    ],
)
async def test_activity_refuses_a_bad_key_with_the_form_again(
    client: httpx.AsyncClient, body: dict[str, str], status: int, message: str
) -> None:
    r = await client.post("/activity", data=body)
    assert r.status_code == status
    assert message in r.text
    assert 'role="alert"' in r.text
    assert body["key"].strip() not in r.text or not body["key"].strip()


# -- routing, headers, static files -------------------------------------------------------------------


def test_route_claims_only_page_paths(pages: WebPages) -> None:
    assert pages.route("GET", f"/{NANO}") == pages.model_page
    assert pages.route("HEAD", "/models") == pages.models_page
    assert pages.route("POST", "/activity") == pages.activity_page
    assert pages.route("GET", "/static/tokenmux.css") is pages.static
    for method, path in [
        ("GET", "/api/v1/unknown"),
        ("POST", "/models"),
        ("DELETE", f"/{NANO}"),
        ("GET", "/a/b/c"),
        ("GET", "/onlyone"),
        ("GET", "/openai/"),
    ]:
        assert pages.route(method, path) is None, (method, path)


async def test_pages_load_nothing_from_other_hosts(client: httpx.AsyncClient) -> None:
    for path in (f"/{NANO}", "/models", "/status", "/activity"):
        r = await client.get(path)
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in r.text
        for tag in re.findall(r"<(?:script|link|img)\b[^>]*>", r.text):
            assert re.search(r'(?:src|href)="/static/[\w.-]+\?v=[0-9a-f]{12}"', tag), tag
    for name, static in load_static_files().items():
        if static.content_type.startswith(b"text/"):
            assert not re.search(rb"(?:https?:)?//[\w.-]+\.\w", static.body), f"{name} names an outside host"


async def test_static_files_are_served_with_caching_headers(client: httpx.AsyncClient) -> None:
    css = load_static_files()["tokenmux.css"]
    r = await client.get("/static/tokenmux.css")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/css; charset=utf-8"
    assert r.content == css.body
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert r.headers["etag"] == f'"{css.version}"'
    versioned = await client.get(f"/static/tokenmux.css?v={css.version}")
    assert versioned.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = await client.get("/static/tokenmux.css", headers={"if-none-match": f'"{css.version}"'})
    assert again.status_code == 304 and again.content == b""
    js = await client.get("/static/tokenmux.js")
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../pyproject.toml",
        "/static/../../../../etc/passwd",
        "/static/..%2F__init__.py",
        "/static//etc/passwd",
        "/static/",
        "/static/missing.css",
        "/static/../templates/base.html",
    ],
)
async def test_static_files_refuse_anything_outside_the_folder(pages: WebPages, path: str) -> None:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    # Straight to the handler, with the raw path as a server would pass it: no client normalises it first.
    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}
    handler = pages.route("GET", path)
    assert handler is not None
    await handler(scope, receive, send)
    assert sent[0]["status"] == 404
    assert sent[1]["body"] == b"No such file."
