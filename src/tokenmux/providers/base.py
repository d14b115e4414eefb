"""The provider contract: what routing and the server may assume of every upstream adapter.

An adapter knows one wire format. It turns an internal ``ChatRequest`` into that format, sends it through a
``Transport``, and turns the answer back into a ``ChatResponse`` or a sequence of ``StreamEvent``. It raises
only ``UpstreamError`` subclasses (see ``errors.py``): ``ProviderUnreachable``/``ProviderTimeout`` when the
provider could not be reached or did not answer, ``ProviderRejected`` when it answered with an error status,
``ProviderMalformed`` when its answer could not be read, ``StreamInterrupted`` when a stream broke after its
first event. Lower-layer errors are translated in one place per adapter.

A new provider is one new module with a class registered in ``providers/__init__.py`` plus catalog data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from tokenmux.catalog.model import Endpoint
from tokenmux.types import ChatRequest, ChatResponse, StreamEvent


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One configured provider (from the YAML ``providers:`` section and the environment)."""

    slug: str
    kind: str
    base_url: str
    api_key: str | None = None
    api_version: str | None = None  # Azure
    headers: tuple[tuple[str, str], ...] = ()  # extra static headers the operator configured
    timeout_s: float = 600.0
    # Azure: endpoint upstream model name -> deployment name (defaults to the upstream model name).
    deployments: dict[str, str] = field(default_factory=dict)

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
        """The wire format (a key of ``PROVIDER_KINDS``); adapters declare it as a class attribute."""
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
