"""The measurements: the same small chat completion sent straight to the simulator and through the gateway.

Both paths ask the simulator's ``openai`` prefix (the gateway with ``provider.only = ["openai"]``), whose
default profile answers at once with no pacing, so what separates the two paths is the gateway alone.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from figures import Budget, Figure, percentile
from loadgen import Batch, Target, Timing, build_request, concurrent, sequential
from stack import HOST, Stack

MODEL = "openai/gpt-4.1-nano"
UPSTREAM_MODEL = "gpt-4.1-nano"
MESSAGES = [{"role": "user", "content": "Say hello in one short sentence."}]
STREAM_FIELDS = {"stream": True, "stream_options": {"include_usage": True}}
# Records are written ~50 ms after their answers; waiting this long before reading the gateway's CPU
# counts that work in the batch that caused it.
SETTLE_S = 0.4


@dataclass(slots=True)
class Plan:
    requests: int = 2000
    warmup: int = 200
    cpu_concurrency: int = 8
    throughput_concurrency: int = 64


def targets(stack: Stack) -> tuple[Target, Target]:
    """The direct path and the gateway path, as request bytes built once."""

    def target(name: str, port: int, path: str, body: dict[str, Any], key: str) -> Target:
        headers = {"Authorization": f"Bearer {key}"}
        return Target(
            name,
            HOST,
            port,
            build_request(HOST, port, path, body, headers),
            build_request(HOST, port, path, {**body, **STREAM_FIELDS}, headers),
        )

    direct = target(
        "direct",
        stack.simulator.port,
        "/openai/v1/chat/completions",
        {"model": UPSTREAM_MODEL, "messages": MESSAGES},
        "sk-bench",
    )
    gateway = target(
        "gateway",
        stack.gateway.port,
        "/api/v1/chat/completions",
        {"model": MODEL, "messages": MESSAGES, "provider": {"only": ["openai"]}},
        stack.api_key,
    )
    return direct, gateway


def _ms(seconds: float) -> float:
    return seconds * 1000


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _added(
    key: str,
    label: str,
    q: float,
    batches: list[Batch],
    pick: Callable[[Timing], float | None],
    budget: Budget | None,
) -> Figure:
    direct, gateway = (percentile([v for t in b.timings if (v := pick(t)) is not None], q) for b in batches)
    return Figure(key, label, _ms(gateway - direct), "ms", budget, direct=_ms(direct), gateway=_ms(gateway))


async def _warm_up(direct: Target, gateway: Target, plan: Plan) -> None:
    c = plan.throughput_concurrency
    _progress(f"warm-up: {plan.warmup} requests per path and kind, then {c} connections")
    for streamed in (False, True):
        await sequential([direct, gateway], plan.warmup, streamed=streamed)
        # At least one request per connection, so that the gateway's upstream connection pool has grown to
        # what the throughput runs need before anything is measured.
        for target in (direct, gateway):
            await concurrent(target, max(plan.warmup, c), c, streamed=streamed)


async def _latency(stack: Stack, direct: Target, gateway: Target, plan: Plan) -> list[Figure]:
    # Only the gateway's requests reach the gateway, so its CPU over an alternating run is theirs alone:
    # at concurrency 1 it is most of the added latency.
    cpu_us: list[float] = []
    batches: list[list[Batch]] = []
    for streamed, kind in ((False, "non-streamed"), (True, "streamed")):
        _progress(f"latency, concurrency 1: {plan.requests} {kind} requests per path")
        await asyncio.sleep(SETTLE_S)
        before = stack.gateway.cpu_times()
        batches.append(await sequential([direct, gateway], plan.requests, streamed=streamed))
        await asyncio.sleep(SETTLE_S)
        cpu_us.append((stack.gateway.cpu_times() - before).total_s / plan.requests * 1e6)
    plain, streamed_ = batches

    def total(t: Timing) -> float:
        return t.total_s

    def first(t: Timing) -> float | None:
        return t.first_content_s

    figures = [
        _added("added_latency_p50", "added latency p50 (non-streamed, c=1)", 50, plain, total, Budget(0.5)),
        _added("added_latency_p99", "added latency p99 (non-streamed, c=1)", 99, plain, total, Budget(2.0)),
        _added(
            "added_first_token_p50",
            "added first-token p50 (streamed, c=1)",
            50,
            streamed_,
            first,
            Budget(1.0),
        ),
        _added("added_first_token_p99", "added first-token p99 (streamed, c=1)", 99, streamed_, first, None),
        _added("added_stream_total_p50", "added full-stream p50 (streamed, c=1)", 50, streamed_, total, None),
    ]
    figures[0].note = f"the gateway spent {cpu_us[0]:.0f} µs of CPU per request in this run"
    figures[2].note = f"the gateway spent {cpu_us[1]:.0f} µs of CPU per streamed request in this run"
    return figures


@dataclass(slots=True)
class CpuCost:
    """CPU per request over one batch, in µs: the gateway's (user, system) and the simulator's."""

    gateway_user_us: float
    gateway_system_us: float
    simulator_us: float
    batch: Batch

    @property
    def gateway_us(self) -> float:
        return self.gateway_user_us + self.gateway_system_us

    def describe(self) -> str:
        return (
            f"user {self.gateway_user_us:.0f} + system {self.gateway_system_us:.0f} µs; "
            f"the simulator behind it spent {self.simulator_us:.0f} µs/request"
        )


async def _cpu_cost(stack: Stack, target: Target, count: int, concurrency: int, *, streamed: bool) -> CpuCost:
    """CPU per request over one batch, the gateway's recording of that batch included."""
    await asyncio.sleep(SETTLE_S)
    gateway_before, simulator_before = stack.gateway.cpu_times(), stack.simulator.cpu_times()
    batch = await concurrent(target, count, concurrency, streamed=streamed)
    await asyncio.sleep(SETTLE_S)
    gateway = stack.gateway.cpu_times() - gateway_before
    simulator = stack.simulator.cpu_times() - simulator_before
    n = len(batch.timings)
    return CpuCost(gateway.user_s / n * 1e6, gateway.system_s / n * 1e6, simulator.total_s / n * 1e6, batch)


async def _cpu(stack: Stack, gateway: Target, plan: Plan) -> list[Figure]:
    figures = []
    c = plan.cpu_concurrency
    for streamed, key, kind, budget in (
        (False, "gateway_cpu_per_request", "non-streamed", Budget(250)),
        (True, "gateway_cpu_per_streamed_request", "streamed", None),
    ):
        _progress(f"gateway CPU: {plan.requests} {kind} requests at concurrency {c}")
        cost = await _cpu_cost(stack, gateway, plan.requests, c, streamed=streamed)
        label = f"gateway CPU per request ({kind}, c={c})"
        figures.append(Figure(key, label, cost.gateway_us, "µs", budget, note=cost.describe()))
    return figures


async def _throughput(stack: Stack, direct: Target, gateway: Target, plan: Plan) -> list[Figure]:
    figures = []
    c = plan.throughput_concurrency
    for streamed, kind in ((False, "non-streamed"), (True, "streamed")):
        _progress(f"throughput: {plan.requests} {kind} requests per path at concurrency {c}")
        client_before = _own_cpu_s()
        direct_batch = await concurrent(direct, plan.requests, c, streamed=streamed)
        client_us = (_own_cpu_s() - client_before) / len(direct_batch.timings) * 1e6
        cost = await _cpu_cost(stack, gateway, plan.requests, c, streamed=streamed)
        gateway_batch = cost.batch
        p50 = [_ms(percentile([t.total_s for t in b.timings], 50)) for b in (direct_batch, gateway_batch)]
        figures.append(
            Figure(
                f"throughput_{'streamed' if streamed else 'non_streamed'}",
                f"throughput ({kind}, c={c}), gateway vs direct",
                gateway_batch.rate / direct_batch.rate * 100,
                "%",
                direct=direct_batch.rate,
                gateway=gateway_batch.rate,
                pair_unit="req/s",
                note=f"latency p50 direct {p50[0]:.2f} ms, gateway {p50[1]:.2f} ms; gateway CPU "
                f"{cost.gateway_us:.0f} µs/request at this load; load generator {client_us:.0f} µs/request",
            )
        )
    return figures


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def run_plan(stack: Stack, plan: Plan) -> list[Figure]:
    direct, gateway = targets(stack)
    await _warm_up(direct, gateway, plan)
    figures = await _latency(stack, direct, gateway, plan)
    figures += await _cpu(stack, gateway, plan)
    figures += await _throughput(stack, direct, gateway, plan)
    rss_mb = stack.gateway.memory_kib("VmRSS") / 1024
    peak_mb = stack.gateway.memory_kib("VmHWM") / 1024
    figures.append(
        Figure(
            "gateway_rss",
            "gateway resident memory after the run",
            rss_mb,
            "MB",
            Budget(150),
            note=f"after {gateway.sent:,} requests, peak {peak_mb:.1f} MB; PRODUCT.md's budget applies after "
            "100,000 requests and a 10-minute soak, which this run does not do",
        )
    )
    return figures
