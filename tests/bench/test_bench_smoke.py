"""The benchmark's machinery end to end with a handful of requests: every figure comes out, with its verdict.

Not a timed test: nothing here asserts how fast anything is, only that ``bench/run.py`` starts the simulator
and the gateway, drives every path (same-protocol, translated both ways, the Responses and Gemini routes)
and the embeddings route and the floor apps beside them, runs ``bench_pages.py`` on a small request log, and reports every figure as
a number, the headline ones with the floor's.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"
TRANSLATIONS = (
    "anthropic_to_openai",
    "openai_to_anthropic",
    "responses_to_openai",
    "responses_to_anthropic",
    "gemini_to_google",
    "gemini_to_openai",
)
PAGES = ("model_page", "models_page", "status_page", "activity_page", "endpoints_api")
FLOOR_APPS = {"server", "proxy", "proxy-aiohttp"}
FLOOR_ROWS = {
    # floor row: the main figure it belongs to
    "cpu_per_request": "gateway_cpu_per_request",
    "cpu_per_streamed_request": "gateway_cpu_per_streamed_request",
    "writes_per_request": None,
    "reads_per_request": None,
    "writes_per_streamed_request": "gateway_writes_per_streamed_request",
    "reads_per_streamed_request": None,
    "requests_per_s": "throughput_non_streamed",
    "added_latency_p50": "added_latency_p50",
    "added_first_token_p50": "added_first_token_p50",
}

EXPECTED = {
    # figure key: (has the two paths' own values, has a budget)
    "added_latency_p50": (True, True),
    "added_latency_p99": (True, True),
    "added_first_token_p50": (True, True),
    "added_first_token_p99": (True, False),
    "added_stream_total_p50": (True, False),
    "gateway_cpu_per_request": (False, True),
    "gateway_cpu_per_streamed_request": (False, False),
    "gateway_writes_per_streamed_request": (False, False),
    "throughput_non_streamed": (True, False),
    "throughput_streamed": (True, False),
    "gateway_rss": (False, True),
    "embeddings_added_latency_p50": (True, False),
    "embeddings_added_latency_p99": (True, False),
    "embeddings_gateway_cpu_per_request": (False, False),
    **{
        f"{t}_{key}": (paired, False)
        for t in TRANSLATIONS
        for key, paired in (
            ("added_latency_p50", True),
            ("added_latency_p99", True),
            ("added_first_token_p50", True),
            ("gateway_cpu_per_request", False),
        )
    },
    **{f"{page}_p{q}": (False, True) for page in PAGES for q in (50, 99)},
    "pages_log_size": (False, False),
}


def test_a_tiny_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--requests",
            "20",
            "--warmup",
            "5",
            "--extras",
            "pages",
            "--page-records",
            "3000",
            "--page-requests",
            "5",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["plan"]["requests"] == 20
    for field in ("cpu", "cores", "python", "date"):
        assert report["machine"][field], field
    [pages] = report["extras"]
    assert pages["script"] == "bench_pages.py" and pages["error"] is None, pages
    assert "bench_fit.py, bench_recorder.py" in done.stdout  # listed as not run

    figures = report["figures"]
    assert set(figures) == set(EXPECTED)
    for key, (paired, budgeted) in EXPECTED.items():
        figure = figures[key]
        assert math.isfinite(figure["value"]), key
        assert (figure["budget"] is not None) == budgeted, key
        assert isinstance(figure["ok"], bool) == budgeted, key
        if paired:
            assert figure["direct"] > 0 and figure["gateway"] > 0, key
        # Printed too, each on its own table row.
        assert figure["label"] in done.stdout, key

    # CPU is read in 10 ms clock ticks: 20 requests may round to zero, but never below it.
    assert figures["gateway_cpu_per_request"]["value"] >= 0
    assert figures["gateway_rss"]["value"] > 0
    # A streamed request writes at least its request upstream and its answer to the client.
    assert figures["gateway_writes_per_streamed_request"]["value"] >= 2
    # Added latency is the difference of the two paths' percentiles.
    p50 = figures["added_latency_p50"]
    assert math.isclose(p50["value"], p50["gateway"] - p50["direct"], abs_tol=1e-9)

    # Each translated figure carries the same-protocol one it is shown beside; only the latter has a budget.
    for t in TRANSLATIONS:
        for key in (
            "added_latency_p50",
            "added_latency_p99",
            "added_first_token_p50",
            "gateway_cpu_per_request",
        ):
            assert figures[f"{t}_{key}"]["same_protocol"] == figures[key]["value"], (t, key)
    # OpenAI in, Anthropic out is measured against a direct Anthropic call; the other against direct OpenAI.
    assert figures["anthropic_to_openai_added_latency_p50"]["direct"] == p50["direct"]
    assert "the budget is for the same-protocol call" in done.stdout

    # The page times come from a real log: the server answered every page, and the log is on disk.
    for page in PAGES:
        assert 0 < figures[f"{page}_p50"]["value"] <= figures[f"{page}_p99"]["value"], page
    assert figures["pages_log_size"]["value"] > 0
    assert "3,000 records" in figures["pages_log_size"]["label"]

    # The floor apps answered the same requests: each headline figure has their values and its ratio.
    floor = report["floor"]
    assert floor["floor_app"] == "proxy"
    assert {key: row["figure"] for key, row in floor["rows"].items()} == FLOOR_ROWS
    for key, row in floor["rows"].items():
        assert set(row["apps"]) == FLOOR_APPS, key
        assert all(math.isfinite(v) for v in row["apps"].values()), key
        if row["figure"] is not None and row["unit"] != "ms":
            assert row["tokenmux"] == pytest.approx(
                figures[row["figure"]]["gateway" if key == "requests_per_s" else "value"]
            )
        assert row["label"] in done.stdout, key
    cpu = floor["rows"]["cpu_per_request"]
    # CPU comes from each process's CPU clock (nanoseconds): never zero for requests served.
    assert all(v > 0 for v in cpu["apps"].values()) and cpu["tokenmux"] > 0
    assert cpu["to_floor"] == pytest.approx(cpu["tokenmux"] / cpu["apps"]["proxy"], rel=1e-2)
    # The bare proxies write the request upstream and the answer to the client; the trivial app only the answer.
    writes = floor["rows"]["writes_per_request"]["apps"]
    assert writes["proxy"] >= 2 and writes["proxy-aiohttp"] >= 2 and writes["server"] >= 1
    assert all(v > 0 for v in floor["rows"]["requests_per_s"]["apps"].values())
    assert "tokenmux/floor" in done.stdout
