"""Fits the byte bound left open, decided by a count that runs in short slices on the event loop while the
request may already be on its way (README "Routing", step 3).

A plan built for serving (``Router.plan_open``) keeps every endpoint whose fit neither the byte bound nor
the chunk-count cache can settle, and marks it with one ``OpenFits`` shared by the request's open
endpoints. The attempt loop then:

- sends the first attempt at once when the best-ranked endpoint is open, and starts the count beside it
  (a provider refuses a prompt longer than its context, at no cost, before generating anything);
- before any later attempt at an open endpoint, waits for the count and skips the endpoint when the prompt
  does not fit it, so after the first attempt nothing goes where the count says it cannot fit;
- takes a refusal of an early attempt as the prompt's size, and moves on, when the count confirms that
  the prompt did not fit there (any other refusal goes back to the client, as always);
- stops the count once an answer has begun: then nobody needs it.

The count runs on the event loop in slices of one chunk (``tokens.CHUNK_CHARS``, well under a millisecond
of tokenizing), yielding to every other task between slices: the loop never waits on it for longer than
a slice, with no thread to hand the GIL to and back (a worker thread holding the GIL in a loop makes the
loop wait up to the interpreter's switch interval, 5 ms, each time it wants the GIL back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from tokenmux.routing.fit import MIN_OUTPUT_RESERVE, FitResult, PromptSize, check_fit

if TYPE_CHECKING:
    from tokenmux.catalog.model import Endpoint
    from tokenmux.errors import TokenmuxError

# Chunks tokenized between two yields to the event loop.
SLICE_CHUNKS = 1


class Planned(Protocol):
    """What ``too_large`` reads of a plan's candidate (``router.Candidate``)."""

    endpoint: Endpoint
    open_fit: OpenFits | None


class OpenFits:
    """Whether a request's prompt fits each endpoint its plan left open, once counted."""

    __slots__ = ("_empty_error", "_endpoints", "_max_output", "_results", "_size", "_task")

    def __init__(
        self,
        size: PromptSize,
        max_output: int | None,
        endpoints: Sequence[tuple[Endpoint, str]],
        empty_error: Callable[[list[tuple[Endpoint, FitResult]]], TokenmuxError],
    ) -> None:
        self._size = size
        self._max_output = max_output
        self._endpoints = tuple(endpoints)  # (endpoint, tokenizer family) of every open endpoint
        # The error the plan is refused with when no endpoint fits, given the fits that failed.
        self._empty_error = empty_error
        self._task: asyncio.Future[dict[str, FitResult]] | None = None
        self._results: dict[str, FitResult] | None = None  # by endpoint key, once counted

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(ep for ep, _ in self._endpoints)

    @property
    def started(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        """Start the count (a task on the event loop) unless it is under way."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._count())
            self._task.add_done_callback(self._counted)

    def known(self, endpoint: Endpoint) -> bool | None:
        """Whether the prompt fits ``endpoint``, or None while it is being counted."""
        results = self._results
        return None if results is None else results[endpoint.key].fits

    async def fits(self, endpoint: Endpoint) -> bool:
        """Whether the prompt fits ``endpoint``, counting it (off the loop) if that is not done yet."""
        if self._results is None:
            self.start()
            assert self._task is not None
            self._results = await self._task
        return self._results[endpoint.key].fits

    def stop(self) -> None:
        """Nobody needs the answer any more: the count ends before its next slice."""
        if self._results is None:
            self._size.stop_counting()
            if self._task is not None:
                self._task.cancel()

    def too_large(self, plan: Sequence[Planned]) -> TokenmuxError | None:
        """When every candidate of ``plan`` is open and the count found that the prompt fits none of
        them, the error the plan would have been refused with had the prompt been counted first."""
        results = self._results
        if results is None or any(c.open_fit is not self or results[c.endpoint.key].fits for c in plan):
            return None
        return self._empty_error([(ep, results[ep.key]) for ep, _ in self._endpoints])

    async def _count(self) -> dict[str, FitResult]:
        """Every open endpoint's fit (one count of the prompt serves them all), a slice at a time."""
        size, max_output = self._size, self._max_output
        reserve = MIN_OUTPUT_RESERVE if max_output is None else max_output
        results = {}
        for ep, family in self._endpoints:
            while size.within_after(family, ep.context_length - reserve, SLICE_CHUNKS) is None:
                await asyncio.sleep(0)  # every other ready task runs before the next slice
            results[ep.key] = check_fit(size, ep, max_output, family)  # answered: no more counting
        return results

    def _counted(self, task: asyncio.Future[dict[str, FitResult]]) -> None:
        # Keeps the answer for ``known``; a count stopped or failed is retrieved here so that it is not
        # reported as never retrieved (``fits`` raises it to whoever awaits it).
        if not task.cancelled() and task.exception() is None:
            self._results = task.result()
