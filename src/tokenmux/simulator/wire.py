"""The contract between the simulator's HTTP layer and one provider wire format.

The app does everything that is the same for every provider: routing, the request log, the fate of a
request (errors, outages, hangs, malformed answers), pacing and dropped connections. A wire format knows
its own requests, error bodies, answers and streams, and nothing of timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from tokenmux.asgi import Scope
from tokenmux.simulator.answer import Answer, AnswerSpec

Headers = list[tuple[bytes, bytes]]


class RequestRejected(Exception):
    """The request cannot be answered as sent; rendered in the format's error shape."""

    def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


@dataclass(slots=True)
class StreamFrames:
    """A rendered stream: ``head`` goes out with the first token, ``steps`` one per token time (each a
    list of frames, one per choice that has a token then), ``tail`` after the last token."""

    head: list[bytes] = field(default_factory=list)
    steps: list[list[bytes]] = field(default_factory=list)
    tail: list[bytes] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class ReplyContext:
    """Facts about the reply that are not in the answer."""

    response_id: str
    created: int  # unix seconds
    model: str  # the model to report


class WireFormat(Protocol):
    name: str
    stream_content_type: bytes
    # The provider caches prompts unasked (OpenAI, Gemini); else only prompts marked for it (Anthropic's
    # cache_control, which the parsed spec's ``cache_ttl`` reports).
    implicit_prompt_cache: bool

    def check_access(self, scope: Scope) -> RequestRejected | None:
        """The rejection for a request without credentials (or other required headers), else None."""
        ...

    def parse(self, body: Any, path_model: str | None) -> AnswerSpec:
        """The request as an ``AnswerSpec``; raises ``RequestRejected`` for a request the provider
        would refuse."""
        ...

    def error_body(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> bytes:
        """An error in this format's shape."""
        ...

    def completion(self, answer: Answer, ctx: ReplyContext) -> bytes:
        """The body of a non-streamed answer."""
        ...

    def stream(self, answer: Answer, ctx: ReplyContext, spec: AnswerSpec) -> StreamFrames:
        """A streamed answer, framed."""
        ...

    def malformed_body(self) -> bytes:
        """A 200 body that no client can parse."""
        ...

    def malformed_frame(self) -> bytes:
        """A stream frame that no client can parse."""
        ...
