"""Prometheus metrics: counted where a generation is recorded, so the request path adds one dict update."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol

from tokenmux.store.records import GenerationRecord


class RecorderCounters(Protocol):
    def counters(self) -> dict[str, int]: ...


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


class Metrics:
    def __init__(self, recorder: RecorderCounters) -> None:
        self._recorder = recorder
        self.generations: Counter[tuple[str, str, str]] = Counter()  # (model, provider, status)
        self.attempts: Counter[tuple[str, str]] = Counter()  # (provider, outcome/error class)
        self.errors: Counter[int] = Counter()  # error responses by status
        self.tokens: Counter[tuple[str, str]] = Counter()  # (provider, prompt|completion)
        self.cost_usd = 0.0
        self.latency_ms_sum = 0.0
        self.latency_count = 0
        # With --redis: the shared state's health (redis_up, redis_failures, settlements_pending).
        self.shared: Callable[[], dict[str, int]] | None = None

    def observe(self, gen: GenerationRecord) -> None:
        self.generations[(gen.model or gen.requested_model, gen.provider or "none", gen.status)] += 1
        for a in gen.attempts:
            self.attempts[(a.provider, a.error_class or a.outcome)] += 1
        if gen.provider:
            self.tokens[(gen.provider, "prompt")] += gen.prompt_tokens
            self.tokens[(gen.provider, "completion")] += gen.completion_tokens
        self.cost_usd += gen.cost_usd
        self.latency_ms_sum += gen.latency_ms
        self.latency_count += 1

    def error(self, status: int) -> None:
        self.errors[status] += 1

    def render(self) -> str:
        lines = [
            "# HELP tokenmux_generations_total Requests finished, by serving model, provider and status.",
            "# TYPE tokenmux_generations_total counter",
        ]
        for (model, provider, status), n in sorted(self.generations.items()):
            lines.append(
                f"tokenmux_generations_total{_labels(model=model, provider=provider, status=status)} {n}"
            )
        lines += [
            "# HELP tokenmux_attempts_total Upstream attempts, by provider and outcome.",
            "# TYPE tokenmux_attempts_total counter",
        ]
        for (provider, outcome), n in sorted(self.attempts.items()):
            lines.append(f"tokenmux_attempts_total{_labels(provider=provider, outcome=outcome)} {n}")
        lines += [
            "# HELP tokenmux_error_responses_total Error responses sent to clients, by HTTP status.",
            "# TYPE tokenmux_error_responses_total counter",
        ]
        for code, n in sorted(self.errors.items()):
            lines.append(f"tokenmux_error_responses_total{_labels(status=str(code))} {n}")
        lines += [
            "# HELP tokenmux_tokens_total Tokens served, by provider and kind.",
            "# TYPE tokenmux_tokens_total counter",
        ]
        for (provider, kind), n in sorted(self.tokens.items()):
            lines.append(f"tokenmux_tokens_total{_labels(provider=provider, kind=kind)} {n}")
        lines += [
            "# HELP tokenmux_cost_usd_total Cost of all generations at catalog prices.",
            "# TYPE tokenmux_cost_usd_total counter",
            f"tokenmux_cost_usd_total {self.cost_usd:.10f}",
            "# HELP tokenmux_generation_latency_ms Total latency of finished requests.",
            "# TYPE tokenmux_generation_latency_ms summary",
            f"tokenmux_generation_latency_ms_sum {self.latency_ms_sum:.3f}",
            f"tokenmux_generation_latency_ms_count {self.latency_count}",
            "# HELP tokenmux_recorder Request-log writer counters.",
            "# TYPE tokenmux_recorder gauge",
        ]
        for name, value in sorted(self._recorder.counters().items()):
            lines.append(f"tokenmux_recorder{_labels(counter=name)} {value}")
        if self.shared is not None:
            lines += [
                "# HELP tokenmux_shared Redis shared by replicas: reachable, failed calls, settlements waiting.",
                "# TYPE tokenmux_shared gauge",
            ]
            for name, value in sorted(self.shared().items()):
                lines.append(f"tokenmux_shared{_labels(gauge=name)} {value}")
        return "\n".join(lines) + "\n"
