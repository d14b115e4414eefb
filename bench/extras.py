"""The project's other benchmarks (prompt-fit cost, recorder write rate), run as subprocesses.

Their own output is kept whole; the headline number of each is read from it for the table. When a script
is missing, fails, or prints something this parser no longer recognises, the table says so instead.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from figures import Budget, Figure

BENCH_DIR = Path(__file__).resolve().parent
# bench_fit.py prints one line per case: "<case>  <n> ms  FitResult(...)".
_FIT_CASE = re.compile(r"^(?P<case>.+?)\s+(?P<ms>[\d.,]+) ms\s+FitResult", re.MULTILINE)
# bench_recorder.py: "written:   8,357 records/s (...)".
_RECORDS_PER_S = re.compile(r"written:\s+(?P<rate>[\d,]+) records/s")


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


def fit_cost(timeout_s: float = 180) -> Extra:
    """The slowest routing fit decision among bench_fit.py's cases (PRODUCT.md: ≤ 20 ms for 1M tokens)."""
    extra = _run("bench_fit.py", [], timeout_s)
    cases = [(m["case"].strip(), float(m["ms"].replace(",", ""))) for m in _FIT_CASE.finditer(extra.output)]
    if cases and not extra.error:
        case, worst = max(cases, key=lambda c: c[1])
        extra.figures.append(
            Figure(
                "fit_decision_worst", "prompt-fit decision, slowest case", worst, "ms", Budget(20), note=case
            )
        )
    elif not extra.error:
        extra.error = "its output has no lines this benchmark recognises"
    return extra


def recorder_rate(records: int, timeout_s: float = 180) -> Extra:
    """Request records written per second (PRODUCT.md: ≥ 10,000)."""
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
    return extra
