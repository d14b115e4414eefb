"""The attempt loop: send a planned request to its endpoints in order until one answers.

One loop for streamed and whole answers (``answer.py``, ``delivery.py``). After every failure it asks
``routing.decision`` what to do, with whether the client already has content and how much of the
request's deadline is left; it decides nothing of its own. One deadline covers all attempts up to the
first content; after it a stream runs until the provider ends it (the transport's read timeout catches a
stall).

Health never takes an endpoint out of a plan: endpoints in cooldown or with an open circuit are tried
last, the one whose block ends soonest first (``routing.router.blocked_last``), so a request is refused
only when every endpoint has been tried. When every attempt was rate-limited the client gets 429 with
the shortest wait any of them asked for (``Retry-After``), not a 502: it may simply retry then.

Every generation is recorded once, whatever way it ends (a success, a failure with its reason, a client
that left, a bug of ours); recording is a non-blocking append to the recorder's queue. When the recorder
keeps a journal, ``record`` returns what to await before the client is told the end of its answer, so
that no answer a client received whole lacks its record after a crash (``store/journal.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tokenmux.attempts.answer import Answer, WholeAnswer
from tokenmux.attempts.delivery import Outlet, StreamedAnswer, StreamEncoder
from tokenmux.attempts.generation import (
    Generation,
    Served,
    fail_attempt,
    fill_usage,
    streamed_timing,
    whole_timing,
)
from tokenmux.attempts.running import RunningStreams
from tokenmux.errors import (
    AllAttemptsFailed,
    DeadlineExceeded,
    DeadlineTimeout,
    ProviderRejected,
    RateLimited,
    ShuttingDown,
    StreamInterrupted,
    TokenmuxError,
    UpstreamError,
)
from tokenmux.loop_lookup import current_task
from tokenmux.providers.base import CallContext, Provider
from tokenmux.routing.affinity import CacheAffinity, may_be_cached
from tokenmux.routing.decision import Next, after_failure
from tokenmux.routing.health import HealthBoard
from tokenmux.routing.open_fits import OpenFits
from tokenmux.routing.router import Candidate, blocked_last
from tokenmux.slow_waits import Deadline
from tokenmux.store.journal import StreamDraft
from tokenmux.store.records import AttemptRecord, GenerationRecord

SHUTDOWN_REASON = "ended by shutdown"


class Attempts:
    def __init__(
        self,
        providers: dict[str, Provider],
        health: HealthBoard,
        record: Callable[[GenerationRecord], Awaitable[None] | None],
        *,
        deadline_s: float,
        journal_stream: Callable[[StreamDraft], None] | None = None,
        affinity: CacheAffinity | None = None,
    ) -> None:
        self.providers = providers
        self.health = health
        self.record = record
        self.deadline_s = deadline_s
        # Streams being delivered; with ``journal_stream``, each is journaled so a crash still bills it.
        self.running = RunningStreams(journal_stream)
        self.affinity = affinity
        self._opening: set[asyncio.Task[Any]] = set()  # requests waiting for an attempt's answer
        self._shutting_down = False  # end_all() was called: a cancellation now is the shutdown's

    def end_all(self) -> int:
        """The drain period after SIGTERM is over: every request still waiting for its answer or streaming
        it ends now, telling its client the gateway is shutting down (a stream with the protocol's error
        event, else 503) and recorded as ended by shutdown. Returns how many were ended."""
        self._shutting_down = True
        tasks = self._opening | self.running.tasks()
        for task in tasks:
            task.cancel(msg=SHUTDOWN_REASON)
        return len(tasks)

    def _absorbs_shutdown(self) -> bool:
        """After a cancellation: True (and the cancellation undone, so the request can still tell its
        client) when it was ``end_all``'s."""
        if not self._shutting_down:
            return False
        task = current_task()
        if task is not None and task.cancelling():
            task.uncancel()
        return True

    async def whole(self, gen: Generation, plan: list[Candidate]) -> Served:
        """The answer of a non-streamed request; a failure raises the ``TokenmuxError`` to answer with."""
        answer = WholeAnswer(gen)
        await self._run(gen, plan, answer)
        assert answer.served is not None
        return answer.served

    async def stream(
        self,
        gen: Generation,
        plan: list[Candidate],
        outlet: Outlet,
        encoder_for: Callable[[Candidate], StreamEncoder],
    ) -> None:
        """Stream the answer to ``outlet``. Raises a TokenmuxError only while nothing was sent, so the server
        can still answer with an error status; once the response began, failures end it with an error event."""
        await self._run(gen, plan, StreamedAnswer(gen, outlet, encoder_for))

    async def answer(self, gen: Generation, plan: list[Candidate], answer: Answer) -> None:
        """Run an answer of another kind through the same loop (embeddings: ``attempts/embedding.py``);
        a failure raises the ``TokenmuxError`` to answer with when the answer's ``fail`` does."""
        await self._run(gen, plan, answer)

    async def _run(self, gen: Generation, plan: list[Candidate], answer: Answer) -> None:
        open_fit = None
        for cand in plan:
            if cand.open_fit is not None:
                open_fit = cand.open_fit
                break
        try:
            await self._attempts(gen, plan, answer, open_fit)
        except BaseException as exc:
            if not gen.recorded:
                # Ended in a way no branch below recorded (a bug of ours): the answer still carries the
                # generation id, so the log must hold it.
                cancelled = isinstance(exc, asyncio.CancelledError)
                self.record(
                    gen.finish(
                        status="cancelled" if cancelled else "error",
                        http_status=499 if cancelled else 500,
                        served=None,
                        error="client disconnected" if cancelled else "internal error in the gateway",
                    )
                )
            raise
        finally:
            if open_fit is not None:
                open_fit.stop()

    async def _attempts(
        self, gen: Generation, plan: list[Candidate], answer: Answer, open_fit: OpenFits | None
    ) -> None:
        deadline = gen.started + self.deadline_s
        errors: list[tuple[Candidate, UpstreamError]] = []
        health = self.health
        task = current_task()
        loop = task.get_loop()
        opening = self._opening
        for cand in blocked_last(plan, health.blocked_until):
            # An endpoint only a count can say the prompt fits (routing/open_fits.py): the first attempt
            # goes at once, with the count started beside it; any later one waits for the count.
            early = False
            if cand.open_fit is not None:
                fits = cand.open_fit.known(cand.endpoint)
                if fits is None and errors:
                    fits = await cand.open_fit.fits(cand.endpoint)
                elif fits is None:
                    cand.open_fit.start()
                    early = True
                if not (fits or early):
                    continue  # the prompt does not fit it: never sent there
            t0 = time.perf_counter()
            left = deadline - t0
            if left <= 0:
                break
            if self._shutting_down:
                await self._shut_down(gen, answer, cand)
                return
            provider = self.providers[cand.endpoint.provider]
            key = cand.endpoint.key
            rec = gen.attempt(cand, gen.wall_time(t0))
            health.begin_attempt(key)
            ctx = CallContext(
                endpoint=cand.endpoint, params=cand.params, timeout_s=min(provider.config.timeout_s, left)
            )
            guard = Deadline(loop.time() + left, task)
            opening.add(task)
            try:
                try:
                    await answer.open(provider, cand, ctx, left)
                except asyncio.CancelledError:
                    if guard.absorbs():  # the deadline's doing, not the client's
                        raise DeadlineTimeout(
                            f"{cand.endpoint.provider} did not answer before the request deadline"
                        ) from None
                    raise
                finally:
                    opening.discard(task)
                    guard.stop()
            except UpstreamError as err:
                await answer.abandon()
                fail_attempt(rec, err, (time.perf_counter() - t0) * 1000.0)
                health.record_failure(key, err)
                # Kept without its traceback, which holds this frame, which holds ``errors``: a reference
                # cycle holding the request until the garbage collector came round.
                errors.append((cand, err.with_traceback(None)))
                verdict = after_failure(err, committed=False, time_left_s=deadline - time.perf_counter())
                if verdict is Next.RETURN_ERROR and early:
                    assert cand.open_fit is not None
                    if not await cand.open_fit.fits(cand.endpoint):
                        # Refused a prompt the count confirms is over its context: another may take it.
                        verdict = after_failure(
                            err,
                            committed=False,
                            time_left_s=deadline - time.perf_counter(),
                            size_refused=True,
                        )
                if verdict is Next.RETURN_ERROR:
                    assert isinstance(err, ProviderRejected)
                    refusal = _pass_through(err, cand)
                    await self._finish_failed(gen, refusal.status, refusal.message)
                    await answer.fail(refusal, cand)
                    return
                if verdict is Next.GIVE_UP:
                    break
                continue
            except asyncio.CancelledError:
                shutdown = self._absorbs_shutdown()
                await answer.abandon()
                rec.outcome = "cancelled"
                rec.latency_ms = (time.perf_counter() - t0) * 1000.0
                health.record_neutral(key)
                if shutdown:
                    rec.error_message = SHUTDOWN_REASON
                    await self._shut_down(gen, answer, cand)
                    return
                self._finish_cancelled(gen, None, ())
                raise
            health.record_answering(key)
            if open_fit is not None:
                open_fit.stop()  # no other endpoint will be tried: nobody needs the count
            await self._committed(gen, cand, rec, answer, t0, deadline)
            return
        failure = open_fit.too_large(plan) if open_fit is not None else None
        if failure is None:
            failure = self._give_up(errors, time.perf_counter() >= deadline)
        await self._finish_failed(gen, failure.status, failure.message)
        await answer.fail(failure, plan[0])

    async def _committed(
        self,
        gen: Generation,
        cand: Candidate,
        rec: AttemptRecord,
        answer: Answer,
        t0: float,
        deadline: float,
    ) -> None:
        """The attempt's answer has begun: run it to its end, bill it, record it, tell the client."""
        if isinstance(answer, StreamedAnswer):
            running = self.running.begin(gen, cand, rec, answer)
            try:
                delivered = await answer.deliver(cand)
            finally:
                self.running.end(running)
        else:
            delivered = await answer.deliver(cand)
        fill_usage(rec, delivered.usage, delivered.cost)
        if delivered.streamed:
            streamed_timing(rec, t0, delivered.t_first, delivered.t_end)
        else:
            whole_timing(rec, t0, delivered.t_end)
        key = cand.endpoint.key
        if delivered.cancelled:
            rec.finish_reason = delivered.finish_reason
            rec.outcome = "cancelled"
            self.health.record_neutral(key)
            if self._absorbs_shutdown():
                # Billed for what it delivered, told in the stream that it ends here.
                rec.error_message = SHUTDOWN_REASON
                rec.finish_reason = "error"
                await self._recorded(
                    gen.finish(
                        status="error",
                        http_status=200,
                        served=rec,
                        error=SHUTDOWN_REASON,
                        dropped=cand.dropped,
                    )
                )
                await answer.fail(ShuttingDown(_SHUTDOWN_MESSAGE), cand)
                return
            self._finish_cancelled(gen, rec, cand.dropped)
            raise asyncio.CancelledError
        err = delivered.failure
        if err is not None:
            verdict = after_failure(err, committed=True, time_left_s=deadline - time.perf_counter())
            assert verdict is Next.END_STREAM
            failure = (
                err
                if isinstance(err, StreamInterrupted)
                else StreamInterrupted(
                    f"{cand.endpoint.provider} broke the stream after it started: {err.message}"
                )
            )
            fail_attempt(rec, failure, None)
            rec.error_class = err.error_class
            rec.finish_reason = "error"
            self.health.record_failure(key, err)
            await self._recorded(
                gen.finish(
                    status="error", http_status=200, served=rec, error=failure.message, dropped=cand.dropped
                )
            )
            await answer.fail(failure, cand)
            return
        rec.outcome = "success"
        rec.finish_reason = delivered.finish_reason
        if delivered.streamed:
            self.health.record_success(key, ttft_ms=rec.ttft_ms, throughput_tps=rec.throughput_tps)
        else:
            self.health.record_success(key, ttft_ms=None, throughput_tps=None)
        if (
            gen.conversation is not None
            and self.affinity is not None
            and may_be_cached(rec.prompt_tokens, rec.cached_tokens, rec.cache_write_tokens, gen.request)
        ):
            self.affinity.remember(gen.conversation, key)
        await self._recorded(gen.finish(status="success", http_status=200, served=rec, dropped=cand.dropped))
        await answer.succeed(delivered)

    async def _recorded(self, record: GenerationRecord) -> None:
        """Record, and wait until the record survives a crash of this process (when the recorder can say)."""
        journaled = self.record(record)
        if journaled is not None:
            await journaled

    async def _finish_failed(self, gen: Generation, http_status: int, message: str) -> None:
        await self._recorded(gen.finish(status="error", http_status=http_status, served=None, error=message))

    async def _shut_down(self, gen: Generation, answer: Answer, cand: Candidate) -> None:
        """End a request that has no answer yet because the gateway is shutting down."""
        failure = ShuttingDown(_SHUTDOWN_MESSAGE)
        await self._finish_failed(gen, failure.status, SHUTDOWN_REASON)
        await answer.fail(failure, cand)

    def _finish_cancelled(
        self, gen: Generation, served: AttemptRecord | None, dropped: tuple[str, ...]
    ) -> None:
        self.record(
            gen.finish(
                status="cancelled",
                http_status=499,
                served=served,
                error="client disconnected",
                dropped=dropped,
            )
        )

    def _retry_after(self, cand: Candidate, err: UpstreamError) -> float:
        """Seconds until a rate-limited endpoint takes requests again: its Retry-After, else the cooldown
        the health board gave it."""
        if isinstance(err, ProviderRejected) and err.retry_after is not None:
            return err.retry_after
        return max(0.0, self.health.blocked_until(cand.endpoint.key) - self.health.clock())

    def _give_up(self, errors: list[tuple[Candidate, UpstreamError]], deadline_passed: bool) -> TokenmuxError:
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
        if deadline_passed or any(isinstance(e, DeadlineTimeout) for _, e in errors):
            return DeadlineExceeded(
                f"no provider answered within the request deadline of {self.deadline_s:g} s",
                metadata={"attempts": attempts},
            )
        summary = "; ".join(f"{a['provider']}: {a['error']}" for a in attempts)
        if errors and all(isinstance(e, ProviderRejected) and e.upstream_status == 429 for _, e in errors):
            # Every provider is rate-limiting: the client may retry, as soon as the first one lets it.
            wait = min(self._retry_after(c, e) for c, e in errors)
            return RateLimited(
                f"every provider is rate-limiting requests now ({summary}); retry after {max(1, round(wait))} s",
                retry_after=wait,
                code="upstream_rate_limited",
                metadata={"attempts": attempts},
            )
        return AllAttemptsFailed(
            f"every provider attempt failed ({summary})", metadata={"attempts": attempts}
        )


_SHUTDOWN_MESSAGE = "the gateway is shutting down and ended this request; send it again"


def _pass_through(err: ProviderRejected, cand: Candidate) -> TokenmuxError:
    """A provider's refusal of the request itself, translated to our error with the provider's status."""
    out = TokenmuxError(f"{cand.endpoint.provider} rejected the request: {err.message}", param=err.param)
    out.status = err.upstream_status
    out.type = "invalid_request_error" if err.upstream_status < 500 else "upstream_error"
    out.code = err.upstream_type or "provider_rejected"
    return out
