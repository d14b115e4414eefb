"""The Prometheus exposition of a gateway's counters (``metrics.py``), written by ``prometheus_client``.

Imported on the first scrape of ``/metrics`` and not before: ``prometheus_client`` and the modules it
imports hold about 2.5 MB that a gateway nobody scrapes does not need. ``ops_routes.py``
imports it when ``/metrics`` is first read.
"""

from __future__ import annotations

from collections.abc import Iterator
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from tokenmux.server.metrics import RECORDER_EVENTS, Histogram, Metrics

# Each gateway's registry, holding the collector of its counters; gone with its gateway's ``Metrics``.
_registries: WeakKeyDictionary[Metrics, CollectorRegistry] = WeakKeyDictionary()


def render(metrics: Metrics) -> bytes:
    """The exposition text of every family of a gateway's counters (``/metrics``)."""
    registry = _registries.get(metrics)
    if registry is None:
        registry = _registries[metrics] = CollectorRegistry(auto_describe=False)
        registry.register(_GatewayCollector(metrics))
    return generate_latest(registry)


def histogram_family(
    histogram: Histogram, name: str, documentation: str, label: str | None
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=[label] if label else None)
    for value, (counts, total) in sorted(histogram.series.items()):
        cumulative = 0
        buckets = []
        for bound, count in zip((*histogram.bounds, float("inf")), counts, strict=True):
            cumulative += count
            buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
        family.add_metric([value] if label else [], buckets, total[0])
    return family


class _GatewayCollector(Collector):
    """The families of one gateway's counters, built when they are scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        m = self.metrics
        generations = CounterMetricFamily(
            "tokenmux_generations",
            "Requests finished, by serving model, provider and status.",
            labels=["model", "provider", "status"],
        )
        for labels3, n in sorted(m.generations.items()):
            generations.add_metric(list(labels3), n)
        yield generations
        family = CounterMetricFamily(
            "tokenmux_attempts", "Upstream attempts, by provider and outcome.", labels=["provider", "outcome"]
        )
        for labels, n in sorted(m.attempts.items()):
            family.add_metric(list(labels), n)
        yield family
        family = CounterMetricFamily(
            "tokenmux_error_responses", "Error responses sent to clients, by HTTP status.", labels=["status"]
        )
        for status, n in sorted(m.errors.items()):
            family.add_metric([str(status)], n)
        yield family
        family = CounterMetricFamily(
            "tokenmux_tokens", "Tokens served, by provider and kind.", labels=["provider", "kind"]
        )
        for labels, n in sorted(m.tokens.items()):
            family.add_metric(list(labels), n)
        yield family
        yield CounterMetricFamily(
            "tokenmux_cost_usd", "Cost of all generations at catalog prices.", value=m.cost_usd
        )
        family = CounterMetricFamily(
            "tokenmux_auth_failures",
            "Requests refused for their API key (missing, unknown, revoked, expired, too long, throttled).",
            labels=["reason"],
        )
        for reason, n in sorted(m.auth_failures.items()):
            family.add_metric([reason], n)
        yield family
        yield histogram_family(
            m.latency,
            "tokenmux_generation_latency_seconds",
            "Latency of finished requests, from the routing plan to the answer's end.",
            "provider",
        )
        yield histogram_family(
            m.first_token,
            "tokenmux_first_token_latency_seconds",
            "Time to the upstream's first token, streamed requests.",
            "provider",
        )
        yield histogram_family(
            m.overhead,
            "tokenmux_gateway_overhead_seconds",
            "A generation's time in the gateway outside its upstream calls (planning, relaying, encoding).",
            None,
        )
        recorder = m.recorder.counters()
        family = CounterMetricFamily(
            "tokenmux_recorder_records",
            "Request-log writer: records by what happened to them.",
            labels=["event"],
        )
        for event in RECORDER_EVENTS:
            if event in recorder:
                family.add_metric([event], recorder[event])
        yield family
        yield GaugeMetricFamily(
            "tokenmux_recorder_pending",
            "Request records waiting for the database.",
            value=recorder.get("pending", 0),
        )
        if m.bodies is not None:
            bodies = m.bodies()
            gauges = GaugeMetricFamily(
                "tokenmux_request_bodies",
                "Request bodies in flight: bytes held, the budget's limit, requests waiting for room.",
                labels=["gauge"],
            )
            for name in ("in_use_bytes", "limit_bytes", "waiting"):
                gauges.add_metric([name], bodies[name])
            yield gauges
            yield CounterMetricFamily(
                "tokenmux_request_bodies_refused",
                "Requests answered 503 because the body budget had no room for their body in time.",
                value=bodies["refused"],
            )
        if m.shared is not None:
            shared = m.shared()
            gauges = GaugeMetricFamily(
                "tokenmux_shared",
                "Redis shared by replicas: reachable, settlements waiting.",
                labels=["gauge"],
            )
            for name in ("redis_up", "settlements_pending"):
                if name in shared:
                    gauges.add_metric([name], shared[name])
            yield gauges
            yield CounterMetricFamily(
                "tokenmux_redis_failures", "Redis calls that failed.", value=shared.get("redis_failures", 0)
            )
