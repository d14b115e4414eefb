"""/metrics through prometheus_client: real counters for what only grows, histograms for latencies, and
the exposition format Prometheus parses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from fresh_process import run_fresh
from gateway_support import HELLO, NANO, scrape
from tokenmux.server.metrics import Histogram
from tokenmux.server.metrics_exposition import histogram_family


def families(gateway: Any) -> dict[str, str]:
    text = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def test_monotonic_values_are_counters_and_latencies_histograms(gateway: Any) -> None:
    client = gateway.openai()
    client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    list(client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=5, stream=True))
    kinds = families(gateway)
    for name in (
        "tokenmux_generations",
        "tokenmux_attempts",
        "tokenmux_tokens",
        "tokenmux_cost_usd",
        "tokenmux_auth_failures",
        "tokenmux_recorder_records",
        "tokenmux_error_responses",
    ):
        assert kinds[name] == "counter", name
    for name in (
        "tokenmux_generation_latency_seconds",
        "tokenmux_first_token_latency_seconds",
        "tokenmux_gateway_overhead_seconds",
    ):
        assert kinds[name] == "histogram", name
    assert kinds["tokenmux_recorder_pending"] == "gauge"
    samples = scrape(gateway.url)
    counts = {
        labels: v
        for (name, labels), v in samples.items()
        if name == "tokenmux_generation_latency_seconds_count"
    }
    assert sum(counts.values()) == 2
    first_token = sum(
        v for (name, _), v in samples.items() if name == "tokenmux_first_token_latency_seconds_count"
    )
    assert first_token == 1  # the streamed request only
    assert samples[("tokenmux_gateway_overhead_seconds_count", ())] == 2
    assert samples[("tokenmux_gateway_overhead_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("tokenmux_tokens_total", (("kind", "completion"), ("provider", "openai")))] > 0


def test_error_answers_and_refused_keys_are_counted(gateway: Any) -> None:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        client.get("/api/v1/key")  # no key
        client.get("/api/v1/key", headers={"Authorization": "Bearer sk-tm-wrong"})
        client.get("/api/v1/key", headers={"Authorization": "Bearer " + "k" * 500})
    samples = scrape(gateway.url)
    for reason in ("missing", "unknown", "too_long"):
        assert samples[("tokenmux_auth_failures_total", (("reason", reason),))] == 1, reason
    assert samples[("tokenmux_error_responses_total", (("status", "401"),))] == 3


def test_a_histogram_counts_each_observation_in_its_bucket() -> None:
    h = Histogram((0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 2.0):
        h.observe(value, "p")
    family = histogram_family(h, "x_seconds", "x", "provider")
    got = {(s.name, s.labels.get("le")): s.value for s in family.samples}
    assert got[("x_seconds_bucket", "0.1")] == 2  # le is inclusive
    assert got[("x_seconds_bucket", "1.0")] == 3
    assert got[("x_seconds_bucket", "+Inf")] == 4
    assert got[("x_seconds_count", None)] == 4
    assert abs(got[("x_seconds_sum", None)] - 2.65) < 1e-9


def test_prometheus_client_is_imported_on_the_first_scrape_only(tmp_path: Path) -> None:
    # A process of its own: this one has imported prometheus_client already.
    code = (
        "import sys\n"
        "from tokenmux.server.build import build_gateway\n"
        "import tokenmux.server.runner, tokenmux.cli\n"
        "g = build_gateway({'providers': {'openai': {'api_key': 'k'}}},"
        f" database_url='sqlite:///{tmp_path / 'db.sqlite'}')\n"
        "before = 'prometheus_client' in sys.modules\n"
        "from tokenmux.server.metrics_exposition import render\n"
        "text = render(g.parts.metrics).decode()\n"
        "print(before, 'prometheus_client' in sys.modules, 'tokenmux_generations_total' in text)\n"
    )
    assert run_fresh(code, tmp_path).split() == ["False", "True", "True"]
