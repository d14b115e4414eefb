"""A model's ``/endpoints`` payload turned into what its page shows: chart, provider cards, sample code.

Formatting of single numbers stays in the template (filters); what needs arithmetic or a clock is here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tokenmux.web import formatting
from tokenmux.web.charts import HourBar, ResponsiveChart, hourly_uptime_bars, responsive_daily_chart
from tokenmux.web.samples import CodeSample, code_samples


@dataclass(frozen=True, slots=True)
class PriceRow:
    label: str
    amount: str  # "$ 0.1", or "-" when the endpoint has no such price
    unit: str  # "/ M tokens", "/ request", or "" with "-"


@dataclass(frozen=True, slots=True)
class ProviderCard:
    endpoint: Mapping[str, Any]
    uptime_bars: tuple[HourBar, ...]
    prices: tuple[PriceRow, ...]
    tiers: tuple[str, ...]  # "Prompts above 200K tokens: input $ 2.5, output $ 15 / M tokens"

    @property
    def anchor(self) -> str:
        return f"provider-{self.endpoint['provider_name']}"


@dataclass(frozen=True, slots=True)
class ModelPageView:
    model: Mapping[str, Any]
    activity: ResponsiveChart
    cards: tuple[ProviderCard, ...]
    samples: tuple[CodeSample, ...]
    fastest: str | None  # provider with the highest average throughput over the last day
    quickest: str | None  # provider with the lowest average first-token latency over the last day


def _price(label: str, amount: float | None, unit: str) -> PriceRow:
    if amount is None:
        return PriceRow(label, formatting.MISSING, "")
    return PriceRow(label, formatting.usd(amount), unit)


def _prices(pricing: Mapping[str, Any]) -> tuple[PriceRow, ...]:
    per_m = pricing["pricing_per_million"]
    web_search = pricing.get("web_search")
    return (
        _price("Input", per_m["input"], "/ M tokens"),
        _price("Output", per_m["output"], "/ M tokens"),
        _price("Cache read", per_m.get("cache_read"), "/ M tokens"),
        _price("Cache write 5m", per_m.get("cache_write_5m"), "/ M tokens"),
        _price("Cache write 1h", per_m.get("cache_write_1h"), "/ M tokens"),
        _price("Web search", None if web_search is None else float(web_search), "/ request"),
    )


def _tiers(pricing: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(
        f"Prompts above {formatting.compact(t['above_tokens'])} tokens: input {formatting.usd(t['input'])}, "
        f"output {formatting.usd(t['output'])} / M tokens"
        for t in pricing["pricing_per_million"].get("tiers") or ()
    )


def _best(endpoints: list[Mapping[str, Any]], figure: str, *, highest: bool) -> str | None:
    """The provider whose last-day average of ``figure`` is best; None unless two or more were measured."""
    measured = [(e[figure]["avg"], e["provider_name"]) for e in endpoints if e.get(figure)]
    if len(measured) < 2:
        return None
    return (max(measured) if highest else min(measured))[1]


def model_page_view(payload: Mapping[str, Any], base_url: str, now: float) -> ModelPageView:
    days = [(d["date"], float(d["tokens"])) for d in payload.get("tokens_per_day") or ()]
    cards = tuple(
        ProviderCard(
            endpoint=e,
            uptime_bars=hourly_uptime_bars(e.get("uptime_hourly") or (), now),
            prices=_prices(e["pricing"]),
            tiers=_tiers(e["pricing"]),
        )
        for e in payload["endpoints"]
    )
    return ModelPageView(
        model=payload,
        activity=responsive_daily_chart(days, unit="tokens"),
        cards=cards,
        samples=code_samples(base_url, payload["id"]),
        fastest=_best(payload["endpoints"], "throughput_last_1d", highest=True),
        quickest=_best(payload["endpoints"], "latency_last_1d", highest=False),
    )
