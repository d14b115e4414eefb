"""The attempt loop: send a planned request to its endpoints in order until one answers.

Before the client has seen content, every provider failure moves on to the next endpoint (``decision``);
after it, the stream ends with an error event. One deadline covers all attempts up to the first byte; after
the first byte a stream runs until the provider ends it (the transport's read timeout catches a stall).
Every attempt is recorded; recording is a non-blocking append to the recorder's queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec

from tokenmux.catalog.pricing import cost_usd
from tokenmux.errors import (
    AllAttemptsFailed,
    DeadlineExceeded,
    NoEndpointAvailable,
    ProviderRejected,
    StreamInterrupted,
    TokenmuxError,
    UpstreamError,
)
from tokenmux.protocols.openai_chunks import PassThroughChunk
from tokenmux.protocols.sse import comment
from tokenmux.providers.base import CallContext, Provider
from tokenmux.routing.decision import Next, after_failure
from tokenmux.routing.health import HealthBoard, counts_against_provider
from tokenmux.routing.router import Candidate
from tokenmux.routing.tokens import count_tokens
from tokenmux.slow_waits import Deadline, SlowWaits, slow_waits
from tokenmux.store.records import AttemptRecord, GenerationRecord
from tokenmux.types import ChatRequest, ChatResponse, StreamEvent, Usage

KEEPALIVE = comment("tokenmux processing")


class StreamEncoder(Protocol):
    """Turns a stream into the client's protocol; every method returns complete SSE frames."""

    def event(self, event: StreamEvent) -> bytes: ...

    def finish(self, usage: Usage, cost: float, finish_reason: str | None) -> bytes:
        """The frames that end a stream that went well (usage when asked, the end marker)."""
        ...

    def error(self, err: TokenmuxError) -> bytes:
        """The frames that end a stream that broke: an error event and the end marker."""
        ...


class Outlet:
    """Where a streamed answer goes: the server implements it over the ASGI ``send``."""

    started: bool = False

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        raise NotImplementedError

    async def write(self, chunk: bytes) -> None:
        raise NotImplementedError

    async def end(self, chunk: bytes) -> None:
        """Write the last bytes of the answer and end it (one message, so one socket write)."""
        raise NotImplementedError


@dataclass(slots=True)
class Served:
    """A finished non-streamed generation, ready to encode."""

    response: ChatResponse
    candidate: Candidate
    usage: Usage
    cost: float


@dataclass(slots=True)
class Generation:
    """The record of one request being built while it runs."""

    request: ChatRequest
    id: str
    key_id: str | None
    started_wall: float = field(default_factory=time.time)
    started: float = field(default_factory=time.perf_counter)
    attempts: list[AttemptRecord] = field(default_factory=list)
    # Only for a key that opted in to storing prompts (``store.contents``): the answer, as delivered.
    keep_content: bool = False
    answer: Any = None

    def attempt(self, cand: Candidate, started_wall: float) -> AttemptRecord:
        rec = AttemptRecord(
            generation_id=self.id,
            attempt=len(self.attempts) + 1,
            model=cand.model.id,
            provider=cand.endpoint.provider,
            endpoint=cand.endpoint.key,
            outcome="error",
            streamed=self.request.stream,
            started_at=started_wall,
        )
        self.attempts.append(rec)
        return rec

    def finish(
        self,
        *,
        status: str,
        http_status: int,
        served: AttemptRecord | None,
        error: str | None = None,
        dropped: tuple[str, ...] = (),
    ) -> GenerationRecord:
        gen = GenerationRecord(
            id=self.id,
            key_id=self.key_id,
            requested_model=self.request.model,
            created_at=self.started_wall,
            streamed=self.request.stream,
            status=status,
            http_status=http_status,
            error_message=error,
            latency_ms=(time.perf_counter() - self.started) * 1000.0,
            dropped_params=list(dropped),
            attempts=self.attempts,
        )
        if served is not None:
            gen.model = served.model
            gen.provider = served.provider
            gen.finish_reason = served.finish_reason
            gen.ttft_ms = served.ttft_ms
            gen.generation_ms = served.generation_ms
            gen.throughput_tps = served.throughput_tps
        # Every attempt's billed usage adds up: failed attempts usually cost nothing, but a stream cut short
        # after its first byte is charged for what it used.
        for a in self.attempts:
            gen.prompt_tokens += a.prompt_tokens
            gen.completion_tokens += a.completion_tokens
            gen.cached_tokens += a.cached_tokens
            gen.cache_write_tokens += a.cache_write_tokens
            gen.reasoning_tokens += a.reasoning_tokens
            gen.cost_usd += a.cost_usd
        return gen


def _fill_usage(rec: AttemptRecord, usage: Usage, cost: float) -> None:
    rec.prompt_tokens = usage.prompt_tokens
    rec.completion_tokens = usage.completion_tokens
    rec.cached_tokens = usage.cached_tokens
    rec.cache_write_tokens = usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
    rec.reasoning_tokens = usage.reasoning_tokens
    rec.cost_usd = cost


def _fail_attempt(rec: AttemptRecord, err: UpstreamError, t0: float) -> None:
    rec.outcome = "error"
    rec.error_class = err.error_class
    rec.error_message = err.message[:500]
    rec.upstream_status = err.upstream_status if isinstance(err, ProviderRejected) else None
    rec.counts_for_uptime = counts_against_provider(err)
    rec.latency_ms = (time.perf_counter() - t0) * 1000.0


def _timing(
    rec: AttemptRecord, t0: float, t_first: float | None, t_end: float, completion_tokens: int
) -> None:
    rec.latency_ms = (t_end - t0) * 1000.0
    if t_first is not None:
        rec.ttft_ms = (t_first - t0) * 1000.0
        gen_s = t_end - t_first
        rec.generation_ms = gen_s * 1000.0
        if gen_s > 0 and completion_tokens > 0:
            rec.throughput_tps = completion_tokens / gen_s


class Relay:
    def __init__(
        self,
        providers: dict[str, Provider],
        health: HealthBoard,
        record: Callable[[GenerationRecord], None],
        *,
        deadline_s: float,
        keepalive_s: float,
    ) -> None:
        self.providers = providers
        self.health = health
        self.record = record
        self.deadline_s = deadline_s
        self.keepalive_s = keepalive_s

    # -- shared --------------------------------------------------------------------------------

    def _usable(self, plan: list[Candidate]) -> list[Candidate]:
        """The plan minus endpoints in cooldown or with an open circuit; all of them blocked is a 503."""
        blocked = self.health.blocked_until
        usable = [c for c in plan if blocked(c.endpoint.key) == 0.0]
        if usable:
            return usable
        wait = min(blocked(c.endpoint.key) for c in plan) - self.health.clock()
        providers = ", ".join(sorted({c.endpoint.provider for c in plan}))
        raise NoEndpointAvailable(
            f"every endpoint for this request is cooling down after failures or rate limits ({providers}); "
            f"retry in {max(1, round(wait))} s",
            retry_after=max(wait, 1.0),
        )

    def _give_up(
        self, gen: Generation, errors: list[tuple[Candidate, UpstreamError]], deadline_hit: bool
    ) -> TokenmuxError:
        attempts = [
            {
                "provider": c.endpoint.provider,
                "model": c.model.id,
                "error": e.message,
                "error_class": e.error_class,
                **({"status": e.upstream_status} if isinstance(e, ProviderRejected) else {}),
            }
            for c, e in errors
        ]
        if deadline_hit:
            return DeadlineExceeded(
                f"no provider answered within the request deadline of {self.deadline_s:g} s",
                metadata={"attempts": attempts},
            )
        summary = "; ".join(f"{a['provider']}: {a['error']}" for a in attempts)
        return AllAttemptsFailed(
            f"every provider attempt failed ({summary})",
            metadata={"attempts": attempts},
        )

    def _pass_through(self, err: ProviderRejected, cand: Candidate) -> TokenmuxError:
        """A provider's refusal of the request itself, translated to our error with the provider's status."""
        out = TokenmuxError(f"{cand.endpoint.provider} rejected the request: {err.message}", param=err.param)
        out.status = err.upstream_status
        out.type = "invalid_request_error" if err.upstream_status < 500 else "upstream_error"
        out.code = err.upstream_type or "provider_rejected"
        return out

    def _call_context(self, cand: Candidate, provider: Provider, deadline: float) -> CallContext:
        remaining = deadline - time.perf_counter()
        return CallContext(
            endpoint=cand.endpoint, params=cand.params, timeout_s=min(provider.config.timeout_s, remaining)
        )

    # -- non-streamed --------------------------------------------------------------------------

    async def complete(self, gen: Generation, plan: list[Candidate]) -> Served:
        usable = self._usable(plan)
        deadline = gen.started + self.deadline_s
        errors: list[tuple[Candidate, UpstreamError]] = []
        for cand in usable:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                break
            provider = self.providers[cand.endpoint.provider]
            rec = gen.attempt(cand, time.time())
            key = cand.endpoint.key
            self.health.begin_attempt(key)
            t0 = time.perf_counter()
            guard = Deadline(asyncio.get_running_loop().time() + remaining)
            try:
                try:
                    response = await provider.complete(
                        gen.request, self._call_context(cand, provider, deadline)
                    )
                except asyncio.CancelledError:
                    if guard.absorbs():
                        raise TimeoutError from None  # the deadline's doing, not the client's
                    raise
                finally:
                    guard.stop()
            except UpstreamError as err:
                _fail_attempt(rec, err, t0)
                self.health.record_failure(key, err)
                errors.append((cand, err))
                if after_failure(err, committed=False) is Next.RETURN_ERROR:
                    assert isinstance(err, ProviderRejected)
                    self._finish_failed(gen, err.upstream_status, err.message)
                    raise self._pass_through(err, cand) from None
                continue
            except TimeoutError:
                late = DeadlineTimeout(f"{cand.endpoint.provider} did not answer before the request deadline")
                _fail_attempt(rec, late, t0)
                self.health.record_failure(key, late)
                errors.append((cand, late))
                break
            except asyncio.CancelledError:
                rec.outcome = "cancelled"
                rec.latency_ms = (time.perf_counter() - t0) * 1000.0
                self.health.record_neutral(key)
                self.record(
                    gen.finish(status="cancelled", http_status=499, served=None, error="client disconnected")
                )
                raise
            t_end = time.perf_counter()
            usage = response.usage or Usage()
            cost = cost_usd(usage, cand.endpoint.price)
            rec.outcome = "success"
            rec.finish_reason = response.choices[0].get("finish_reason") if response.choices else None
            _fill_usage(rec, usage, cost)
            # A non-streamed answer arrives whole: its first token and its last byte are the same moment.
            _timing(rec, t0, t_end, t_end, 0)
            rec.throughput_tps = usage.completion_tokens / (t_end - t0) if t_end > t0 else None
            self.health.record_success(key, ttft_ms=None, throughput_tps=None)
            self.record(gen.finish(status="success", http_status=200, served=rec, dropped=cand.dropped))
            if gen.keep_content:
                gen.answer = {"choices": response.choices}
            return Served(response=response, candidate=cand, usage=usage, cost=cost)
        deadline_hit = time.perf_counter() >= deadline or any(
            isinstance(e, DeadlineTimeout) for _, e in errors
        )
        failure = self._give_up(gen, errors, deadline_hit)
        self._finish_failed(gen, failure.status, failure.message)
        raise failure

    def _finish_failed(self, gen: Generation, http_status: int, message: str) -> None:
        self.record(gen.finish(status="error", http_status=http_status, served=None, error=message))

    # -- streamed ------------------------------------------------------------------------------

    async def stream(
        self,
        gen: Generation,
        plan: list[Candidate],
        outlet: Outlet,
        encoder_for: Callable[[Candidate], StreamEncoder],
    ) -> None:
        """Stream the answer to ``outlet``. Raises a TokenmuxError only while nothing was sent, so the server
        can still answer with an error status; once headers are out, failures become an SSE error chunk."""
        usable = self._usable(plan)
        deadline = gen.started + self.deadline_s
        errors: list[tuple[Candidate, UpstreamError]] = []
        for cand in usable:
            if deadline - time.perf_counter() <= 0:
                break
            provider = self.providers[cand.endpoint.provider]
            rec = gen.attempt(cand, time.time())
            key = cand.endpoint.key
            self.health.begin_attempt(key)
            t0 = time.perf_counter()
            delivery = _delivery(
                provider, gen.request, self._call_context(cand, provider, deadline), encoder_for(cand)
            )
            try:
                buffered = await self._first_content(delivery.batches, outlet, deadline)
            except UpstreamError as err:
                await _close(delivery.batches)
                _fail_attempt(rec, err, t0)
                self.health.record_failure(key, err)
                errors.append((cand, err))
                if after_failure(err, committed=False) is Next.RETURN_ERROR and not outlet.started:
                    assert isinstance(err, ProviderRejected)
                    self._finish_failed(gen, err.upstream_status, err.message)
                    raise self._pass_through(err, cand) from None
                if isinstance(err, DeadlineTimeout):
                    break
                continue
            except asyncio.CancelledError:
                await _close(delivery.batches)
                rec.outcome = "cancelled"
                rec.latency_ms = (time.perf_counter() - t0) * 1000.0
                self.health.record_neutral(key)
                self.record(
                    gen.finish(status="cancelled", http_status=499, served=None, error="client disconnected")
                )
                raise
            await self._relay_committed(gen, cand, rec, delivery, buffered, outlet, t0)
            return
        deadline_hit = time.perf_counter() >= deadline or any(
            isinstance(e, DeadlineTimeout) for _, e in errors
        )
        failure = self._give_up(gen, errors, deadline_hit)
        self._finish_failed(gen, failure.status, failure.message)
        if not outlet.started:
            raise failure
        # Keep-alive comments already went out with a 200: the failure can only be told in the stream.
        await outlet.end(encoder_for(plan[0]).error(failure))

    async def _first_content(
        self, batches: AsyncIterator[list[Any]], outlet: Outlet, deadline: float
    ) -> list[list[Any]]:
        """Read batches until one carries content (or ends the answer); send keep-alive comments meanwhile."""
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise DeadlineTimeout("no first token before the request deadline")
        guard = Deadline(asyncio.get_running_loop().time() + remaining)
        keepalive = (
            _KeepAlive(outlet, self.keepalive_s)
            if self.keepalive_s > 0 and (remaining > self.keepalive_s or outlet.started)
            else None
        )
        buffered: list[list[Any]] = []
        try:
            while True:
                try:
                    batch = await batches.__anext__()
                except StopAsyncIteration:
                    raise StreamInterrupted("the provider ended the stream before any content") from None
                buffered.append(batch)
                for unit in batch:
                    if unit.has_content or unit.finish_reason is not None:
                        return buffered
        except asyncio.CancelledError:
            if guard.absorbs():
                raise DeadlineTimeout("no first token before the request deadline") from None
            raise
        finally:
            guard.stop()
            if keepalive is not None:
                await keepalive.stop()

    async def _relay_committed(
        self,
        gen: Generation,
        cand: Candidate,
        rec: AttemptRecord,
        delivery: _Delivery,
        buffered: list[list[Any]],
        outlet: Outlet,
        t0: float,
    ) -> None:
        t_first = time.perf_counter()
        if not outlet.started:
            await outlet.start(200, SSE_HEADERS)
        tally = _Tally()
        failure: TokenmuxError | None = None
        cancelled = False
        write = outlet.write
        frames = delivery.frames
        batches = delivery.batches
        try:
            # What arrived together goes to the client together: one write per network read upstream.
            first = b"".join([frames(batch, tally) for batch in buffered])
            if first:
                await write(first)
            async for batch in batches:
                out = frames(batch, tally)
                if out:
                    await write(out)
        except UpstreamError as err:
            failure = (
                err
                if isinstance(err, StreamInterrupted)
                else StreamInterrupted(
                    f"{cand.endpoint.provider} broke the stream after it started: {err.message}"
                )
            )
            _fail_attempt(rec, failure, t0)
            rec.error_class = err.error_class
            self.health.record_failure(cand.endpoint.key, err)
        except (asyncio.CancelledError, OSError):
            cancelled = True
        finally:
            if failure is not None or cancelled:
                await _close(batches)
        t_end = time.perf_counter()
        usage = tally.usage
        if usage is None:
            # The provider stopped before its usage chunk: bill what was used, counted ourselves.
            usage = self._estimate_usage(gen.request, cand, tally.text)
        cost = cost_usd(usage, cand.endpoint.price)
        _fill_usage(rec, usage, cost)
        _timing(rec, t0, t_first, t_end, usage.completion_tokens)
        finish_reason = tally.finish_reason
        rec.finish_reason = "error" if failure else finish_reason
        if gen.keep_content:
            gen.answer = {"text": "".join(tally.text), "finish_reason": rec.finish_reason}
        if cancelled:
            rec.outcome = "cancelled"
            self.health.record_neutral(cand.endpoint.key)
            self.record(
                gen.finish(
                    status="cancelled",
                    http_status=499,
                    served=rec,
                    error="client disconnected",
                    dropped=cand.dropped,
                )
            )
            raise asyncio.CancelledError
        encoder = delivery.encoder
        if failure is not None:
            self.record(
                gen.finish(
                    status="error", http_status=200, served=rec, error=failure.message, dropped=cand.dropped
                )
            )
            await outlet.end(encoder.error(failure))
            return
        rec.outcome = "success"
        self.health.record_success(cand.endpoint.key, ttft_ms=rec.ttft_ms, throughput_tps=rec.throughput_tps)
        self.record(gen.finish(status="success", http_status=200, served=rec, dropped=cand.dropped))
        await outlet.end(encoder.finish(usage, cost, finish_reason))

    @staticmethod
    def _estimate_usage(request: ChatRequest, cand: Candidate, text_parts: list[str]) -> Usage:
        family = cand.model.tokenizer
        prompt_text = "".join(
            m["content"]
            if isinstance(m.get("content"), str)
            else "".join(p.get("text", "") for p in (m.get("content") or []) if isinstance(p, dict))
            for m in request.messages
        )
        prompt = count_tokens(prompt_text, family) + 3 * len(request.messages)
        return Usage(prompt_tokens=prompt, completion_tokens=count_tokens("".join(text_parts), family))


# -- how a stream's pieces reach the client ---------------------------------------------------------


class BatchedStreams(Protocol):
    """Optional for a provider: its stream in the groups it arrived in, one list per network read."""

    def stream_batches(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[StreamEvent]]: ...


class ChunkStreams(Protocol):
    """Optional for an OpenAI-format provider: its stream as pass-through chunks (``openai_chunks``)."""

    def stream_chunks(
        self, request: ChatRequest, ctx: CallContext
    ) -> AsyncIterator[list[PassThroughChunk]]: ...


class ChunkFrames(Protocol):
    """Optional for an encoder whose client speaks Chat Completions: a frame of upstream choices as is."""

    def chunk(self, choices: bytes | msgspec.Raw) -> bytes: ...


class _KeepAlive:
    """Keep-alive comments every ``every_s`` while a stream waits for its first content, from a task that
    only a slow request gets (``slow_waits.py``); the first comment opens the response with a 200."""

    __slots__ = ("_every_s", "_outlet", "_since", "_stopped", "_table", "_task")

    def __init__(self, outlet: Outlet, every_s: float) -> None:
        self._outlet = outlet
        self._every_s = every_s
        self._since = asyncio.get_running_loop().time()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._table: SlowWaits | None = None
        if SlowWaits.arms_in_time(every_s):
            self._table = slow_waits()
            self._table.add(self)
        else:
            self.on_slow()

    def on_slow(self) -> None:
        if not self._stopped:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = self._since + self._every_s
        while True:
            await asyncio.sleep(due - loop.time())
            if not self._outlet.started:
                await self._outlet.start(200, SSE_HEADERS)
            await self._outlet.write(KEEPALIVE)
            due += self._every_s

    async def stop(self) -> None:
        self._stopped = True
        if self._table is not None:
            self._table.discard(self)
        task = self._task
        if task is None:
            return
        if not task.done():
            # An ASGI send is complete or not begun when cancelled: no comment is cut in half.
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled():
            # A comment that could not be sent says nothing the stream's next write will not say.
            task.exception()


class _Tally:
    """What a committed stream has delivered: its usage, how it finished, its text (for counting)."""

    __slots__ = ("finish_reason", "text", "usage")

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.text: list[str] = []


@dataclass(slots=True)
class _Delivery:
    """One attempt's stream and how its batches become the client's frames."""

    batches: AsyncIterator[list[Any]]
    frames: Callable[[list[Any], _Tally], bytes]
    encoder: StreamEncoder


def _delivery(
    provider: Provider, request: ChatRequest, ctx: CallContext, encoder: StreamEncoder
) -> _Delivery:
    """The cheapest way this provider's stream reaches this encoder's client: upstream chunks passed
    through when both speak Chat Completions, else events, in batches when the provider groups them."""
    # getattr rather than isinstance on the runtime-checkable protocols: a tenth of the cost, per stream.
    stream_chunks = getattr(provider, "stream_chunks", None)
    chunk = getattr(encoder, "chunk", None)
    if stream_chunks is not None and chunk is not None:

        def chunk_frames(batch: list[PassThroughChunk], tally: _Tally) -> bytes:
            out = []
            for unit in batch:
                if unit.usage is not None:
                    tally.usage = unit.usage
                if unit.finish_reason is not None:
                    tally.finish_reason = unit.finish_reason
                if unit.text:
                    tally.text.append(unit.text)
                if unit.choices:
                    out.append(chunk(unit.choices))
            return b"".join(out)

        return _Delivery(stream_chunks(request, ctx), chunk_frames, encoder)

    event = encoder.event

    def event_frames(batch: list[StreamEvent], tally: _Tally) -> bytes:
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
        batches = _OneByOne(provider.stream(request, ctx))
    return _Delivery(batches, event_frames, encoder)


class _OneByOne:
    """A provider's plain event stream as batches of one event."""

    __slots__ = ("_events",)

    def __init__(self, events: AsyncIterator[StreamEvent]) -> None:
        self._events = events

    def __aiter__(self) -> _OneByOne:
        return self

    async def __anext__(self) -> list[StreamEvent]:
        return [await self._events.__anext__()]

    async def aclose(self) -> None:
        await _close(self._events)


class DeadlineTimeout(UpstreamError):
    """The request's deadline passed while waiting on this attempt."""

    error_class = "timeout"


SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def _close(events: AsyncIterator[Any]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        # Closing a broken stream may fail again; there is nothing left to do with it.
        with contextlib.suppress(Exception):
            await aclose()
