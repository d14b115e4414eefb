"""The project's other benchmarks (prompt-fit cost, recorder write rate, page times, provider outages,
instructions per request), run as subprocesses.

Their own output is kept whole; the headline number of each is read from it for the table. When a script
is missing, fails, or prints something this parser no longer recognises, the table says so instead.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from figures import Budget, Figure

BENCH_DIR = Path(__file__).resolve().parent
# bench_fit.py prints one line per request served: "<case>  first attempt <n> ms, answered <n> ms, loop
# stall <n> ms, ...".
_FIT_CASE = re.compile(
    r"^(?P<case>.+?)\s+first attempt\s+(?P<ms>[\d.,]+) ms, answered\s+(?P<answered>[\d.,]+) ms, "
    r"loop stall\s+(?P<stall>[\d.,]+) ms",
    re.MULTILINE,
)
# bench_recorder.py: "written:   8,357 records/s (...)".
_RECORDS_PER_S = re.compile(r"written:\s+(?P<rate>[\d,]+) records/s")
# bench_recorder.py: "with the journal:   4.3 µs (+3.7 µs)".
_JOURNAL_CPU = re.compile(r"with the journal:\s+[\d.]+ µs \(\+(?P<us>[\d.]+) µs\)")


@dataclass(slots=True)
class Extra:
    script: str
    args: list[str]
    seconds: float = 0.0
    output: str = ""
    error: str = ""
    figures: list[Figure] = field(default_factory=list)


def _run(script: str, args: list[str], timeout_s: float) -> Extra:
    extra = Extra(script, args)
    path = BENCH_DIR / script
    if not path.exists():
        extra.error = "not found"
        return extra
    started = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, str(path), *args], capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        extra.error = f"did not finish within {timeout_s:.0f} s"
        return extra
    finally:
        extra.seconds = time.monotonic() - started
    extra.output = done.stdout
    if done.returncode != 0:
        extra.error = f"exited with {done.returncode}: {done.stderr.strip()[-500:]}"
    return extra


def _run_for_json(script: str, timeout_s: float, args: list[str] | None = None) -> tuple[Extra, Any]:
    """Run ``script *args --json FILE`` and return it with the JSON it wrote (None when it failed, or the
    file could not be read: then ``error`` says why)."""
    with tempfile.TemporaryDirectory(prefix="tokenmux-bench-") as tmp:
        out = Path(tmp) / "result.json"
        extra = _run(script, [*(args or []), "--json", str(out)], timeout_s)
        extra.args = list(args or [])  # the JSON file's path was temporary
        if extra.error:
            return extra, None
        try:
            return extra, json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            extra.error = f"its JSON could not be read ({e!r})"
            return extra, None


def fit_cost(timeout_s: float = 180) -> Extra:
    """The slowest routing decision among bench_fit.py's requests served, from the decoded request to its
    first attempt (budget: ≤ 20 ms for 1M tokens); the note gives the event loop's longest stall."""
    extra = _run("bench_fit.py", [], timeout_s)
    cases = [
        (m["case"].strip(), float(m["ms"].replace(",", "")), m["stall"])
        for m in _FIT_CASE.finditer(extra.output)
    ]
    if cases and not extra.error:
        case, worst, _ = max(cases, key=lambda c: c[1])
        longest = max(float(c[2]) for c in cases)
        note = f"{case}; event loop's longest stall over all cases {longest:.1f} ms"
        extra.figures.append(
            Figure(
                "fit_decision_worst", "prompt-fit decision, slowest case", worst, "ms", Budget(20), note=note
            )
        )
    elif not extra.error:
        extra.error = "its output has no lines this benchmark recognises"
    return extra


def recorder_rate(records: int, timeout_s: float = 180) -> Extra:
    """Request records written per second (budget: ≥ 10,000)."""
    extra = _run("bench_recorder.py", ["--records", str(records)], timeout_s)
    match = _RECORDS_PER_S.search(extra.output)
    if match and not extra.error:
        rate = float(match["rate"].replace(",", ""))
        extra.figures.append(
            Figure(
                "recorder_records_per_s",
                "request records written (SQLite)",
                rate,
                "records/s",
                Budget(10_000, at_most=False),
                note=f"{records:,} records, bench_recorder.py",
            )
        )
    elif not extra.error:
        extra.error = "its output has no 'written: N records/s' line"
    journal = _JOURNAL_CPU.search(extra.output)
    if journal and not extra.error:
        extra.figures.append(
            Figure(
                "journal_cpu_per_record_us",
                "CPU the journal adds per record (all threads)",
                float(journal["us"]),
                "µs",
                note="bench_recorder.py, what a crash-proof record costs",
            )
        )
    return extra


def page_times(records: int, requests: int, timeout_s: float | None = None) -> Extra:
    """Server-side time of each page and of the endpoints API with ``records`` generations in the log
    (issue 5: under 100 ms each), read from bench_pages.py's JSON."""
    # Writing the log dominates: ~8,000 records/s on a 2-core VM.
    timeout = timeout_s if timeout_s is not None else 120 + records / 2000
    args = ["--records", str(records), "--requests", str(requests), "--quiet"]
    extra, result = _run_for_json("bench_pages.py", timeout, args)
    if result is None:
        return extra
    try:
        extra.figures += _page_figures(result)
    except (KeyError, TypeError) as e:
        extra.error = f"its JSON could not be read ({e!r})"
    return extra


def _page_figures(result: dict[str, Any]) -> list[Figure]:
    budget = Budget(result["budget_ms"])
    figures = [
        Figure(
            "pages_log_size",
            f"request log behind the page figures ({result['records']:,} records)",
            result["database_bytes"] / 1e6,
            "MB",
            note=f"{result['endpoints']} endpoints, {result['keys']} keys, {result['span_h']} h; written in "
            f"{result['build_s']:.0f} s ({result['records_per_s']:,} records/s) through SQLiteStore.write_batch",
        )
    ]
    for page in result["pages"]:
        slug = page["name"].lower().replace(" ", "_")
        for q in (50, 99):
            figure = Figure(
                f"{slug}_p{q}", f"{page['request']}, server p{q}", page[f"server_p{q}_ms"], "ms", budget
            )
            if q == 99:
                figure.note = (
                    f"{page['name']}; client round trip p50 {page['client_p50_ms']:.2f} ms, "
                    f"p99 {page['client_p99_ms']:.2f} ms; {page['bytes'] / 1024:,.1f} KiB; "
                    f"{result['requests']} requests"
                )
            figures.append(figure)
    return figures


def outages(timeout_s: float = 180) -> Extra:
    """Staggered provider outages (bench_outage.py): failures of the gateway's own making (target none) and
    how soon a recovered provider is back in rotation."""
    extra, result = _run_for_json("bench_outage.py", timeout_s)
    if result is None:
        return extra
    try:
        results = {r["scenario"]: r for r in result}
        staggered, alone = results["staggered"], results["openai-alone"]
    except (KeyError, TypeError) as e:
        extra.error = f"its JSON could not be read ({e!r})"
        return extra
    scenario = "8 req/s, order openai, azure; openai 503 for 8 s, then azure 500 for 4 s"
    extra.figures += [
        Figure(
            "outage_longest_failure_run",
            "longest run of failed requests while a provider answers",
            staggered["longest_failure_run_s"],
            "s",
            Budget(0),
            note=f"{scenario}; {staggered['failures']} of {staggered['requests']} requests failed",
        ),
        Figure(
            "outage_502_503",
            "answers 502 or 503 while a provider answers",
            staggered["status_502_503"],
            "",
            Budget(0),
        ),
    ]
    back = alone["openai_back_after_s"]
    if back is not None:
        extra.figures.append(
            Figure(
                "outage_provider_back",
                "a recovered provider back in rotation after",
                back,
                "s",
                Budget(5),
                note="openai 503 for 8 s while azure serves; its first request served after it answers again",
            )
        )
    else:
        extra.error = "the recovered provider never served again"
    return extra


def instructions(timeout_s: float = 1800) -> Extra:
    """Instructions per request of the gateway under callgrind, non-streamed and streamed, with the floor's
    (bench_instructions.py): the CPU figure that the machine's load does not move."""
    extra, result = _run_for_json("bench_instructions.py", timeout_s)
    if result is None:
        return extra
    try:
        floor = result["floor"]
        for kind, key in (
            ("non-streamed", "instructions_per_request"),
            ("streamed", "instructions_per_streamed_request"),
        ):
            counts = result["counts"][kind]
            gateway = counts["tokenmux"]
            others = ", ".join(f"{name} {value:,.0f}" for name, value in counts.items() if name != "tokenmux")
            thrown = result["exceptions"][kind]["tokenmux"]
            extra.figures.append(
                Figure(
                    key,
                    f"gateway instructions per request ({kind}, c={result['concurrency']}, callgrind)",
                    gateway,
                    "instr.",
                    note=f"{gateway / counts[floor]:.2f}x the floor; {others}; {thrown:,.0f} of the gateway's "
                    f"setting Python exceptions; {result['requests']} requests each, every thread counted",
                )
            )
    except (KeyError, TypeError, ZeroDivisionError) as e:
        extra.error = f"its JSON could not be read ({e!r})"
    return extra
