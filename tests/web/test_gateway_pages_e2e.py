"""The pages served by the real gateway after demo-style traffic, in headless Chromium.

The figures on the model page must be the ones the endpoints API serves, and they must come from the traffic.
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from browser_support import PageWatch, launch_chromium, require_chromium, save_screenshot

from gateway_support import NANO, sim_config
from tokenmux.web.formatting import decimal2

SEED_MODEL = "gpt-4.1-nano"


def send_traffic(gateway: Any, sim: Any) -> None:
    # Both nano providers answer a little slowly, like the seed page's figures, and stream.
    sim.profile("openai", models={SEED_MODEL: {"ttft_ms": 40, "tokens_per_second": 400}})
    sim.profile("azure", models={SEED_MODEL: {"ttft_ms": 80, "tokens_per_second": 800}})
    client = gateway.openai()
    for provider in ("openai", "azure"):
        for _ in range(3):
            chunks = client.chat.completions.create(
                model=NANO,
                messages=[{"role": "user", "content": "hello"}],
                stream=True,
                extra_body={"provider": {"only": [provider]}},
            )
            assert list(chunks)


def wait_for_figures(gateway: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        data = httpx.get(f"{gateway.url}/api/v1/models/{NANO}/endpoints").json()["data"]
        by = {e["provider_name"]: e for e in data["endpoints"]}
        if all(by[p]["throughput_last_30m"] for p in ("openai", "azure")):
            return by
        time.sleep(0.25)
    raise AssertionError("the figures did not appear within 15 s of the traffic")


def test_model_page_shows_live_figures_from_traffic(gateway_factory: Any, sim: Any) -> None:
    require_chromium()
    gateway = gateway_factory(sim_config(sim.url, public_url="https://llm.example.com/"))
    send_traffic(gateway, sim)
    api = wait_for_figures(gateway)
    for provider in ("openai", "azure"):
        assert api[provider]["uptime_last_30m"] == 100.0
        assert api[provider]["latency_last_30m"]["min"] > 0
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        watch = PageWatch(page)
        page.goto(f"{gateway.url}/{NANO}")
        for provider in ("openai", "azure"):
            card = page.locator(f"#provider-{provider}")
            assert card.is_visible()
            latency = card.locator("[data-metric=latency] .metric-value").inner_text()
            assert latency not in ("-", ""), latency
            cells = page.locator(f"#throughput-table tr[data-provider={provider}] td").all_inner_texts()
            day = api[provider]["throughput_last_1d"]
            # The page shows the API's numbers, formatted as the seed page formats them.
            assert cells == [decimal2(day["min"]), decimal2(day["max"]), decimal2(day["avg"])]
            lat = page.locator(f"#latency-table tr[data-provider={provider}] td").all_inner_texts()
            day_latency = api[provider]["latency_last_1d"]
            assert lat == [
                decimal2(day_latency["min"]),
                decimal2(day_latency["max"]),
                decimal2(day_latency["avg"]),
            ]
        page.get_by_role("tab", name="cURL").click()
        assert page.locator("#code-curl").is_visible()
        assert "https://llm.example.com/api/v1/chat/completions" in page.locator("#code-curl").inner_text()
        save_screenshot(page, "gateway-model-page")
        page.goto(f"{gateway.url}/models")
        page.fill("input[type=search]", "nano")
        rows = page.eval_on_selector_all(
            "#models-table tbody tr:not([hidden])", "rows => rows.map(r => r.dataset.model)"
        )
        assert NANO in rows and all("nano" in r for r in rows)
        save_screenshot(page, "gateway-models")
        page.goto(f"{gateway.url}/status")
        assert page.locator("text=OpenAI").first.is_visible()
        save_screenshot(page, "gateway-status")
        watch.assert_clean()
