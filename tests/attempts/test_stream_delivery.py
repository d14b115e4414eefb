"""The attempt loop's streamed path on its own: what reaches the client in how many writes, and through
which path.

A provider may offer its stream in batches (one per network read) and, when it speaks Chat Completions, as
pass-through chunks; an encoder may take such chunks. Delivery uses the cheapest path both sides offer and
must deliver, bill and record the same answer whichever it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from tokenmux.attempts import Attempts, Generation, StreamEncoder
from tokenmux.catalog.loader import load_catalog
from tokenmux.errors import TokenmuxError
from tokenmux.protocols.openai_chat import ChunkEncoder
from tokenmux.protocols.openai_chunks import PassThroughChunk, choice_json
from tokenmux.providers.base import CallContext, FinalBatch, ProviderConfig
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.router import Candidate
from tokenmux.store.records import GenerationRecord
from tokenmux.types import ChatRequest, StreamEvent, Usage

pytestmark = pytest.mark.timeout(10)

CATALOG = load_catalog()
MODEL = CATALOG.models["openai/gpt-4.1-nano"]
ENDPOINT = next(e for e in MODEL.endpoints if e.provider == "openai")
USAGE = Usage(prompt_tokens=12, completion_tokens=2)

# The same answer as three network reads: the role, the two words, the finish and the usage.
READS: list[list[StreamEvent]] = [
    [StreamEvent(delta={"role": "assistant", "content": ""})],
    [StreamEvent(delta={"content": "Hel"}), StreamEvent(delta={"content": "lo"})],
    [StreamEvent(delta={}, finish_reason="stop"), StreamEvent(usage=USAGE)],
]


def as_chunks(batch: list[StreamEvent]) -> list[PassThroughChunk]:
    out = []
    for ev in batch:
        if ev.usage is not None:
            out.append(PassThroughChunk([], usage=ev.usage))
            continue
        choice = choice_json(ev) | {"logprobs": None, "content_filter_results": {}}  # as a provider sends
        text = ev.delta.get("content", "") if ev.delta else ""
        out.append(
            PassThroughChunk([msgspec.json.encode([choice])], ev.has_content, ev.finish_reason, None, text)
        )
    return out


class Batches:
    def __init__(self, batches: list[list[Any]]) -> None:
        self._batches = iter(batches)
        self.closed = False

    def __aiter__(self) -> Batches:
        return self

    async def __anext__(self) -> list[Any]:
        await asyncio.sleep(0)
        try:
            return next(self._batches)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        self.closed = True


class PlainProvider:
    """Only the contract: one event at a time."""

    kind = "openai"

    def __init__(self) -> None:
        self.config = ProviderConfig("openai", "openai", "http://unused.test")

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[StreamEvent]:
        for batch in READS:
            for event in batch:
                yield event

    async def aclose(self) -> None:
        return None


class BatchingProvider(PlainProvider):
    def stream_batches(self, request: ChatRequest, ctx: CallContext) -> Batches:
        return Batches(READS)


class ChunkingProvider(BatchingProvider):
    def stream_chunks(self, request: ChatRequest, ctx: CallContext) -> Batches:
        return Batches([as_chunks(batch) for batch in READS])


class EventsOnlyEncoder:
    """An encoder without ``chunk``: a client that does not speak Chat Completions."""

    def event(self, event: StreamEvent) -> bytes:
        return f"<{(event.delta or {}).get('content', '')}>".encode()

    def finish(self, usage: Usage, cost: float, finish_reason: str | None) -> bytes:
        return f"[end {finish_reason} {usage.completion_tokens}]".encode()

    def error(self, err: TokenmuxError) -> bytes:
        return b"[error]"


class RecordingOutlet:
    def __init__(self) -> None:
        self.started = False
        self.writes: list[bytes] = []
        self.ended = False

    async def open(self) -> None:
        self.started = True

    def wait_begins(self, left_s: float) -> None:
        return None

    async def wait_ends(self) -> None:
        return None

    async def write(self, chunk: bytes) -> None:
        self.writes.append(chunk)

    async def end(self, chunk: bytes) -> None:
        self.writes.append(chunk)
        self.ended = True


async def deliver_stream(provider: Any, encoder: StreamEncoder) -> tuple[RecordingOutlet, GenerationRecord]:
    records: list[GenerationRecord] = []
    attempts = Attempts({"openai": provider}, HealthBoard(), records.append, deadline_s=5.0)
    request = ChatRequest(
        model=MODEL.id,
        messages=[{"role": "user", "content": "Hi"}],
        params={},
        stream=True,
        include_usage=True,
    )
    outlet = RecordingOutlet()
    gen = Generation(request, "gen-1-test", None)
    await attempts.stream(gen, [Candidate(MODEL, ENDPOINT, {}, ())], outlet, lambda cand: encoder)
    [record] = records
    return outlet, record


def openai_encoder() -> ChunkEncoder:
    return ChunkEncoder(
        generation_id="gen-1-test", created=1, model=MODEL.id, provider="openai", include_usage=True
    )


def frames(writes: list[bytes]) -> list[dict[str, Any]]:
    body = b"".join(writes)
    return [msgspec.json.decode(f[6:]) for f in body.split(b"\n\n") if f.startswith(b"data: {")]


@pytest.mark.parametrize("provider", [PlainProvider(), BatchingProvider(), ChunkingProvider()])
async def test_every_path_delivers_bills_and_records_the_same_answer(provider: Any) -> None:
    outlet, record = await deliver_stream(provider, openai_encoder())
    sent = frames(outlet.writes)
    text = "".join(c["delta"].get("content", "") for f in sent for c in f["choices"])
    assert text == "Hello"
    assert sent[-1]["usage"]["completion_tokens"] == 2 and sent[-1]["choices"] == []
    assert outlet.ended and outlet.writes[-1].endswith(b"data: [DONE]\n\n")
    assert record.status == "success" and record.finish_reason == "stop"
    assert (record.prompt_tokens, record.completion_tokens) == (12, 2)


async def test_what_arrives_together_is_written_together() -> None:
    outlet, _ = await deliver_stream(BatchingProvider(), openai_encoder())
    # The role-only read is held until content comes, then goes with it; the last read ends the response
    # together with the usage frame and [DONE].
    assert len(outlet.writes) == 3
    first, second, last = (frames([w]) for w in outlet.writes)
    assert [c["delta"] for f in first for c in f["choices"]] == [
        {"role": "assistant", "content": ""},
        {"content": "Hel"},
        {"content": "lo"},
    ]
    assert [c["finish_reason"] for f in second for c in f["choices"]] == ["stop"]
    assert last[0]["usage"]["prompt_tokens"] == 12


class EndingProvider(PlainProvider):
    """Its last read brought the end of the stream with it (``FinalBatch``), as ``reads`` groups them."""

    def __init__(self, reads: list[list[StreamEvent]]) -> None:
        super().__init__()
        self.reads = reads

    def stream_chunks(self, request: ChatRequest, ctx: CallContext) -> Batches:
        batches = [as_chunks(batch) for batch in self.reads]
        return Batches([*batches[:-1], FinalBatch(batches[-1])])


async def test_the_read_that_ends_the_stream_leaves_with_the_answers_end() -> None:
    outlet, record = await deliver_stream(EndingProvider(READS), openai_encoder())
    assert len(outlet.writes) == 2  # the content as it came; then the finish with the usage and [DONE]
    assert [c["finish_reason"] for c in frames(outlet.writes[-1:])[0]["choices"]] == ["stop"]
    assert outlet.writes[-1].endswith(b"data: [DONE]\n\n")
    whole = [[event for batch in READS for event in batch]]  # the whole answer in one read
    at_once, same = await deliver_stream(EndingProvider(whole), openai_encoder())
    # The first content is not held for the end, which waits for the record: it goes at once.
    assert len(at_once.writes) == 2 and at_once.ended and b"Hel" in at_once.writes[0]
    assert frames(at_once.writes) == frames(outlet.writes)
    for field in ("status", "finish_reason", "prompt_tokens", "completion_tokens", "cost_usd"):
        assert getattr(same, field) == getattr(record, field), field


async def test_passed_through_choices_reach_the_client_with_every_field_the_provider_sent() -> None:
    outlet, _ = await deliver_stream(ChunkingProvider(), openai_encoder())
    choices = [c for f in frames(outlet.writes) for c in f["choices"]]
    assert all(c["content_filter_results"] == {} for c in choices)
    assert {f["id"] for f in frames(outlet.writes)} == {"gen-1-test"}


async def test_an_encoder_without_chunks_gets_events_even_from_a_chunking_provider() -> None:
    outlet, record = await deliver_stream(ChunkingProvider(), EventsOnlyEncoder())
    assert b"".join(outlet.writes) == b"<><Hel><lo><>[end stop 2]"
    assert record.completion_tokens == 2


class BrokenProvider(PlainProvider):
    """An adapter with a bug: it raises something outside its contract."""

    async def complete(self, request: ChatRequest, ctx: CallContext) -> Any:
        raise KeyError("a bug")


async def test_an_answer_that_ends_in_a_bug_is_still_in_the_log() -> None:
    records: list[GenerationRecord] = []
    attempts = Attempts({"openai": BrokenProvider()}, HealthBoard(), records.append, deadline_s=5.0)
    request = ChatRequest(model=MODEL.id, messages=[{"role": "user", "content": "Hi"}], params={})
    gen = Generation(request, "gen-2-test", None)
    with pytest.raises(KeyError):
        await attempts.whole(gen, [Candidate(MODEL, ENDPOINT, {}, ())])
    [record] = records
    assert (record.id, record.status, record.http_status) == ("gen-2-test", "error", 500)
    assert record.error_message == "internal error in the gateway"
