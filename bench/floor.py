"""The gateway's headline figures beside the floor's: the same measure taken on the floor apps
(``floor_apps.py``) in the same run, and the gateway's ratio to each.

The floor proper, which the "within 1.5x" targets are against, is the bare proxy over tokenmux's own
client (``proxy``): it forwards and relays and does nothing else. The trivial app (``server``) is what the
HTTP server costs with no upstream at all; the bare proxy over aiohttp (``proxy-aiohttp``) shows what the
own client saves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# The floor apps in the order of the table's columns, with what each is.
APPS = {
    "proxy": "bare proxy, own client",
    "proxy-aiohttp": "bare proxy, aiohttp",
    "server": "trivial app",
}
FLOOR = "proxy"  # the floor the ratios are against


@dataclass(slots=True)
class FloorRow:
    """One measure on the gateway and on each floor app. ``figure`` is the key of the gateway's figure it
    belongs to in the main table (None when the main table has no such figure)."""

    key: str
    label: str
    unit: str
    tokenmux: float
    apps: dict[str, float] = field(default_factory=dict)
    figure: str | None = None
    higher_is_better: bool = False  # requests/s

    def ratio(self, app: str) -> float | None:
        """The gateway's value over the app's; None when either is not above zero (a latency the app
        adds that is negative, a count that rounded to nothing)."""
        value = self.apps.get(app)
        if value is None or value <= 0 or self.tokenmux <= 0:
            return None
        return self.tokenmux / value

    def aiohttp_to_own(self) -> float | None:
        own, aiohttp = self.apps.get("proxy"), self.apps.get("proxy-aiohttp")
        if own is None or aiohttp is None or own <= 0 or aiohttp <= 0:
            return None
        return aiohttp / own

    def to_json(self) -> dict[str, Any]:
        ratio = self.ratio(FLOOR)
        return {
            "label": self.label,
            "unit": self.unit,
            "figure": self.figure,
            "tokenmux": self.tokenmux,
            "apps": dict(self.apps),
            "to_floor": None if ratio is None else round(ratio, 3),
            "to_server": _rounded(self.ratio("server")),
            "aiohttp_to_own": _rounded(self.aiohttp_to_own()),
        }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _number(value: float, unit: str) -> str:
    if unit == "req/s":
        return f"{value:,.0f} {unit}"
    if unit == "calls":
        return f"{value:.1f}"
    if unit == "ms":
        return f"{'+' if value >= 0 else ''}{value:.3f} ms"
    return f"{value:,.0f} {unit}" if abs(value) >= 100 else f"{value:,.1f} {unit}"


def _times(ratio: float | None) -> str:
    return "" if ratio is None else f"{ratio:.2f}x"


def format_floor_table(rows: Sequence[FloorRow]) -> str:
    """The gateway beside each floor app, with its ratio to the floor and to the trivial app, and the
    aiohttp proxy's to the own-client one."""
    header = (
        "figure",
        "tokenmux",
        APPS["proxy"],
        "tokenmux/floor",
        APPS["proxy-aiohttp"],
        "aiohttp/own",
        APPS["server"],
        "tokenmux/app",
    )
    table: list[tuple[str, ...]] = [header]
    for row in rows:

        def cell(app: str, row: FloorRow = row) -> str:
            value = row.apps.get(app)
            return "" if value is None else _number(value, row.unit)

        table.append(
            (
                row.label,
                _number(row.tokenmux, row.unit),
                cell("proxy"),
                _times(row.ratio("proxy")),
                cell("proxy-aiohttp"),
                _times(row.aiohttp_to_own()),
                cell("server"),
                _times(row.ratio("server")),
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = [
        "  ".join(
            (c.ljust(w) if i == 0 else c.rjust(w)) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)
