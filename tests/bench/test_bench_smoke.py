"""The benchmark's machinery end to end with a handful of requests: every figure comes out, with its verdict.

Not a timed test: nothing here asserts how fast anything is, only that ``bench/run.py`` starts the simulator
and the gateway, drives both paths, and reports every figure as a number.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"

EXPECTED = {
    # figure key: (has the two paths' own values, has a budget)
    "added_latency_p50": (True, True),
    "added_latency_p99": (True, True),
    "added_first_token_p50": (True, True),
    "added_first_token_p99": (True, False),
    "added_stream_total_p50": (True, False),
    "gateway_cpu_per_request": (False, True),
    "gateway_cpu_per_streamed_request": (False, False),
    "throughput_non_streamed": (True, False),
    "throughput_streamed": (True, False),
    "gateway_rss": (False, True),
}


def test_a_tiny_run_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--requests", "20", "--warmup", "5", "--no-extras", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["plan"]["requests"] == 20
    assert report["extras"] is None
    for field in ("cpu", "cores", "python", "date"):
        assert report["machine"][field], field

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
    # Added latency is the difference of the two paths' percentiles.
    p50 = figures["added_latency_p50"]
    assert math.isclose(p50["value"], p50["gateway"] - p50["direct"], abs_tol=1e-9)
