"""How a streamed answer reaches the client: the cheapest path both sides offer, batch by batch.

A provider's stream arrives as pass-through chunks when the provider and the client both speak Chat
Completions (``providers.base.ChunkStreams`` and an encoder with ``chunks``, ``ChunkFrames``), else as events, in the
groups they arrived in when the provider offers them (``providers.base.BatchedStreams``), else one by one.
What arrived together goes to the client together: one write per network read upstream, and a later read
that ends the stream (``providers.base.FinalBatch``) leaves with the answer's end, in the same write.

``StreamedAnswer`` is the attempt loop's view of one streamed request: ``open`` an attempt and wait for its
first content (the client may get keep-alive comments meanwhile), then ``deliver`` the rest, tallying the
usage to bill, or ``abandon`` it for the next endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from tokenmux.attempts.answer import Delivered
from tokenmux.attempts.generation import Generation
from tokenmux.catalog.pricing import cost_usd
from tokenmux.errors import StreamInterrupted, TokenmuxError, UpstreamError
from tokenmux.protocols.openai_chunks import PassThroughChunk
from tokenmux.providers.base import CallContext, FinalBatch, Provider
from tokenmux.routing.router import Candidate
from tokenmux.routing.tokens import count_tokens
from tokenmux.types import ChatRequest, StreamEvent, Usage


class StreamEncoder(Protocol):
    """Turns a stream into the client's protocol; every method returns complete SSE frames."""

    def event(self, event: StreamEvent) -> bytes: ...

    def finish(self, usage: Usage, cost: float, finish_reason: str | None) -> bytes:
        """The frames that end a stream that went well (usage when asked, the end marker)."""
        ...

    def error(self, err: TokenmuxError) -> bytes:
        """The frames that end a stream that broke: an error event and the end marker."""
        ...


class ChunkFrames(Protocol):
    """Optional for an encoder whose client speaks Chat Completions: frames of upstream choices as is, one
    per JSON array of choices."""

    def chunks(self, arrays: list[bytes | msgspec.Raw]) -> bytes: ...


class Outlet(Protocol):
    """Where a streamed answer goes; the server implements it over the ASGI ``send``."""

    @property
    def started(self) -> bool:
        """The response has begun (status and headers sent): an error can only be told in the stream."""
        ...

    async def open(self) -> None:
        """Begin the streamed response (200, event stream) unless it has begun."""
        ...

    async def write(self, chunk: bytes) -> None: ...

    async def end(self, chunk: bytes) -> None:
        """Write the last bytes of the answer and end it (one message, so one socket write), beginning
        the response first if it has not begun."""
        ...

    def wait_begins(self, left_s: float) -> None:
        """The answer waits for its first content, at most ``left_s``: the outlet may keep the client's
        connection alive meanwhile (the server sends comments)."""
        ...

    async def wait_ends(self) -> None: ...


class Tally:
    """What a committed stream has delivered: its usage, how it finished, its text (for counting)."""

    __slots__ = ("finish_reason", "text", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.text: list[str] = []


@dataclass(slots=True)
class Delivery:
    """One attempt's stream and how its batches become the client's frames."""

    batches: AsyncIterator[list[Any]]
    frames: Callable[[list[Any], Tally], bytes]
    encoder: StreamEncoder


def delivery(provider: Provider, request: ChatRequest, ctx: CallContext, encoder: StreamEncoder) -> Delivery:
    """The cheapest way this provider's stream reaches this encoder's client: upstream chunks passed
    through when both speak Chat Completions, else events, in batches when the provider groups them."""
    # The optional fast paths of ``providers.base`` (``ChunkStreams``, ``BatchedStreams``), found by
    # attribute: a tenth of the cost of isinstance on runtime-checkable protocols, per stream.
    stream_chunks = getattr(provider, "stream_chunks", None)
    chunks = getattr(encoder, "chunks", None)
    if stream_chunks is not None and chunks is not None:

        def chunk_frames(batch: list[PassThroughChunk], tally: Tally) -> bytes:
            arrays: list[bytes | msgspec.Raw] = []
            for unit in batch:
                if unit.usage is not None:
                    tally.usage = unit.usage
                if unit.finish_reason is not None:
                    tally.finish_reason = unit.finish_reason
                if unit.text:
                    tally.text.append(unit.text)
                arrays += unit.choices
            return chunks(arrays)

        return Delivery(stream_chunks(request, ctx), chunk_frames, encoder)

    event = encoder.event

    def event_frames(batch: list[StreamEvent], tally: Tally) -> bytes:
        out = []
        for ev in batch:
            if ev.usage is not None:
                tally.usage = ev.usage
                if ev.delta is None and ev.finish_reason is None:
                    continue  # the usage event: billed here, told to the client by ``finish``
            if ev.finish_reason is not None:
                tally.finish_reason = ev.finish_reason
            delta = ev.delta
            if delta:
                content = delta.get("content")
                if content:
                    tally.text.append(content)
                for call in delta.get("tool_calls") or ():
                    args = (call.get("function") or {}).get("arguments")
                    if args:
                        tally.text.append(args)
            out.append(event(ev))
        return b"".join(out)

    stream_batches = getattr(provider, "stream_batches", None)
    if stream_batches is not None:
        batches: AsyncIterator[list[StreamEvent]] = stream_batches(request, ctx)
    else:
        batches = OneByOne(provider.stream(request, ctx))
    return Delivery(batches, event_frames, encoder)


class OneByOne:
    """A provider's plain event stream as batches of one event."""

    __slots__ = ("_events",)

    def __init__(self, events: AsyncIterator[StreamEvent]) -> None:
        self._events = events

    def __aiter__(self) -> OneByOne:
        return self

    async def __anext__(self) -> list[StreamEvent]:
        return [await self._events.__anext__()]

    async def aclose(self) -> None:
        await close(self._events)


async def close(events: AsyncIterator[Any]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        # Closing a broken stream may fail again; there is nothing left to do with it.
        with contextlib.suppress(Exception):
            await aclose()


class StreamedAnswer:
    """A streamed request's answer, attempt by attempt (see ``Answer`` in ``answer.py``)."""

    __slots__ = ("_buffered", "_delivery", "_encoder", "_encoder_for", "_gen", "_held", "_outlet", "tally")

    def __init__(
        self, gen: Generation, outlet: Outlet, encoder_for: Callable[[Candidate], StreamEncoder]
    ) -> None:
        self._gen = gen
        self._outlet = outlet
        self._encoder_for = encoder_for
        self._encoder: StreamEncoder | None = None
        self._delivery: Delivery | None = None
        self._buffered: list[list[Any]] = []
        self._held = b""  # the frames of a ``FinalBatch``: they go out with the answer's end
        self.tally: Tally | None = None  # what ``deliver`` has sent (or holds for the end) so far

    async def open(self, provider: Provider, cand: Candidate, ctx: CallContext, left_s: float) -> None:
        """Send the attempt and read batches until one carries content (or ends the answer)."""
        self._encoder = encoder = self._encoder_for(cand)
        self._delivery = found = delivery(provider, self._gen.request, ctx, encoder)
        self._buffered = buffered = []
        batches = found.batches
        outlet = self._outlet
        outlet.wait_begins(left_s)
        try:
            while True:
                try:
                    batch = await batches.__anext__()
                except StopAsyncIteration:
                    raise StreamInterrupted("the provider ended the stream before any content") from None
                buffered.append(batch)
                for unit in batch:
                    if unit.has_content or unit.finish_reason is not None:
                        return
        finally:
            await outlet.wait_ends()

    async def abandon(self) -> None:
        if self._delivery is not None:
            await close(self._delivery.batches)
            self._delivery = None

    async def deliver(self, cand: Candidate) -> Delivered:
        """Relay the rest of a stream that has its first content; never raises an ``UpstreamError``: a
        break is returned, to be billed and told."""
        found = self._delivery
        assert found is not None
        t_first = time.perf_counter()
        outlet = self._outlet
        if not outlet.started:
            await outlet.open()
        self.tally = tally = Tally()
        failure: UpstreamError | None = None
        cancelled = False
        write = outlet.write
        frames = found.frames
        batches = found.batches
        try:
            # The first content goes at once, even when the whole answer is here: its end waits for the
            # record to be journaled, the first token does not.
            first = b"".join([frames(batch, tally) for batch in self._buffered])
            if first:
                await write(first)
            async for batch in batches:
                out = frames(batch, tally)
                if type(batch) is FinalBatch:
                    self._held = out  # the iteration ends now, without waiting
                elif out:
                    await write(out)
        except UpstreamError as err:
            failure = err.with_traceback(None)  # its traceback holds this frame, which holds ``failure``
        except (asyncio.CancelledError, OSError):
            cancelled = True
        finally:
            if failure is not None or cancelled:
                await close(batches)
        t_end = time.perf_counter()
        usage = tally.usage
        if usage is None:
            # The provider stopped before its usage chunk: bill what was used, counted ourselves.
            usage = estimate_usage(self._gen.request, cand, tally.text)
        gen = self._gen
        if gen.keep_content:
            finish = "error" if failure is not None else tally.finish_reason
            gen.answer = {"text": "".join(tally.text), "finish_reason": finish}
        return Delivered(
            usage=usage,
            cost=cost_usd(usage, cand.endpoint.price),
            finish_reason=tally.finish_reason,
            t_first=t_first,
            t_end=t_end,
            streamed=True,
            failure=failure,
            cancelled=cancelled,
        )

    async def succeed(self, delivered: Delivered) -> None:
        assert self._encoder is not None
        end = self._encoder.finish(delivered.usage, delivered.cost, delivered.finish_reason)
        await self._outlet.end(self._held + end)

    async def fail(self, failure: TokenmuxError, cand: Candidate) -> None:
        """Tell the client the request failed: as an error status while nothing was sent, else in the
        stream (keep-alive comments or content already went out with a 200)."""
        if not self._outlet.started:
            raise failure
        encoder = self._encoder or self._encoder_for(cand)
        await self._outlet.end(self._held + encoder.error(failure))


def estimate_usage(request: ChatRequest, cand: Candidate, text_parts: list[str]) -> Usage:
    family = cand.model.tokenizer
    prompt_text = "".join(
        m["content"]
        if isinstance(m.get("content"), str)
        else "".join(p.get("text", "") for p in (m.get("content") or []) if isinstance(p, dict))
        for m in request.messages
    )
    prompt = count_tokens(prompt_text, family) + 3 * len(request.messages)
    return Usage(prompt_tokens=prompt, completion_tokens=count_tokens("".join(text_parts), family))
