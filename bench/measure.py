"""The measurements: the same small chat completion sent straight to the simulator and through the gateway.

The same-protocol call (OpenAI in, OpenAI out) is the one the performance budget is for. Both its paths ask
the simulator's ``openai`` prefix (the gateway with ``provider.only = ["openai"]``), whose default profile
answers at once with no pacing, so what separates the two paths is the gateway alone.

The gateway's other routes are measured beside it, each against a direct call in the protocol the gateway
speaks upstream: Anthropic in, OpenAI out (against the same direct OpenAI call); OpenAI in, Anthropic out
(against a direct Anthropic Messages call to the simulator's ``anthropic`` prefix); the Responses API in,
to OpenAI as Responses (against a direct Responses call) and translated to Anthropic; the Gemini API in, to
Google as Gemini (against a direct ``generateContent`` call to the ``google`` prefix) and translated to
OpenAI.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from figures import Budget, Figure, percentile
from loadgen import (
    ANTHROPIC_STREAM,
    GEMINI_STREAM,
    OPENAI_STREAM,
    RESPONSES_STREAM,
    Batch,
    StreamFormat,
    Target,
    Timing,
    build_request,
    concurrent,
    sequential,
)
from stack import HOST, Stack

MODEL = "openai/gpt-4.1-nano"
UPSTREAM_MODEL = "gpt-4.1-nano"
CLAUDE_MODEL = "anthropic/claude-haiku-4.5"
CLAUDE_UPSTREAM_MODEL = "claude-haiku-4-5"
GEMINI_MODEL = "google/gemini-2.5-flash"
GEMINI_UPSTREAM_MODEL = "gemini-2.5-flash"
PROMPT = "Say hello in one short sentence."
MESSAGES = [{"role": "user", "content": PROMPT}]
CONTENTS = [{"role": "user", "parts": [{"text": PROMPT}]}]
# What each protocol adds to a request body to have it streamed (Gemini says it in the URL instead).
STREAM_FIELDS = {
    OPENAI_STREAM.name: {"stream": True, "stream_options": {"include_usage": True}},
    ANTHROPIC_STREAM.name: {"stream": True},
    RESPONSES_STREAM.name: {"stream": True},
    GEMINI_STREAM.name: {},
}
# Messages requests must give max_tokens; this is well above the simulator's 24-token answer, so every
# path gets the same answer.
MAX_TOKENS = 256
ANTHROPIC_VERSION = "2023-06-01"
# Records are written ~50 ms after their answers; waiting this long before reading the gateway's CPU
# counts that work in the batch that caused it.
SETTLE_S = 0.4


@dataclass(slots=True)
class Plan:
    requests: int = 2000
    warmup: int = 200
    cpu_concurrency: int = 8
    throughput_concurrency: int = 64


@dataclass(frozen=True, slots=True)
class Translation:
    """A call by another route than the same-protocol one: in one protocol from the client, out in the
    same or another to the provider."""

    key: str  # prefix of its figures' keys
    label: str
    gateway: Target
    direct: Target  # the baseline: the simulator asked in the protocol the gateway sends upstream


@dataclass(frozen=True, slots=True)
class Paths:
    direct: Target  # OpenAI format, straight to the simulator
    gateway: Target  # OpenAI in, OpenAI out: the same-protocol call
    baselines: tuple[Target, ...]  # the other protocols, straight to the simulator
    translations: tuple[Translation, ...]

    def all(self) -> list[Target]:
        return [self.direct, self.gateway, *self.baselines, *(t.gateway for t in self.translations)]

    def through_gateway(self) -> list[Target]:
        return [self.gateway, *(t.gateway for t in self.translations)]


def _target(
    name: str,
    port: int,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    stream_format: StreamFormat,
    stream_path: str | None = None,
) -> Target:
    streamed = {**body, **STREAM_FIELDS[stream_format.name]}
    return Target(
        name,
        HOST,
        port,
        build_request(HOST, port, path, body, headers),
        build_request(HOST, port, stream_path or path, streamed, headers),
        stream_format,
    )


def _openai_target(name: str, port: int, path: str, body: dict[str, Any], key: str) -> Target:
    return _target(name, port, path, body, {"Authorization": f"Bearer {key}"}, OPENAI_STREAM)


def _anthropic_target(
    name: str, port: int, path: str, model: str, key: str, extra: dict[str, Any] | None = None
) -> Target:
    # What the official SDK sends: the key in x-api-key, and the API version.
    headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
    body = {"model": model, "max_tokens": MAX_TOKENS, "messages": MESSAGES, **(extra or {})}
    return _target(name, port, path, body, headers, ANTHROPIC_STREAM)


def _responses_target(name: str, port: int, path: str, model: str, key: str, provider: str | None) -> Target:
    body: dict[str, Any] = {"model": model, "input": PROMPT, "max_output_tokens": MAX_TOKENS}
    if provider:
        body["provider"] = {"only": [provider]}
    return _target(name, port, path, body, {"Authorization": f"Bearer {key}"}, RESPONSES_STREAM)


def _gemini_target(
    name: str, port: int, models_path: str, model: str, key: str, provider: str | None
) -> Target:
    # What the google-genai SDK sends: the key in x-goog-api-key, the model and the method in the URL.
    body: dict[str, Any] = {"contents": CONTENTS, "generationConfig": {"maxOutputTokens": MAX_TOKENS}}
    if provider:
        body["provider"] = {"only": [provider]}
    return _target(
        name,
        port,
        f"{models_path}/{model}:generateContent",
        body,
        {"x-goog-api-key": key},
        GEMINI_STREAM,
        stream_path=f"{models_path}/{model}:streamGenerateContent?alt=sse",
    )


def paths(stack: Stack) -> Paths:
    """Every path, as request bytes built once."""
    sim, gw, key = stack.simulator.port, stack.gateway.port, stack.api_key
    direct = _openai_target(
        "direct",
        sim,
        "/openai/v1/chat/completions",
        {"model": UPSTREAM_MODEL, "messages": MESSAGES},
        "sk-bench",
    )
    direct_anthropic = _anthropic_target(
        "direct-anthropic", sim, "/anthropic/v1/messages", CLAUDE_UPSTREAM_MODEL, "bench"
    )
    direct_responses = _responses_target(
        "direct-responses", sim, "/openai/v1/responses", UPSTREAM_MODEL, "sk-bench", None
    )
    direct_gemini = _gemini_target(
        "direct-gemini", sim, "/google/v1beta/models", GEMINI_UPSTREAM_MODEL, "bench", None
    )
    gateway = _openai_target(
        "gateway",
        gw,
        "/api/v1/chat/completions",
        {"model": MODEL, "messages": MESSAGES, "provider": {"only": ["openai"]}},
        key,
    )
    # The gateway reads its routing preferences (provider.only) from a Messages request too.
    anthropic_in = _anthropic_target(
        "gateway-anthropic-in",
        gw,
        "/api/anthropic/v1/messages",
        MODEL,
        key,
        {"provider": {"only": ["openai"]}},
    )
    anthropic_out = _openai_target(
        "gateway-anthropic-out",
        gw,
        "/api/v1/chat/completions",
        {"model": CLAUDE_MODEL, "messages": MESSAGES, "provider": {"only": ["anthropic"]}},
        key,
    )
    responses = "/api/v1/responses"
    gemini = "/api/gemini/v1beta/models"
    return Paths(
        direct,
        gateway,
        (direct_anthropic, direct_responses, direct_gemini),
        (
            Translation("anthropic_to_openai", "Anthropic in → OpenAI out", anthropic_in, direct),
            Translation("openai_to_anthropic", "OpenAI in → Anthropic out", anthropic_out, direct_anthropic),
            Translation(
                "responses_to_openai",
                "Responses in → OpenAI Responses out",
                _responses_target("gateway-responses", gw, responses, MODEL, key, "openai"),
                direct_responses,
            ),
            Translation(
                "responses_to_anthropic",
                "Responses in → Anthropic out",
                _responses_target(
                    "gateway-responses-anthropic", gw, responses, CLAUDE_MODEL, key, "anthropic"
                ),
                direct_anthropic,
            ),
            Translation(
                "gemini_to_google",
                "Gemini in → Google out",
                _gemini_target("gateway-gemini", gw, gemini, GEMINI_MODEL, key, "google"),
                direct_gemini,
            ),
            Translation(
                "gemini_to_openai",
                "Gemini in → OpenAI out",
                _gemini_target("gateway-gemini-openai", gw, gemini, MODEL, key, "openai"),
                direct,
            ),
        ),
    )


def _ms(seconds: float) -> float:
    return seconds * 1000


def _progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def _total(t: Timing) -> float:
    return t.total_s


def _first(t: Timing) -> float | None:
    return t.first_content_s


@dataclass(frozen=True, slots=True)
class Added:
    """One added-latency figure: which percentile of which milestone, and how it is shown."""

    key: str
    name: str  # "added latency p50"
    kind: str  # "(non-streamed, c=1)": qualifies the same-protocol label; the translated rows follow it
    q: float
    pick: Callable[[Timing], float | None]
    budget: Budget | None = None
    translated: bool = True  # also measured for the translated calls
    cpu_note: bool = False  # carries the gateway's CPU per request over the run

    def figure(
        self,
        direct: Batch,
        gateway: Batch,
        translation: Translation | None = None,
        same_protocol: float | None = None,
    ) -> Figure:
        """The same-protocol figure, or with ``translation`` that call's (no budget of its own)."""
        direct_s, gateway_s = (
            percentile([v for t in b.timings if (v := self.pick(t)) is not None], self.q)
            for b in (direct, gateway)
        )
        key, label, budget = self.key, f"{self.name} {self.kind}", self.budget
        if translation is not None:
            key, label, budget = f"{translation.key}_{self.key}", f"{self.name}, {translation.label}", None
        return Figure(
            key,
            label,
            _ms(gateway_s - direct_s),
            "ms",
            budget,
            direct=_ms(direct_s),
            gateway=_ms(gateway_s),
            same_protocol=same_protocol,
        )


_PLAIN = "(non-streamed, c=1)"
_STREAMED = "(streamed, c=1)"
_ADDED_PLAIN = (
    Added("added_latency_p50", "added latency p50", _PLAIN, 50, _total, Budget(0.5), cpu_note=True),
    Added("added_latency_p99", "added latency p99", _PLAIN, 99, _total, Budget(2.0)),
)
_ADDED_STREAMED = (
    Added(
        "added_first_token_p50", "added first-token p50", _STREAMED, 50, _first, Budget(1.0), cpu_note=True
    ),
    Added("added_first_token_p99", "added first-token p99", _STREAMED, 99, _first, translated=False),
    Added("added_stream_total_p50", "added full-stream p50", _STREAMED, 50, _total, translated=False),
)


async def _warm_up(paths: Paths, plan: Plan) -> None:
    c = plan.throughput_concurrency
    _progress(f"warm-up: {plan.warmup} requests per path and kind, then {c} connections")
    for streamed in (False, True):
        await sequential(paths.all(), plan.warmup, streamed=streamed)
        # At least one request per connection, so that the gateway's upstream connection pool has grown to
        # what the throughput runs need before anything is measured (the translated calls are measured
        # at no more than the CPU runs' concurrency).
        for target in (paths.direct, paths.gateway):
            await concurrent(target, max(plan.warmup, c), c, streamed=streamed)
        for translation in paths.translations:
            await concurrent(
                translation.gateway,
                max(plan.warmup, plan.cpu_concurrency),
                plan.cpu_concurrency,
                streamed=streamed,
            )


async def _latency(stack: Stack, paths: Paths, plan: Plan) -> list[Figure]:
    """Every path alternating request by request, so that the same-protocol and the translated calls are
    measured under the same conditions; each translated figure follows the same-protocol one."""
    targets = paths.all()
    through_gateway = len(paths.through_gateway())
    figures: list[Figure] = []
    for streamed, kind, added in ((False, "non-streamed", _ADDED_PLAIN), (True, "streamed", _ADDED_STREAMED)):
        _progress(f"latency, concurrency 1: {plan.requests} {kind} requests per path, {len(targets)} paths")
        await asyncio.sleep(SETTLE_S)
        before = stack.gateway.cpu_times()
        batches = await sequential(targets, plan.requests, streamed=streamed)
        await asyncio.sleep(SETTLE_S)
        # Only the gateway's requests reach the gateway: at concurrency 1 its CPU is most of the added latency.
        cpu_us = (stack.gateway.cpu_times() - before).total_s / (plan.requests * through_gateway) * 1e6
        by_name = {t.name: b for t, b in zip(targets, batches, strict=True)}
        for row in added:
            same = row.figure(by_name[paths.direct.name], by_name[paths.gateway.name])
            if row.cpu_note:
                same.note = (
                    f"the gateway spent {cpu_us:.0f} µs of CPU per {kind} request in this run, the average over "
                    f"its {through_gateway} paths (same-protocol and the other routes, alternating)"
                )
            figures.append(same)
            if row.translated:
                figures += [
                    row.figure(by_name[t.direct.name], by_name[t.gateway.name], t, same.value)
                    for t in paths.translations
                ]
    return figures


@dataclass(slots=True)
class CpuCost:
    """CPU per request over one batch, in µs: the gateway's (user, system) and the simulator's."""

    gateway_user_us: float
    gateway_system_us: float
    simulator_us: float
    batch: Batch
    # The gateway's read and write system calls per request (upstream and client sockets, the request
    # log's files): unlike CPU time, they do not move with what else the machine runs.
    reads: float = 0.0
    writes: float = 0.0

    @property
    def gateway_us(self) -> float:
        return self.gateway_user_us + self.gateway_system_us

    def describe(self) -> str:
        return (
            f"user {self.gateway_user_us:.0f} + system {self.gateway_system_us:.0f} µs; "
            f"{self.writes:.1f} write and {self.reads:.1f} read system calls; "
            f"the simulator behind it spent {self.simulator_us:.0f} µs/request"
        )


async def _cpu_cost(stack: Stack, target: Target, count: int, concurrency: int, *, streamed: bool) -> CpuCost:
    """CPU per request over one batch, the gateway's recording of that batch included."""
    await asyncio.sleep(SETTLE_S)
    gateway_before, simulator_before = stack.gateway.cpu_times(), stack.simulator.cpu_times()
    reads_before, writes_before = stack.gateway.io_calls()
    batch = await concurrent(target, count, concurrency, streamed=streamed)
    await asyncio.sleep(SETTLE_S)
    gateway = stack.gateway.cpu_times() - gateway_before
    simulator = stack.simulator.cpu_times() - simulator_before
    reads, writes = stack.gateway.io_calls()
    n = len(batch.timings)
    return CpuCost(
        gateway.user_s / n * 1e6,
        gateway.system_s / n * 1e6,
        simulator.total_s / n * 1e6,
        batch,
        (reads - reads_before) / n,
        (writes - writes_before) / n,
    )


async def _cpu(stack: Stack, paths: Paths, plan: Plan) -> list[Figure]:
    c = plan.cpu_concurrency
    figures = []
    _progress(f"gateway CPU: {plan.requests} non-streamed requests at concurrency {c}")
    cost = await _cpu_cost(stack, paths.gateway, plan.requests, c, streamed=False)
    same = Figure(
        "gateway_cpu_per_request",
        f"gateway CPU per request (non-streamed, c={c})",
        cost.gateway_us,
        "µs",
        Budget(250),
        note=cost.describe(),
    )
    figures.append(same)
    for t in paths.translations:
        _progress(f"gateway CPU, {t.label}: {plan.requests} non-streamed requests at concurrency {c}")
        cost = await _cpu_cost(stack, t.gateway, plan.requests, c, streamed=False)
        figures.append(
            Figure(
                f"{t.key}_gateway_cpu_per_request",
                f"gateway CPU per request, {t.label}",
                cost.gateway_us,
                "µs",
                note=cost.describe(),
                same_protocol=same.value,
            )
        )
    _progress(f"gateway CPU: {plan.requests} streamed requests at concurrency {c}")
    cost = await _cpu_cost(stack, paths.gateway, plan.requests, c, streamed=True)
    figures.append(
        Figure(
            "gateway_cpu_per_streamed_request",
            f"gateway CPU per request (streamed, c={c})",
            cost.gateway_us,
            "µs",
            note=cost.describe(),
        )
    )
    figures.append(
        Figure(
            "gateway_writes_per_streamed_request",
            f"gateway write system calls per request (streamed, c={c})",
            cost.writes,
            "calls",
            note="the request upstream, the answer to the client, the request log's journal",
        )
    )
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
    p = paths(stack)
    await _warm_up(p, plan)
    figures = await _latency(stack, p, plan)
    figures += await _cpu(stack, p, plan)
    figures += await _throughput(stack, p.direct, p.gateway, plan)
    rss_mb = stack.gateway.memory_kib("VmRSS") / 1024
    peak_mb = stack.gateway.memory_kib("VmHWM") / 1024
    sent = sum(t.sent for t in p.through_gateway())
    figures.append(
        Figure(
            "gateway_rss",
            "gateway resident memory after the run",
            rss_mb,
            "MB",
            Budget(150),
            note=f"after {sent:,} requests, peak {peak_mb:.1f} MB; the performance budget applies after "
            "100,000 requests and a 10-minute soak, which this run does not do",
        )
    )
    return figures
