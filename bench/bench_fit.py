"""How long a routing decision keeps a request, from a small prompt to a 2M-token one (budget: <= 20 ms
from the decoded request to its first attempt for a ~1M-token prompt), and what counting costs.

Run: .venv/bin/python bench/bench_fit.py

Three parts: one ``check_fit`` per case (what an exact count costs, the figures the serving path avoids);
exact plans (``Router.plan``); and requests served as the chat route serves them (``Router.plan_open`` in
the large-request worker, then the attempt loop, which counts in slices on the event loop when it must against upstreams that answer at once or refuse a prompt
over their context), timed to the first attempt sent and to the answer, with the event loop's longest
stall meanwhile. The text is synthetic English-like prose generated here (a fixed seed, no files read).
Every large case starts with an empty chunk-count cache unless its name says "repeat" or "next turn".
"""

from __future__ import annotations

import asyncio
import platform
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from tokenmux.attempts import Attempts, Generation
from tokenmux.catalog.model import Catalog, Endpoint, Model, Price, ProviderInfo
from tokenmux.errors import ProviderRejected, TokenmuxError
from tokenmux.providers.base import CallContext, ProviderConfig
from tokenmux.routing import tokens
from tokenmux.routing.fit import PromptSize, check_fit
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Router
from tokenmux.server.off_loop import off_loop
from tokenmux.types import ChatRequest, ChatResponse, Usage

GPT41_CONTEXT = 1_047_576
_VOCABULARY = (
    "the of and to in a is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there one all we their can has been if more when will would who so no time people "
    "year way day man thing woman life child world school state family student group country problem hand "
    "part place case week company system program question work government number night point home water room"
)
_WORDS = _VOCABULARY.split()
_SYLLABLES = ("ka", "lo", "mi", "tra", "ven", "sor", "dal", "pu", "rex", "qui", "zen", "ing", "er", "tion")
_ENDINGS = (". ", ". ", ", ", "? ", "! ", ".\n\n", ".\n")


def english_like(n_chars: int, seed: int = 7) -> str:
    rng = random.Random(seed)

    def word() -> str:
        if rng.random() < 0.85:
            return rng.choice(_WORDS)
        return "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4)))

    out: list[str] = []
    size = 0
    while size < n_chars:
        sentence = " ".join(word() for _ in range(rng.randint(5, 20)))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice(_ENDINGS)
        if rng.random() < 0.05:
            sentence += f"{rng.randint(0, 100_000)} "
        out.append(sentence)
        size += len(sentence)
    return "".join(out)[:n_chars]


def endpoint(context: int, max_output: int = 32_768) -> Endpoint:
    return Endpoint("bench/model", "bench", "model", context, max_output, Price(0.1, 0.4), frozenset())


def request(text: str) -> ChatRequest:
    messages = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": text},
    ]
    return ChatRequest(model="bench/model", messages=messages, params={})


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median seconds of ``fn`` over ``repeat`` runs, and its last result."""
    times = []
    result: object = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def main() -> None:
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    t0 = time.perf_counter()
    tokens.warm_up()
    print(
        f"tokenizer import and vocabulary load (once per process): {(time.perf_counter() - t0) * 1000:.0f} ms"
    )

    base = english_like(9_000_000)
    sample = base[:1_000_000]
    per_token = len(sample) / tokens.count_tokens(sample, "o200k")
    print(f"synthetic text: {per_token:.2f} characters per o200k token")

    enc = tokens.tokenizer(tokens.O200K)
    four_mb = base[:4_000_000]
    seconds, n = timed(lambda: enc.count(four_mb), 3)
    print(f"bpe-openai count, 4.0 MB in one call: {seconds * 1000:.0f} ms ({n:,} tokens)")
    halves = (four_mb[:2_000_000], four_mb[2_000_000:])

    def two_threads() -> None:
        threads = [threading.Thread(target=enc.count, args=(h,)) for h in halves]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    seconds, _ = timed(two_threads, 3)
    print(f"same text as two halves on two threads: {seconds * 1000:.0f} ms (the extension holds the GIL)")
    print()

    small = ChatRequest(
        model="bench/model",
        messages=[
            {"role": "system", "content": "You are a careful assistant."},
            {"role": "user", "content": "Summarise the attached notes in three bullet points, please."},
        ],
        params={"temperature": 0.2},
    )
    eps = (endpoint(GPT41_CONTEXT), endpoint(128_000, 16_384))

    def small_decision() -> None:
        size = PromptSize(small)
        for ep in eps:
            check_fit(size, ep, 1024, "o200k")

    loops = 20_000

    def small_decisions() -> None:
        for _ in range(loops):
            small_decision()

    seconds, _ = timed(small_decisions, 3)
    print(f"small prompt, 2 endpoints:                           {seconds / loops * 1e6:8.2f} µs")

    chars = {n: int(n * per_token) for n in (1_000_000, 1_070_000, 2_000_000)}
    cases = [
        ("1 MB prompt vs 1,047,576 (byte bound settles)", 1_000_000, GPT41_CONTEXT),
        ("1M tokens vs 2M context (clearly fits)", chars[1_000_000], 2_000_000),
        ("1M tokens, 4% under 1,047,576", chars[1_000_000], GPT41_CONTEXT),
        ("1.07M tokens, 2% over 1,047,576", chars[1_070_000], GPT41_CONTEXT),
        ("2M tokens vs 1,047,576 (clearly over)", chars[2_000_000], GPT41_CONTEXT),
    ]
    print()
    print("one check_fit, counting as far as needed (what the serving path avoids before the first attempt):")
    for name, n_chars, context in cases:
        req = request(base[:n_chars])
        ep = endpoint(context)

        def decide(req: ChatRequest = req, ep: Endpoint = ep) -> object:
            tokens.clear_cache()
            return check_fit(PromptSize(req), ep, 4096, "o200k")

        seconds, result = timed(decide, 3)
        print(f"{name:52} {seconds * 1000:9.3f} ms  {result}")

    req, ep = request(base[: chars[1_000_000]]), endpoint(GPT41_CONTEXT)
    check_fit(PromptSize(req), ep, 4096, "o200k")
    seconds, result = timed(lambda: check_fit(PromptSize(req), ep, 4096, "o200k"), 5)
    print(f"{'1M tokens, 4% under, repeat (chunk counts cached)':52} {seconds * 1000:9.3f} ms  {result}")

    print()
    print("exact routing decisions (Router.plan, counted in the caller's thread), first seen:")
    for name, n_chars, contexts in (
        ("1M tokens, two endpoints of one context", chars[1_000_000], (GPT41_CONTEXT, GPT41_CONTEXT)),
        ("1M tokens, endpoints of two contexts (counted)", chars[1_000_000], (GPT41_CONTEXT, 2_000_000)),
    ):
        routing = router(contexts)
        req = request(base[:n_chars])

        def plan(routing: Router = routing, req: ChatRequest = req) -> list[str]:
            tokens.clear_cache()
            return [c.endpoint.provider for c in routing.plan(req)]

        before = tokens.tokenized_chars()
        seconds, planned = timed(plan, 3)
        counted = (tokens.tokenized_chars() - before) // 3
        print(f"{name:52} {seconds * 1000:9.3f} ms  plan {planned}, {counted:,} characters tokenized")

    print()
    print("as a request is served (plan off the loop, then the attempt loop; an upstream answers after")
    print(
        f"{ANSWER_S * 1000:.0f} ms, or refuses a prompt over its context with 400 after {REFUSE_S * 1000:.0f} ms): ms from"
    )
    print("the decoded request to the first attempt sent, to the attempt that answered, the longest the")
    print("event loop went without running, and the characters tokenized")
    turn1 = request(base[: chars[1_000_000]])
    turn2 = next_turn(turn1)
    for name, req, contexts, warm in (
        ("1M tokens, one context", turn1, (GPT41_CONTEXT, GPT41_CONTEXT), None),
        ("1M tokens, two contexts, first seen", turn1, (GPT41_CONTEXT, 2_000_000), None),
        (
            "1.07M tokens, two contexts, first seen",
            request(base[: chars[1_070_000]]),
            (GPT41_CONTEXT, 2_000_000),
            None,
        ),
        (
            "2M tokens, over both contexts, first seen",
            request(base[: chars[2_000_000]]),
            (GPT41_CONTEXT, 1_500_000),
            None,
        ),
        ("next turn of the 1M conversation", turn2, (GPT41_CONTEXT, 2_000_000), turn1),
    ):
        # Interleaved with the same request planned by counting first (Router.plan in the worker, as the
        # chat route did before plan_open), so that both see the same machine.
        runs, counted_first = [], []
        for _ in range(3):
            runs.append(serve(req, contexts, warm, exact_plan=False))
            counted_first.append(serve(req, contexts, warm, exact_plan=True))
        first, answered, stall, counted = _medians(runs)
        print(
            f"{name:44} first attempt {first:7.2f} ms, answered {answered:7.2f} ms, loop stall {stall:5.2f} ms, "
            f"{int(counted):,} characters tokenized; {runs[-1][4]}"
        )
        first, answered, stall, counted = _medians(counted_first)
        print(
            f"{'  counted before planning (Router.plan):':44} {first:7.2f} ms to the first attempt, answered "
            f"{answered:7.2f} ms, loop stall {stall:5.2f} ms, {int(counted):,} characters tokenized"
        )


def next_turn(turn: ChatRequest) -> ChatRequest:
    """The conversation's next request: the same messages, the answer, and a new question."""
    messages = [
        *turn.messages,
        {"role": "assistant", "content": "The notes cover three topics: " + english_like(2_000, seed=3)},
        {"role": "user", "content": "Expand on the second topic, please."},
    ]
    return ChatRequest(model="bench/model", messages=messages, params={})


# A provider takes seconds to answer a 1M-token prompt, and refuses one over its context once it has read
# it: figures well under those, so that the time of the decision is not hidden behind them.
ANSWER_S = 0.3
REFUSE_S = 0.05


class Upstream:
    """An upstream that answers after ANSWER_S, or refuses a prompt over its context (as providers do)
    after REFUSE_S."""

    kind = "openai"

    def __init__(self, slug: str, context: int, prompt_tokens: int, sent: list[tuple[str, float]]) -> None:
        self.config = ProviderConfig(slug, "openai", "http://unused.test")
        self.context = context
        self.prompt_tokens = prompt_tokens
        self.sent = sent

    async def complete(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        self.sent.append((self.config.slug, time.perf_counter()))
        if self.prompt_tokens + 1 > self.context:
            await asyncio.sleep(REFUSE_S)
            raise ProviderRejected("maximum context length exceeded", upstream_status=400)
        await asyncio.sleep(ANSWER_S)
        choice = {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        return ChatResponse("r", 0, "model", [choice], Usage(self.prompt_tokens, 1))

    async def aclose(self) -> None:
        return None


def _medians(runs: list[tuple[float, float, float, int, str]]) -> tuple[float, float, float, float]:
    """The medians of ``serve``'s four figures over runs."""
    return (
        statistics.median(r[0] for r in runs),
        statistics.median(r[1] for r in runs),
        statistics.median(r[2] for r in runs),
        statistics.median(r[3] for r in runs),
    )


def serve(
    req: ChatRequest, contexts: tuple[int, ...], warm: ChatRequest | None, *, exact_plan: bool
) -> tuple[float, float, float, int, str]:
    """One request as the chat route serves it: (ms to the first attempt sent, ms to the attempt that
    answered, the event loop's longest stall in ms, characters tokenized, who answered or the error).
    ``exact_plan``: planned by ``Router.plan`` (counted before the first attempt) instead."""
    routing = router(contexts)
    exact = PromptSize(req).exact("o200k")
    tokens.clear_cache()
    if warm is not None:  # the conversation's previous turn was served
        asyncio.run(_serve(routing, warm, contexts, PromptSize(warm).exact("o200k"), exact_plan))
    return asyncio.run(_serve(routing, req, contexts, exact, exact_plan))


async def _serve(
    routing: Router, req: ChatRequest, contexts: tuple[int, ...], exact: int, exact_plan: bool
) -> tuple[float, float, float, int, str]:
    sent: list[tuple[str, float]] = []
    upstreams: dict[str, Any] = {
        f"p{i}": Upstream(f"p{i}", context, exact, sent) for i, context in enumerate(contexts)
    }
    attempts = Attempts(upstreams, HealthBoard(), lambda record: None, deadline_s=60)
    stall = 0.0
    running = True

    async def probe() -> None:  # how long the loop goes without running a ready task
        nonlocal stall
        last = time.perf_counter()
        while running:
            await asyncio.sleep(0)
            now = time.perf_counter()
            stall = max(stall, now - last)
            last = now

    prober = asyncio.ensure_future(probe())
    await asyncio.sleep(0)
    before = tokens.tokenized_chars()
    t0 = time.perf_counter()
    # As server/chat.py does for a body over PLAN_IN_THREAD_BYTES.
    try:
        if exact_plan:
            plan = await off_loop(routing.plan, req)
        else:
            plan = await off_loop(routing.plan_open, req)
        served = await attempts.whole(Generation(req, "gen", None), plan)
        outcome = f"answered by {served.candidate.endpoint.provider}"
    except TokenmuxError as err:
        outcome = f"{err.status} {err.code}"
    t_end = time.perf_counter()
    await asyncio.sleep(0.3)  # a count stopped by the answer ends within a chunk
    running = False
    await prober
    counted = tokens.tokenized_chars() - before
    first = (sent[0][1] - t0) * 1000 if sent else float("nan")
    return first, (t_end - t0) * 1000, stall * 1000, counted, f"{outcome} after {[s for s, _ in sent]}"


def router(contexts: tuple[int, ...]) -> Router:
    """A router over one model with an endpoint of each context."""
    slugs = [f"p{i}" for i in range(len(contexts))]
    endpoints = tuple(
        Endpoint("bench/model", slug, "model", context, 32_768, Price(0.1 * (i + 1), 0.4), frozenset())
        for i, (slug, context) in enumerate(zip(slugs, contexts, strict=True))
    )
    model = Model(
        id="bench/model",
        name="bench",
        author="bench",
        description="",
        created="2025-01-01",
        input_modalities=("text",),
        output_modalities=("text",),
        context_length=max(contexts),
        max_output=32_768,
        tokenizer="o200k",
        endpoints=endpoints,
        supported_parameters=frozenset(),
    )
    providers = {s: ProviderInfo(slug=s, name=s, kind="openai-compatible") for s in slugs}
    catalog = Catalog(models={model.id: model}, providers=providers, prices_as_of="2026-12-07")
    return Router(catalog, set(slugs), HealthBoard())


if __name__ == "__main__":
    main()
