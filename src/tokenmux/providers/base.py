"""The provider contract: what routing and the server may assume of every upstream adapter.

An adapter knows one wire format. It turns an internal ``ChatRequest`` into that format, sends it through a
``Transport``, and turns the answer back into a ``ChatResponse`` or a sequence of ``StreamEvent``. It raises
only ``UpstreamError`` subclasses (see ``errors.py``): ``ProviderUnreachable``/``ProviderTimeout`` when the
provider could not be reached or did not answer, ``ProviderRejected`` when it answered with an error status,
``ProviderMalformed`` when its answer could not be read, ``StreamInterrupted`` when a stream broke after its
first event. Lower-layer errors are translated in one place per adapter.

The contract is ``Provider`` (``complete``, ``stream``, ``aclose``). Two faster ways to stream are
optional, each its own protocol below; the attempt loop uses one when the adapter has it
(``attempts.delivery``, found by attribute, which costs a tenth of an ``isinstance`` on a runtime-checkable
protocol, once per stream):

- ``BatchedStreams.stream_batches``: the same events as ``stream``, in the groups that arrived together
  (one list per network read), so that each group reaches the client in one write;
- ``ChunkStreams.stream_chunks``: for an adapter whose wire format is Chat Completions, the upstream chunks
  themselves (``protocols.openai_chunks.PassThroughChunk``), passed to a Chat Completions client without
  being decoded into events and encoded again.

Both follow ``stream``'s rules: errors before the first batch are raised from the first ``__anext__``,
closing the iterator cancels the upstream call. A batch that ends the stream with nothing left to wait for
(its end arrived with it) may be a ``FinalBatch``: the relay then sends it with the answer's end.

An adapter whose provider serves embeddings also has ``Embedder.embed`` (OpenAI, Azure, OpenAI-compatible,
Google); the embeddings route takes only endpoints whose adapter has it.

A new provider kind is one new module in this package plus catalog data: the module defines the adapter
(and, when its section of ``providers:`` takes settings of its own, a ``ProviderSettings`` subclass) and
registers them with ``registry.register`` (see ``registry.py``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypeVar

import msgspec

from tokenmux.catalog.model import Endpoint
from tokenmux.protocols.openai_chunks import PassThroughChunk
from tokenmux.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResult, StreamEvent

T = TypeVar("T")


class ProviderSettings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A provider's section of the configuration's ``providers:``, as written: what every kind takes.
    A kind with settings of its own subclasses it (``AzureSettings``); unknown keys are refused."""

    kind: str | None = None  # the adapter; default: the catalog's kind for the slug, else openai-compatible
    base_url: str | None = None  # default: the catalog's public URL for the slug
    api_key: str | None = None  # default: the provider's environment variable (OPENAI_API_KEY, ...)
    headers: dict[str, str] = {}  # extra static headers sent upstream
    timeout_s: Annotated[float, msgspec.Meta(gt=0)] | None = None  # per attempt; default gateway's


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One configured provider: its section of ``providers:`` completed from the catalog and the
    environment (the configuration does it, ``config/providers.py``)."""

    slug: str
    kind: str
    base_url: str
    api_key: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # extra static headers the operator configured
    timeout_s: float = 600.0
    # The section as its kind reads it (a ProviderSettings subclass for a kind with settings of its own).
    settings: ProviderSettings = field(default_factory=ProviderSettings)

    def __repr__(self) -> str:  # never print the key
        return f"ProviderConfig(slug={self.slug!r}, kind={self.kind!r}, base_url={self.base_url!r})"


@dataclass(slots=True)
class CallContext:
    """Per-attempt facts an adapter needs besides the request."""

    endpoint: Endpoint
    params: dict[str, Any]  # the request's params after routing dropped unsupported ones
    timeout_s: float  # what is left of the request's deadline


class Provider(Protocol):
    @property
    def kind(self) -> str:
        """The wire format (a name in ``registry.provider_kinds()``); adapters declare it as a class attribute."""
        ...

    config: ProviderConfig

    async def complete(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        """Send a non-streamed request and return the whole answer."""
        ...

    def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[StreamEvent]:
        """Send a streamed request. Iterating waits for the provider; errors before the first event are
        raised from the first ``__anext__``; closing the iterator (``aclose``) cancels the upstream call."""
        ...

    async def aclose(self) -> None: ...


class FinalBatch(list[T]):
    """The last batch of a stream whose end arrived with it: the iteration stops after it without waiting."""


class BatchedStreams(Protocol):
    """Optional: ``stream``'s events in the groups they arrived in, one list per network read."""

    def stream_batches(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[list[StreamEvent]]: ...


class ChunkStreams(Protocol):
    """Optional, for a Chat Completions adapter: its stream as pass-through chunks, grouped as
    ``stream_batches`` groups its events."""

    def stream_chunks(
        self, request: ChatRequest, ctx: CallContext
    ) -> AsyncIterator[list[PassThroughChunk]]: ...


class Embedder(Protocol):
    """Optional: the vectors of an embeddings request, one per input and in their order; raises
    ``UpstreamError`` subclasses as ``complete`` does."""

    async def embed(self, request: EmbeddingRequest, ctx: CallContext) -> EmbeddingResult: ...
