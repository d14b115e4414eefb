"""Numbers, prices and times the way model pages show them (``1.05M``, ``$ 0.1 / M tokens``, ``0.58``).

Every helper takes ``None`` for "not measured" or "not offered" and shows it as ``-``, so templates never
branch on missing figures. They are registered as Jinja filters in ``templates.py``.
"""

from __future__ import annotations

import datetime as dt

MISSING = "-"

_UNITS = ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K"))


def _trimmed(value: float, decimals: int) -> str:
    """Fixed decimals without trailing zeros: 1296.430 -> "1296.43", 1149.00 -> "1149"."""
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def compact(n: float | None) -> str:
    """1,047,576 -> "1.05M", 32,768 -> "32.77K", 128,000 -> "128K", 950 -> "950"."""
    if n is None:
        return MISSING
    size = abs(n)
    for scale, suffix in _UNITS:
        # Largest unit first, judged after rounding: 999,999 is "1M", not "1000K".
        if round(size / scale, 2) >= 1:
            return _trimmed(n / scale, 2) + suffix
    return _trimmed(n, 2)


def plain(value: float | None) -> str:
    """A number as a form value: 2.0 -> "2", 0.25 -> "0.25" (no unit, no grouping)."""
    if value is None:
        return ""
    return _trimmed(value, 6)


def grouped(n: float | None) -> str:
    """An exact count with thousands separators, for tables of a key's usage: 12345 -> "12,345"."""
    if n is None:
        return MISSING
    return f"{round(n):,}"


def usd(amount: float | None) -> str:
    """A price as the seed page writes it: 0.1 -> "$ 0.1", 0.025 -> "$ 0.025", 15 -> "$ 15"."""
    if amount is None:
        return MISSING
    return f"$ {_trimmed(amount, 6)}"


def per_million(amount: float | None) -> str:
    """A token price in USD per million tokens: 0.1 -> "$ 0.1 / M tokens"."""
    if amount is None:
        return MISSING
    return f"{usd(amount)} / M tokens"


def per_request(amount: float | None) -> str:
    """A price per request (web search): 0.01 -> "$ 0.01 / request"."""
    if amount is None:
        return MISSING
    return f"{usd(amount)} / request"


def cost(amount: float | None) -> str:
    """What a key spent: cents for whole dollars, enough decimals for fractions of a cent."""
    if amount is None:
        return MISSING
    if amount >= 1:
        return f"$ {amount:,.2f}"
    return f"$ {_trimmed(amount, 6)}"


def decimal2(value: float | None) -> str:
    """A measured figure in a table: 1296.43, 1149, 29.85."""
    if value is None:
        return MISSING
    return _trimmed(value, 2)


def fixed2(value: float | None) -> str:
    """A headline figure on a provider card: always two decimals, "12.05", "100.00"."""
    if value is None:
        return MISSING
    return f"{value:.2f}"


def seconds(milliseconds: float | None) -> str:
    """A first-token latency in ms shown in seconds: 580 -> "0.58"."""
    if milliseconds is None:
        return MISSING
    return f"{milliseconds / 1000:.2f}"


def percent(value: float | None) -> str:
    """An uptime: 99.5 -> "99.50%"."""
    if value is None:
        return MISSING
    return f"{value:.2f}%"


def hour_label(unix_seconds: float) -> str:
    """The hour an uptime bar covers: "Oct 10, 2025 - 3 PM UTC"."""
    at = dt.datetime.fromtimestamp(unix_seconds, tz=dt.UTC)
    hour = at.hour % 12 or 12
    return f"{at:%b} {at.day}, {at.year} - {hour} {'AM' if at.hour < 12 else 'PM'} UTC"


def day_label(iso_date: str) -> str:
    """A day of a chart or table: "2025-10-10" -> "Oct 10"."""
    try:
        day = dt.date.fromisoformat(iso_date)
    except ValueError:
        return iso_date
    return f"{day:%b} {day.day}"


def timestamp(iso: str | None) -> str:
    """An ISO time from the request log, shortened for a table: "2025-10-10 15:04:05 UTC"."""
    if not iso:
        return MISSING
    try:
        at = dt.datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:
        return iso
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


def unix_date(unix_seconds: float | None) -> str:
    """A model's release date: 1744588800 -> "Apr 14, 2025"."""
    if not unix_seconds:
        return MISSING
    at = dt.datetime.fromtimestamp(unix_seconds, tz=dt.UTC)
    return f"{at:%b} {at.day}, {at.year}"
