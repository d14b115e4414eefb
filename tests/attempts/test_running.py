"""Streams in flight: a crash draft is journaled for a stream still running after the pass it began in."""

from __future__ import annotations

import asyncio
import time

from tokenmux.attempts import Generation
from tokenmux.attempts.delivery import StreamedAnswer
from tokenmux.attempts.running import RunningStreams
from tokenmux.catalog.loader import load_catalog
from tokenmux.routing.router import Candidate
from tokenmux.store.journal import StreamDraft
from tokenmux.types import ChatRequest

CATALOG = load_catalog()
MODEL = CATALOG.models["openai/gpt-4.1-nano"]
ENDPOINT = next(e for e in MODEL.endpoints if e.provider == "openai")


def stream_of(name: str) -> tuple[Generation, Candidate, StreamedAnswer]:
    request = ChatRequest(
        model=MODEL.id, messages=[{"role": "user", "content": "Hi"}], params={}, stream=True, body_bytes=400
    )
    gen = Generation(request, name, None)
    answer = StreamedAnswer(gen, None, lambda cand: None)  # type: ignore[arg-type]
    return gen, Candidate(MODEL, ENDPOINT, {}, ()), answer


async def test_only_a_stream_still_running_after_its_first_pass_is_drafted() -> None:
    drafts: list[StreamDraft] = []
    running = RunningStreams(drafts.append)
    short_gen, cand, short_answer = stream_of("gen-short")
    long_gen, _, long_answer = stream_of("gen-long")
    short = running.begin(short_gen, cand, short_gen.attempt(cand, time.time()), short_answer)
    running.begin(long_gen, cand, long_gen.attempt(cand, time.time()), long_answer)
    assert drafts == []  # nothing within the pass: a stream that ends in it needs no draft
    running.end(short)  # its whole answer was there: it ended in the pass it began in
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [d.id for d in drafts] == ["gen-long"]
    [draft] = drafts
    assert draft.prompt_tokens == 100 and draft.completion_tokens == 0 and draft.cost_usd > 0
    assert len(running) == 1 and running.tasks() == {asyncio.current_task()}


async def test_without_a_journal_nothing_is_drafted() -> None:
    running = RunningStreams(None)
    gen, cand, answer = stream_of("gen-1")
    running.begin(gen, cand, gen.attempt(cand, time.time()), answer)
    await asyncio.sleep(0)
    assert len(running) == 1
