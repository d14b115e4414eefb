"""Streams in flight, from their first content to their end: journaled so that a crash still bills them.

When a stream commits, its *draft* (``StreamDraft``) is journaled: what it is to be billed if the process
dies now (``store/journal.py``, ``store/crash.py``). That is done once the pass of the event loop in which it
committed is over, and only if the stream is still running then: the journal writes once per pass anyway,
so the draft of a stream that ended in the same pass (its whole answer had arrived) would reach the file
with the stream's own record, which makes it useless. The draft bills the prompt, estimated from the
request body's size (about four bytes a token, an upper bound for most text: nothing is counted on the
response path for a crash that rarely comes), and the output delivered so far, estimated from the
characters sent: every ``progress_every_s`` a stream that has sent more gets its draft journaled again. A
crash thus bills a stream it cut for its prompt and for what it had delivered up to the last such update.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tokenmux.attempts.delivery import StreamedAnswer
from tokenmux.attempts.generation import Generation
from tokenmux.catalog.pricing import cost_usd
from tokenmux.routing.router import Candidate
from tokenmux.store.journal import StreamDraft
from tokenmux.store.records import AttemptRecord
from tokenmux.types import Usage

BYTES_PER_TOKEN = 4  # as the Anthropic encoder estimates a prompt before the provider's usage arrives


class RunningStream:
    __slots__ = ("answer", "attempt", "chars", "draft", "parts", "price", "started", "task")

    def __init__(
        self,
        answer: StreamedAnswer,
        attempt: tuple[Generation, Candidate, AttemptRecord],
        task: asyncio.Task[object] | None,
    ) -> None:
        self.answer = answer
        self.attempt = attempt  # what its draft is made of
        self.draft: StreamDraft | None = None  # journaled once the pass it began in is over
        gen, cand, _ = attempt
        self.price = cand.endpoint.price
        self.started = gen.started  # perf_counter of the generation's start
        self.task = task
        self.parts = 0  # the delivered text parts already counted in ``chars``
        self.chars = 0


class RunningStreams:
    """The streams this process is delivering now. ``journal`` takes drafts (``Recorder.stream_started``);
    without it nothing is drafted."""

    def __init__(
        self,
        journal: Callable[[StreamDraft], None] | None = None,
        *,
        progress_every_s: float = 1.0,
    ) -> None:
        self._journal = journal
        self._every_s = progress_every_s
        self._streams: set[RunningStream] = set()
        self._undrafted: list[RunningStream] = []  # begun in this pass of the loop
        # A timer, not a task: armed while streams run, so short streams coming and going cost nothing.
        self._timer: asyncio.TimerHandle | None = None
        # Held once found: on CPython 3.11 every asyncio.get_running_loop() is a getpid system call.
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._streams)

    def tasks(self) -> set[asyncio.Task[object]]:
        """The tasks delivering the streams."""
        return {stream.task for stream in self._streams if stream.task is not None}

    def begin(
        self, gen: Generation, cand: Candidate, rec: AttemptRecord, answer: StreamedAnswer
    ) -> RunningStream:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        stream = RunningStream(answer, (gen, cand, rec), asyncio.current_task(loop))
        self._streams.add(stream)
        if self._journal is not None:
            if not self._undrafted:
                loop.call_soon(self._draft_running)
            self._undrafted.append(stream)
            if self._timer is None:
                self._timer = loop.call_later(self._every_s, self._tick)
        return stream

    def end(self, stream: RunningStream) -> None:
        self._streams.discard(stream)

    def _draft_running(self) -> None:
        """Journal the draft of each stream begun in the last pass that still runs."""
        journal = self._journal
        undrafted = self._undrafted
        self._undrafted = []
        if journal is None:
            return
        streams = self._streams
        for stream in undrafted:
            if stream in streams:
                stream.draft = draft = _draft(*stream.attempt)
                journal(draft)

    def _tick(self) -> None:
        self._timer = None
        try:
            self.journal_progress()
        finally:
            if self._streams and self._loop is not None:
                self._timer = self._loop.call_later(self._every_s, self._tick)

    def journal_progress(self) -> None:
        """Journal again the draft of every stream that has delivered more since its last draft."""
        journal = self._journal
        if journal is None:
            return
        now = time.perf_counter()
        for stream in self._streams:
            draft = stream.draft
            tally = stream.answer.tally
            if draft is None or tally is None or len(tally.text) == stream.parts:
                continue
            text = tally.text
            stream.chars += sum(map(len, text[stream.parts :]))
            stream.parts = len(text)
            draft.completion_tokens = -(-stream.chars // BYTES_PER_TOKEN)
            draft.cost_usd = cost_usd(
                Usage(prompt_tokens=draft.prompt_tokens, completion_tokens=draft.completion_tokens),
                stream.price,
            )
            draft.latency_ms = (now - stream.started) * 1000.0
            journal(draft)


def _draft(gen: Generation, cand: Candidate, rec: AttemptRecord) -> StreamDraft:
    """What a stream cut now is billed: its prompt, nothing delivered yet."""
    prompt = max(1, gen.request.body_bytes // BYTES_PER_TOKEN)
    return StreamDraft(
        id=gen.id,
        key_id=gen.key_id,
        requested_model=gen.request.model,
        model=rec.model,
        provider=rec.provider,
        endpoint=rec.endpoint,
        attempt=rec.attempt,
        created_at=gen.started_wall,
        started_at=rec.started_at,
        prompt_tokens=prompt,
        cost_usd=cost_usd(Usage(prompt_tokens=prompt), cand.endpoint.price),
        latency_ms=(time.perf_counter() - gen.started) * 1000.0,
        dropped_params=cand.dropped,
    )
