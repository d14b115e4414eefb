"""The pages in headless Chromium: what a person sees and does, with nothing loaded from outside.

The pages are served by uvicorn on a loopback port from a fake PageSource; a screenshot of each is written
to ``artifacts/screenshots/``. Skipped, with the install command, where Debian's chromium is absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from browser_support import PageWatch, launch_chromium, save_screenshot
from fake_pages import GOOD_KEY, NANO, NOW, FakePageSource, pages_app

from tokenmux.server.runner import BackgroundServer
from tokenmux.web import WebPages
from tokenmux.web.catalog_filter import ModelQuery

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Page, ViewportSize

WIDE: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def source() -> FakePageSource:
    return FakePageSource()


@pytest.fixture(scope="module")
def site(source: FakePageSource) -> Iterator[str]:
    app = pages_app(WebPages(source, clock=lambda: NOW))
    with BackgroundServer(app, lifespan="off") as server:
        yield server.url


# One browser context per kind of screen, shared by the module's tests: a context costs far more to
# start than a page. Each test opens its own page.
@pytest.fixture(scope="module")
def wide(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=WIDE)
    yield context
    context.close()


@pytest.fixture(scope="module")
def phone(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    yield context
    context.close()


def open_page(context: BrowserContext, site: str, path: str) -> tuple[Page, PageWatch]:
    page = context.new_page()
    watch = PageWatch(page)
    response = page.goto(site + path)
    assert response is not None and response.ok, f"{path}: {response and response.status}"
    return page, watch


def visible_models(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "#models-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.model)"
    )


def test_model_page_shows_both_providers(wide: BrowserContext, site: str) -> None:
    page, watch = open_page(wide, site, f"/{NANO}")
    assert page.locator("h1").inner_text() == "OpenAI: GPT-4.1 Nano"
    openai_card = page.locator("#provider-openai")
    azure_card = page.locator("#provider-azure")
    assert openai_card.is_visible() and azure_card.is_visible()
    assert openai_card.locator("[data-metric=latency] .metric-value").inner_text() == "0.63s"
    assert azure_card.locator("[data-metric=throughput] .metric-value").inner_text() == "29.85tps"
    assert page.locator("#throughput-table tr[data-provider=azure] td").all_inner_texts() == [
        "6.25",
        "108.82",
        "29.85",
    ]
    assert page.locator("#latency-table tr[data-provider=openai] td").all_inner_texts() == [
        "540",
        "722",
        "627.59",
    ]
    assert azure_card.locator(".uptime-bars .hour").count() == 72
    assert (
        azure_card.locator(".uptime-bars .hour.poor").get_attribute("title")
        == "Oct 10, 2025 - 12 PM UTC: 50.00%"
    )
    assert page.locator(".chart-wide rect.bar").count() == 30
    assert page.locator(".chart-wide").is_visible() and not page.locator(".chart-narrow").is_visible()
    save_screenshot(page, "model-page")
    watch.assert_clean()


def test_sample_code_tabs_switch(wide: BrowserContext, site: str) -> None:
    page, watch = open_page(wide, site, f"/{NANO}")
    panels = ["openai-python", "anthropic-python", "typescript", "curl"]

    def shown() -> list[str]:
        return [p for p in panels if page.locator(f"#panel-{p}").is_visible()]

    assert shown() == ["openai-python"]
    page.get_by_role("tab", name="cURL").click()
    assert shown() == ["curl"]
    assert page.get_by_role("tab", name="cURL").get_attribute("aria-selected") == "true"
    assert page.get_by_role("tab", name="OpenAI Python").get_attribute("aria-selected") == "false"
    assert "/api/v1/chat/completions" in page.locator("#code-curl").inner_text()
    page.get_by_role("tab", name="Anthropic Python").click()
    assert shown() == ["anthropic-python"]
    assert f'base_url="{site}/api/anthropic"' in page.locator("#code-anthropic-python").inner_text()
    page.keyboard.press("ArrowRight")  # the focused tab moves on, as in any tab list
    assert shown() == ["typescript"]
    watch.assert_clean()


def test_copy_button_copies_the_sample(wide: BrowserContext, site: str) -> None:
    page, watch = open_page(wide, site, f"/{NANO}")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site)
    page.get_by_role("tab", name="TypeScript").click()
    button = page.locator("#panel-typescript button.copy")
    button.click()
    page.wait_for_function("document.querySelector('#panel-typescript button.copy').textContent === 'Copied'")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#code-typescript").text_content()
    assert f'baseURL: "{site}/api/v1"' in copied and f'model: "{NANO}"' in copied
    watch.assert_clean()


def test_search_on_models_filters_rows(wide: BrowserContext, site: str) -> None:
    page, watch = open_page(wide, site, "/models")
    everything = visible_models(page)
    assert len(everything) > 20
    page.get_by_label("Search").fill("nano")
    nano = visible_models(page)
    assert nano and all("nano" in model_id for model_id in nano)
    assert page.locator("#model-count").inner_text() == str(len(nano))
    assert "q=nano" in page.url  # the address follows, so the filtered list can be shared
    page.get_by_label("Search").fill("no model is called this")
    assert visible_models(page) == []
    assert page.locator("#no-models").is_visible()
    page.get_by_label("Search").fill("")
    assert sorted(visible_models(page)) == sorted(everything)
    save_screenshot(page, "models-page")
    watch.assert_clean()


FILTER_CHOICES = [
    {"provider": "azure", "sort": "price"},
    {"modality": "image", "min_context": "128000", "sort": "context"},
    {"max_price": "0.5", "param": "tools", "sort": "throughput"},
    {"q": "gpt", "max_price": "2"},
]


def test_instant_filters_agree_with_the_server(
    wide: BrowserContext, site: str, source: FakePageSource
) -> None:
    """The script and the server apply the same rules: the same rows, in the same order."""
    page, watch = open_page(wide, site, "/models")
    for choices in FILTER_CHOICES:
        page.eval_on_selector("#model-filters", "form => form.reset()")  # back to "any", sorted by name
        for name, value in choices.items():
            if name == "q":
                page.locator("#f-q").fill(value)
            else:
                page.locator(f"select[name={name}]").select_option(value)
        query = "&".join(f"{k}={v}" for k, v in choices.items())
        on_server = [e["id"] for e in ModelQuery.from_query_string(query).select(source.models_payload())]
        assert visible_models(page) == on_server, choices
        assert on_server, choices
    watch.assert_clean()


def test_status_page(wide: BrowserContext, site: str) -> None:
    page, watch = open_page(wide, site, "/status")
    azure = page.locator("#status-azure")
    assert azure.locator(".badge").inner_text() == "Degraded"
    assert azure.locator(".uptime-bars .hour").count() == 72
    assert page.locator("#status-openai .badge").inner_text() == "Up"
    save_screenshot(page, "status-page")
    watch.assert_clean()


def test_activity_page_after_entering_a_key(wide: BrowserContext, site: str) -> None:
    page, watch = open_page(wide, site, "/activity")
    save_screenshot(page, "activity-form")
    page.get_by_label("API key").fill(GOOD_KEY)
    page.get_by_role("button", name="Show activity").click()
    page.wait_for_selector("#by-day")
    assert page.url == f"{site}/activity"  # the key went in the body, not the address
    assert page.evaluate("document.cookie") == ""
    assert page.locator("#by-model tbody tr").count() == 1
    assert page.locator("#recent .attempts li").all_inner_texts()[0].startswith("azure error timeout")
    save_screenshot(page, "activity-page")
    watch.assert_clean()


def test_pages_fit_a_phone_screen(phone: BrowserContext, site: str) -> None:
    # The whole model page; the first screen of the others (the models list is 37 cards long).
    for path, name, full_page in [
        (f"/{NANO}", "model", True),
        ("/models", "models", False),
        ("/status", "status", False),
    ]:
        page, watch = open_page(phone, site, path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{path} scrolls sideways on a phone by {overflow}px"
        if path == f"/{NANO}":
            assert page.locator(".chart-narrow").is_visible() and not page.locator(".chart-wide").is_visible()
        save_screenshot(page, f"{name}-page-phone", full_page=full_page)
        watch.assert_clean()
        page.close()


def test_model_page_without_javascript_shows_every_sample(browser: Browser, site: str) -> None:
    context = browser.new_context(viewport=WIDE, java_script_enabled=False)
    page, _ = open_page(context, site, f"/{NANO}")
    for slug in ("openai-python", "anthropic-python", "typescript", "curl"):
        assert page.locator(f"#panel-{slug}").is_visible()
    assert not page.locator("button.copy").first.is_visible()  # copying needs the script
    context.close()
