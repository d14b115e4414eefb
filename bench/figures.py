"""Benchmark figures: each value with its budget and verdict, the machine it was measured on, the table."""

from __future__ import annotations

import datetime
import math
import os
import platform
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PASS, FAIL = "✓", "✗"


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation between the two nearest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Budget:
    """The budget's limit for a figure: ``at_most`` (≤) or, for rates, at least (≥)."""

    limit: float
    at_most: bool = True

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit

    def describe(self, unit: str) -> str:
        return f"{'≤' if self.at_most else '≥'} {self.limit:,g} {unit}"


@dataclass(slots=True)
class Figure:
    """One measured number. ``direct`` and ``gateway`` are the two paths' own values when ``value`` is the
    difference between them (added latency) or a pair worth comparing (throughput)."""

    key: str
    label: str
    value: float
    unit: str
    budget: Budget | None = None
    direct: float | None = None
    gateway: float | None = None
    pair_unit: str | None = None  # the unit of ``direct`` and ``gateway`` when it is not ``unit``
    note: str = ""
    # For a translated call: the same-protocol call's value of this figure, which the budget is for.
    same_protocol: float | None = None

    @property
    def ok(self) -> bool | None:
        return None if self.budget is None else self.budget.met(self.value)

    def verdict(self) -> str:
        ok = self.ok
        return "" if ok is None else PASS if ok else FAIL

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["budget"] = self.budget.describe(self.unit) if self.budget else None
        data["ok"] = self.ok
        return data


def _number(value: float, unit: str) -> str:
    if unit in ("req/s", "records/s"):
        return f"{value:,.0f}"
    if unit in ("MB", "%", "calls"):
        return f"{value:,.1f}"
    if unit == "µs":
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"


def _cell(value: float | None, unit: str, signed: bool = False) -> str:
    if value is None:
        return ""
    text = _number(value, unit)
    return f"{'+' if signed and value >= 0 else ''}{text} {unit}"


def format_table(figures: Sequence[Figure]) -> str:
    """One row per figure. A "same protocol" column appears when some figure is a translated call's."""
    compared = any(f.same_protocol is not None for f in figures)
    header = ("figure", "direct", "gateway", "result", "same protocol", "budget", "")
    rows: list[tuple[str, ...]] = [header]
    for f in figures:
        signed = f.direct is not None and f.unit == "ms"
        pair_unit = f.pair_unit or f.unit
        rows.append(
            (
                f.label,
                _cell(f.direct, pair_unit),
                _cell(f.gateway, pair_unit),
                _cell(f.value, f.unit, signed=signed),
                _cell(f.same_protocol, f.unit, signed=signed),
                f.budget.describe(f.unit) if f.budget else "",
                f.verdict(),
            )
        )
    align = [str.ljust, str.rjust, str.rjust, str.rjust, str.rjust, str.ljust, str.ljust]
    if not compared:
        rows = [r[:4] + r[5:] for r in rows]
        align = align[:4] + align[5:]
    widths = [max(len(r[i]) for r in rows) for i in range(len(align))]
    lines = ["  ".join(a(c, w) for a, c, w in zip(align, r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    notes = [f"  {f.label}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    from tokenmux import __version__

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
        "tokenmux": __version__,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def describe_machine(info: dict[str, Any]) -> str:
    return (
        f"{info['cpu']}, {info['cores']} cores ({info['cores_usable']} usable), {info['python']}, "
        f"{info['os']}, tokenmux {info['tokenmux']}, {info['date']}"
    )
