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

With the floor apps running (``floor_apps.py``: a trivial app, and a bare proxy over the own client and over
aiohttp), the same requests go to them too, interleaved with the gateway's, and the headline figures get
their floor values (``floor.py``).
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from figures import Budget, Figure, percentile
from floor import FloorRow
from loadgen import (
    ANTHROPIC_STREAM,
    GEMINI_STREAM,
    OPENAI_STREAM,
    RESPONSES_STREAM,
    Batch,
    RequestFailed,
    StreamFormat,
    Target,
    Timing,
    build_request,
    concurrent,
    sequential,
)
from stack import HOST, CpuTimes, Service, Stack

MODEL = "openai/gpt-4.1-nano"
UPSTREAM_MODEL = "gpt-4.1-nano"
CLAUDE_MODEL = "anthropic/claude-haiku-4.5"
CLAUDE_UPSTREAM_MODEL = "claude-haiku-4-5"
GEMINI_MODEL = "google/gemini-2.5-flash"
GEMINI_UPSTREAM_MODEL = "gemini-2.5-flash"
EMBEDDING_MODEL = "openai/text-embedding-3-small"
UPSTREAM_EMBEDDING_MODEL = "text-embedding-3-small"
# Two short texts, as a retrieval client embeds a handful of chunks per call.
EMBEDDING_INPUT = ["The gateway routes each request to the best provider.", "Tokens are counted offline."]
PROMPT = "Say hello in one short sentence."
MESSAGES = [{"role": "user", "content": PROMPT}]
CONTENTS = [{"role": "user", "parts": [{"text": PROMPT}]}]
# What each protocol adds to a request body to have it streamed (Gemini says it in the URL instead).
STREAM_FIELDS: dict[str, dict[str, Any]] = {
    OPENAI_STREAM.name: {"stream": True, "stream_options": {"include_usage": True}},
    ANTHROPIC_STREAM.name: {"stream": True},
    RESPONSES_STREAM.name: {"stream": True},
    GEMINI_STREAM.name: {},
}
# Messages requests must give max_tokens; this is well above the simulator's 24-token answer, so every
# path gets the same answer.
MAX_TOKENS = 256
ANTHROPIC_VERSION = "2023-06-01"
# A count with each of these loads every tokenizer vocabulary the bench's endpoints can need: o200k_base for
# OpenAI's models (the first), cl100k_base (the stand-in of routing/tokens.py) for Anthropic's and Google's.
VOCABULARY_MODELS = (MODEL, CLAUDE_MODEL, GEMINI_MODEL)
# Records are written ~50 ms after their answers; waiting this long before reading the gateway's CPU
# counts that work in the batch that caused it.
SETTLE_S = 0.4
# The floor apps record nothing: their counters are read after a short pause for the last answers' writes.
FLOOR_SETTLE_S = 0.05
FLOOR_PATH = "/v1/chat/completions"
# Paths measured together at concurrency (the gateway and the floor apps) take turns in this many parts.
INTERLEAVED_ROUNDS = 4


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
    # The floor apps by kind (stack.FLOOR_KINDS), asked the direct path's request; empty when not running.
    floors: dict[str, Target] = field(default_factory=dict)

    def all(self) -> list[Target]:
        return [
            self.direct,
            self.gateway,
            *self.baselines,
            *(t.gateway for t in self.translations),
            *self.floors.values(),
        ]

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
    floors = {
        kind: _openai_target(
            f"floor-{kind}",
            service.port,
            FLOOR_PATH,
            {"model": UPSTREAM_MODEL, "messages": MESSAGES},
            "sk-bench",
        )
        for kind, service in stack.floors.items()
    }
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
        floors,
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
    floor: bool = False  # also measured on the floor apps, against the same direct path

    def floor_row(self, paths: Paths, by_name: dict[str, Batch], same: Figure) -> FloorRow:
        """What each floor app adds over the direct path, beside what the gateway adds."""
        direct = self._at(by_name[paths.direct.name])
        apps = {kind: _ms(self._at(by_name[t.name]) - direct) for kind, t in paths.floors.items()}
        return FloorRow(self.key, f"{self.name} {self.kind}", "ms", same.value, apps, figure=self.key)

    def _at(self, batch: Batch) -> float:
        return percentile([v for t in batch.timings if (v := self.pick(t)) is not None], self.q)

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
    Added(
        "added_latency_p50", "added latency p50", _PLAIN, 50, _total, Budget(0.5), cpu_note=True, floor=True
    ),
    Added("added_latency_p99", "added latency p99", _PLAIN, 99, _total, Budget(2.0)),
)
_ADDED_STREAMED = (
    Added(
        "added_first_token_p50",
        "added first-token p50",
        _STREAMED,
        50,
        _first,
        Budget(1.0),
        cpu_note=True,
        floor=True,
    ),
    Added("added_first_token_p99", "added first-token p99", _STREAMED, 99, _first, translated=False),
    Added("added_stream_total_p50", "added full-stream p50", _STREAMED, 50, _total, translated=False),
)


async def _warm_up(paths: Paths, plan: Plan) -> None:
    c = plan.throughput_concurrency
    _progress(f"warm-up: {plan.warmup} requests per path and kind, then {c} connections")
    for streamed in (False, True):
        await sequential(paths.all(), plan.warmup, streamed=streamed)
        # At least one request per connection, so that the gateway's upstream connection pool (and the
        # bare proxies') has grown to what the throughput runs need before anything is measured (the
        # translated calls are measured at no more than the CPU runs' concurrency).
        for target in (paths.direct, paths.gateway, *paths.floors.values()):
            await concurrent(target, max(plan.warmup, c), c, streamed=streamed)
        for translation in paths.translations:
            await concurrent(
                translation.gateway,
                max(plan.warmup, plan.cpu_concurrency),
                plan.cpu_concurrency,
                streamed=streamed,
            )


async def _latency(stack: Stack, paths: Paths, plan: Plan, floor: list[FloorRow]) -> list[Figure]:
    """Every path alternating request by request, so that the same-protocol and the translated calls (and
    the floor apps) are measured under the same conditions; each translated figure follows the
    same-protocol one."""
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
            if row.floor and paths.floors:
                floor.append(row.floor_row(paths, by_name, same))
            if row.translated:
                figures += [
                    row.figure(by_name[t.direct.name], by_name[t.gateway.name], t, same.value)
                    for t in paths.translations
                ]
    return figures


@dataclass(slots=True)
class CpuCost:
    """What one process spent on a batch of requests (all its threads), with the simulator's and the load
    generator's CPU over the same batch; batches of one path add up."""

    cpu: CpuTimes
    simulator: CpuTimes
    client_s: float  # the load generator's (this process's) CPU
    reads: int  # read and write system calls (upstream and client sockets, the request log's files):
    writes: int  # unlike CPU time, they do not move with what else the machine runs
    batch: Batch

    @property
    def requests(self) -> int:
        return len(self.batch.timings)

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.requests * 1e6

    @property
    def cpu_us(self) -> float:
        return self.per_request_us(self.cpu.total_s)

    @property
    def reads_per_request(self) -> float:
        return self.reads / self.requests

    @property
    def writes_per_request(self) -> float:
        return self.writes / self.requests

    def __add__(self, other: CpuCost) -> CpuCost:
        return CpuCost(
            self.cpu + other.cpu,
            self.simulator + other.simulator,
            self.client_s + other.client_s,
            self.reads + other.reads,
            self.writes + other.writes,
            Batch(self.batch.timings + other.batch.timings, self.batch.wall_s + other.batch.wall_s),
        )

    def describe(self) -> str:
        user_s, system_s = self.cpu.split()
        return (
            f"user {self.per_request_us(user_s):.0f} + system {self.per_request_us(system_s):.0f} µs; "
            f"{self.writes_per_request:.1f} write and {self.reads_per_request:.1f} read system calls; "
            f"the simulator behind it spent {self.per_request_us(self.simulator.total_s):.0f} µs/request"
        )


@dataclass(frozen=True, slots=True)
class Run:
    """One path whose process is measured: the process, what is sent to it, and how long to wait before
    and after its batch (the gateway's request log writes its records ~50 ms after their answers)."""

    service: Service
    target: Target
    settle_s: float


async def _cpu_cost(
    stack: Stack, run: Run, count: int, concurrency: int, *, streamed: bool, settle_first: bool = True
) -> CpuCost:
    """CPU per request over one batch, the gateway's recording of that batch included. ``settle_first``:
    wait before the batch too, for the process's work on what came before (not needed when its last batch
    was measured here and waited after itself: other processes' batches do not reach it)."""
    service = run.service
    if settle_first:
        await asyncio.sleep(run.settle_s)
    before, simulator_before = service.cpu_times(), stack.simulator.cpu_times()
    reads_before, writes_before = service.io_calls()
    client_before = _own_cpu_s()
    batch = await concurrent(run.target, count, concurrency, streamed=streamed)
    client_s = _own_cpu_s() - client_before
    await asyncio.sleep(run.settle_s)
    cpu, simulator = service.cpu_times() - before, stack.simulator.cpu_times() - simulator_before
    reads, writes = service.io_calls()
    return CpuCost(cpu, simulator, client_s, reads - reads_before, writes - writes_before, batch)


async def _interleaved(
    stack: Stack, runs: list[Run], count: int, concurrency: int, *, streamed: bool
) -> list[CpuCost]:
    """``count`` requests per run in ``INTERLEAVED_ROUNDS`` parts, the runs in the order A B C, then C B A,
    then A B C again and so on, so that drift of the machine falls on every run alike (a steady drift
    cancels out over each pair of rounds). One cost per run, its parts added up."""
    # One path alone needs no parts (nor the pause each batch takes).
    rounds = 1 if len(runs) == 1 else min(INTERLEAVED_ROUNDS, count)
    parts = [count // rounds + (1 if r < count % rounds else 0) for r in range(rounds)]
    costs: list[CpuCost | None] = [None] * len(runs)
    order = list(range(len(runs)))
    for r, part in enumerate(parts):
        for i in order if r % 2 == 0 else order[::-1]:
            cost = await _cpu_cost(stack, runs[i], part, concurrency, streamed=streamed, settle_first=r == 0)
            previous = costs[i]
            costs[i] = cost if previous is None else previous + cost
    return [c for c in costs if c is not None]


def _floor_runs(stack: Stack, paths: Paths) -> list[Run]:
    return [Run(stack.floors[kind], target, FLOOR_SETTLE_S) for kind, target in paths.floors.items()]


def _syscall_rows(kind: str, gateway: CpuCost, floors: dict[str, CpuCost], c: int) -> list[FloorRow]:
    suffix = "_streamed" if kind == "streamed" else ""
    return [
        FloorRow(
            f"{name}s_per{suffix}_request",
            f"{name} system calls per request ({kind}, c={c})",
            "calls",
            getattr(gateway, per_request),
            {k: getattr(cost, per_request) for k, cost in floors.items()},
            figure="gateway_writes_per_streamed_request" if name == "write" and suffix else None,
        )
        for name, per_request in (
            ("write", "writes_per_request"),
            ("read", "reads_per_request"),
        )
    ]


async def _cpu(stack: Stack, paths: Paths, plan: Plan, floor: list[FloorRow]) -> list[Figure]:
    c = plan.cpu_concurrency
    figures = []
    gateway_run = Run(stack.gateway, paths.gateway, SETTLE_S)
    floor_runs = _floor_runs(stack, paths)
    beside = f", interleaved with {len(floor_runs)} floor apps" if floor_runs else ""
    _progress(f"gateway CPU: {plan.requests} non-streamed requests at concurrency {c}{beside}")
    cost, *floor_costs = await _interleaved(
        stack, [gateway_run, *floor_runs], plan.requests, c, streamed=False
    )
    same = Figure(
        "gateway_cpu_per_request",
        f"gateway CPU per request (non-streamed, c={c})",
        cost.cpu_us,
        "µs",
        Budget(250),
        note=cost.describe(),
    )
    figures.append(same)
    by_kind = dict(zip(paths.floors, floor_costs, strict=True))
    if by_kind:
        floor.append(
            FloorRow(
                "cpu_per_request",
                same.label.replace("gateway ", ""),
                "µs",
                cost.cpu_us,
                {k: v.cpu_us for k, v in by_kind.items()},
                figure=same.key,
            )
        )
        floor += _syscall_rows("non-streamed", cost, by_kind, c)
    for t in paths.translations:
        _progress(f"gateway CPU, {t.label}: {plan.requests} non-streamed requests at concurrency {c}")
        [cost] = await _interleaved(
            stack, [Run(stack.gateway, t.gateway, SETTLE_S)], plan.requests, c, streamed=False
        )
        figures.append(
            Figure(
                f"{t.key}_gateway_cpu_per_request",
                f"gateway CPU per request, {t.label}",
                cost.cpu_us,
                "µs",
                note=cost.describe(),
                same_protocol=same.value,
            )
        )
    _progress(f"gateway CPU: {plan.requests} streamed requests at concurrency {c}{beside}")
    cost, *floor_costs = await _interleaved(
        stack, [gateway_run, *floor_runs], plan.requests, c, streamed=True
    )
    streamed = Figure(
        "gateway_cpu_per_streamed_request",
        f"gateway CPU per request (streamed, c={c})",
        cost.cpu_us,
        "µs",
        note=cost.describe(),
    )
    figures.append(streamed)
    figures.append(
        Figure(
            "gateway_writes_per_streamed_request",
            f"gateway write system calls per request (streamed, c={c})",
            cost.writes_per_request,
            "calls",
            note="the request upstream, the answer to the client, the request log's journal",
        )
    )
    by_kind = dict(zip(paths.floors, floor_costs, strict=True))
    if by_kind:
        floor.append(
            FloorRow(
                "cpu_per_streamed_request",
                streamed.label.replace("gateway ", ""),
                "µs",
                cost.cpu_us,
                {k: v.cpu_us for k, v in by_kind.items()},
                figure=streamed.key,
            )
        )
        floor += _syscall_rows("streamed", cost, by_kind, c)
    return figures


async def _throughput(stack: Stack, paths: Paths, plan: Plan, floor: list[FloorRow]) -> list[Figure]:
    """Direct and through the gateway, interleaved in parts (and, non-streamed, the floor apps too)."""
    figures = []
    c = plan.throughput_concurrency
    direct_run = Run(stack.simulator, paths.direct, FLOOR_SETTLE_S)
    gateway_run = Run(stack.gateway, paths.gateway, SETTLE_S)
    for streamed, kind in ((False, "non-streamed"), (True, "streamed")):
        floor_runs = [] if streamed else _floor_runs(stack, paths)
        beside = f", and {len(floor_runs)} floor apps" if floor_runs else ""
        _progress(f"throughput: {plan.requests} {kind} requests per path at concurrency {c}{beside}")
        direct, cost, *floor_costs = await _interleaved(
            stack, [direct_run, gateway_run, *floor_runs], plan.requests, c, streamed=streamed
        )
        direct_batch, gateway_batch = direct.batch, cost.batch
        client_us = direct.per_request_us(direct.client_s)
        p50 = [_ms(percentile([t.total_s for t in b.timings], 50)) for b in (direct_batch, gateway_batch)]
        figure = Figure(
            f"throughput_{'streamed' if streamed else 'non_streamed'}",
            f"throughput ({kind}, c={c}), gateway vs direct",
            gateway_batch.rate / direct_batch.rate * 100,
            "%",
            direct=direct_batch.rate,
            gateway=gateway_batch.rate,
            pair_unit="req/s",
            note=f"latency p50 direct {p50[0]:.2f} ms, gateway {p50[1]:.2f} ms; gateway CPU "
            f"{cost.cpu_us:.0f} µs/request at this load; load generator {client_us:.0f} µs/request",
        )
        figures.append(figure)
        if floor_runs:
            rates = {k: v.batch.rate for k, v in zip(paths.floors, floor_costs, strict=True)}
            floor.append(
                FloorRow(
                    f"requests_per_s{'_streamed' if streamed else ''}",
                    f"requests/s ({kind}, c={c})",
                    "req/s",
                    gateway_batch.rate,
                    rates,
                    figure=figure.key,
                    higher_is_better=True,
                )
            )
    return figures


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _count_tokens(stack: Stack, model: str) -> None:
    """Have the gateway count a prompt for ``model`` (``count_tokens``, the count a prompt near a context
    limit gets), which loads its tokenizer vocabulary: the gateway loads none until a prompt first needs
    counting, and the resident memory read afterwards must include them."""
    request = urllib.request.Request(
        f"http://{HOST}:{stack.gateway.port}/api/anthropic/v1/messages/count_tokens",
        data=json.dumps({"model": model, "max_tokens": MAX_TOKENS, "messages": MESSAGES}).encode(),
        headers={
            "content-type": "application/json",
            "x-api-key": stack.api_key,
            "anthropic-version": ANTHROPIC_VERSION,
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        counted = json.loads(answer.read())
    if not isinstance(counted.get("input_tokens"), int):
        raise RequestFailed(f"count_tokens for {model} answered {counted}")


def _scrape_metrics(stack: Stack) -> None:
    """Read ``/metrics`` once, as Prometheus does in a deployment: the gateway imports its exposition
    (``prometheus_client``) on the first scrape, and the resident memory read afterwards must include it."""
    with urllib.request.urlopen(f"http://{HOST}:{stack.gateway.port}/metrics", timeout=30) as answer:
        if b"tokenmux_generations_total" not in answer.read():
            raise RequestFailed("/metrics answered without tokenmux_generations_total")


def _embeddings_target(name: str, port: int, path: str, model: str, key: str) -> Target:
    request = build_request(
        HOST, port, path, {"model": model, "input": EMBEDDING_INPUT}, {"Authorization": f"Bearer {key}"}
    )
    return Target(name, HOST, port, request, request)  # embeddings are never streamed


async def _embeddings(stack: Stack, plan: Plan) -> list[Figure]:
    """The embeddings route: what it adds at concurrency 1 (alternating with the same call straight to the
    simulator) and its CPU per request at the CPU runs' concurrency."""
    direct = _embeddings_target(
        "direct-embeddings",
        stack.simulator.port,
        "/openai/v1/embeddings",
        UPSTREAM_EMBEDDING_MODEL,
        "sk-bench",
    )
    gateway = _embeddings_target(
        "gateway-embeddings", stack.gateway.port, "/api/v1/embeddings", EMBEDDING_MODEL, stack.api_key
    )
    requests = max(1, plan.requests // 2)
    _progress(f"embeddings: {requests} requests per path at concurrency 1, then at {plan.cpu_concurrency}")
    await sequential([direct, gateway], max(1, plan.warmup // 4), streamed=False)
    direct_batch, gateway_batch = await sequential([direct, gateway], requests, streamed=False)
    figures = []
    for q, budget_note in ((50, "p50"), (99, "p99")):
        direct_s, gateway_s = (
            percentile([_total(t) for t in b.timings], q) for b in (direct_batch, gateway_batch)
        )
        figures.append(
            Figure(
                f"embeddings_added_latency_{budget_note}",
                f"added latency {budget_note} (embeddings, c=1)",
                _ms(gateway_s - direct_s),
                "ms",
                direct=_ms(direct_s),
                gateway=_ms(gateway_s),
            )
        )
    cost = await _cpu_cost(
        stack, Run(stack.gateway, gateway, SETTLE_S), requests, plan.cpu_concurrency, streamed=False
    )
    figures.append(
        Figure(
            "embeddings_gateway_cpu_per_request",
            f"gateway CPU per request (embeddings, c={plan.cpu_concurrency})",
            cost.cpu_us,
            "µs",
            note=cost.describe(),
        )
    )
    return figures


async def run_plan(stack: Stack, plan: Plan) -> tuple[list[Figure], list[FloorRow]]:
    """The figures, and the floor's beside the gateway's (empty when the floor apps are not running)."""
    p = paths(stack)
    floor: list[FloorRow] = []
    ready_mb = stack.gateway.memory_kib("VmRSS") / 1024  # before any request: what traffic adds is apart
    await _warm_up(p, plan)
    figures = await _latency(stack, p, plan, floor)
    figures += await _cpu(stack, p, plan, floor)
    figures += await _throughput(stack, p, plan, floor)
    figures += await _embeddings(stack, plan)
    unscraped_mb = stack.gateway.memory_kib("VmRSS") / 1024
    await asyncio.to_thread(_scrape_metrics, stack)
    unloaded_mb = stack.gateway.memory_kib("VmRSS") / 1024
    await asyncio.to_thread(_count_tokens, stack, MODEL)  # o200k_base
    o200k_mb = stack.gateway.memory_kib("VmRSS") / 1024
    for model in VOCABULARY_MODELS[1:]:  # cl100k_base
        await asyncio.to_thread(_count_tokens, stack, model)
    rss_mb = stack.gateway.memory_kib("VmRSS") / 1024
    peak_mb = stack.gateway.memory_kib("VmHWM") / 1024
    sent = sum(t.sent for t in p.through_gateway())
    figures.append(
        Figure(
            "gateway_rss",
            "gateway resident memory after the run, tokenizers loaded",
            rss_mb,
            "MB",
            Budget(100),
            note=f"after {sent:,} requests, a /metrics scrape and a count for {', '.join(VOCABULARY_MODELS)} "
            f"(o200k_base and cl100k_base loaded); {ready_mb:.1f} MB ready, before any request; "
            f"{unscraped_mb:.1f} MB after the requests, {unloaded_mb:.1f} MB after the scrape, "
            f"{o200k_mb:.1f} MB with o200k_base alone; peak {peak_mb:.1f} MB",
        )
    )
    return figures, _ordered(floor)


# The floor table's rows in the order of the headline figures.
_FLOOR_ORDER = (
    "cpu_per_request",
    "cpu_per_streamed_request",
    "writes_per_request",
    "reads_per_request",
    "writes_per_streamed_request",
    "reads_per_streamed_request",
    "requests_per_s",
    "added_latency_p50",
    "added_first_token_p50",
)


def _ordered(rows: list[FloorRow]) -> list[FloorRow]:
    rank = {key: i for i, key in enumerate(_FLOOR_ORDER)}
    return sorted(rows, key=lambda r: rank.get(r.key, len(rank)))
