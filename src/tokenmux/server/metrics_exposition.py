"""The Prometheus exposition of a gateway's counters (``metrics.py``), written by ``prometheus_client``.

Imported on the first scrape of ``/metrics`` and not before: ``prometheus_client`` and the modules it
imports hold about 2.5 MB that a gateway nobody scrapes does not need. ``ops_routes.py``
imports it when ``/metrics`` is first read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar
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


Family = TypeVar("Family", CounterMetricFamily, GaugeMetricFamily)


def labelled(
    kind: type[Family],
    name: str,
    documentation: str,
    labels: Sequence[str],
    samples: Iterable[tuple[Sequence[str], float]],
) -> Family:
    """A counter or gauge family with one sample per tuple of label values."""
    family = kind(name, documentation, labels=list(labels))
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


class _GatewayCollector(Collector):
    """The families of one gateway's counters, built when they are scraped."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        m = self.metrics
        yield labelled(
            CounterMetricFamily,
            "tokenmux_generations",
            "Requests finished, by serving model, provider and status.",
            ("model", "provider", "status"),
            sorted(m.generations.items()),
        )
        yield labelled(
            CounterMetricFamily,
            "tokenmux_attempts",
            "Upstream attempts, by provider and outcome.",
            ("provider", "outcome"),
            sorted(m.attempts.items()),
        )
        yield labelled(
            CounterMetricFamily,
            "tokenmux_error_responses",
            "Error responses sent to clients, by HTTP status.",
            ("status",),
            [((str(status),), n) for status, n in sorted(m.errors.items())],
        )
        yield labelled(
            CounterMetricFamily,
            "tokenmux_tokens",
            "Tokens served, by provider and kind.",
            ("provider", "kind"),
            sorted(m.tokens.items()),
        )
        yield CounterMetricFamily(
            "tokenmux_cost_usd", "Cost of all generations at catalog prices.", value=m.cost_usd
        )
        yield labelled(
            CounterMetricFamily,
            "tokenmux_auth_failures",
            "Requests refused for their API key (missing, unknown, revoked, expired, too long, throttled).",
            ("reason",),
            [((reason,), n) for reason, n in sorted(m.auth_failures.items())],
        )
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
        yield labelled(
            CounterMetricFamily,
            "tokenmux_recorder_records",
            "Request-log writer: records by what happened to them.",
            ("event",),
            [((event,), recorder[event]) for event in RECORDER_EVENTS if event in recorder],
        )
        yield GaugeMetricFamily(
            "tokenmux_recorder_pending",
            "Request records waiting for the database.",
            value=recorder.get("pending", 0),
        )
        if m.bodies is not None:
            bodies = m.bodies()
            yield labelled(
                GaugeMetricFamily,
                "tokenmux_request_bodies",
                "Request bodies in flight: bytes held, the budget's limit, requests waiting for room.",
                ("gauge",),
                [((name,), bodies[name]) for name in ("in_use_bytes", "limit_bytes", "waiting")],
            )
            yield CounterMetricFamily(
                "tokenmux_request_bodies_refused",
                "Requests answered 503 because the body budget had no room for their body in time.",
                value=bodies["refused"],
            )
        if m.shared is not None:
            shared = m.shared()
            yield labelled(
                GaugeMetricFamily,
                "tokenmux_shared",
                "Redis shared by replicas: reachable, settlements waiting.",
                ("gauge",),
                [((name,), shared[name]) for name in ("redis_up", "settlements_pending") if name in shared],
            )
            yield CounterMetricFamily(
                "tokenmux_redis_failures", "Redis calls that failed.", value=shared.get("redis_failures", 0)
            )
