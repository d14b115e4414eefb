"""Provider credentials never leave an adapter in what it says: the one place upstream text is scrubbed.

Everything an adapter raises is an ``UpstreamError`` whose strings may come from the provider: its error
message, a snippet of an answer that was not the JSON expected, a stream event that could not be read. A
provider that echoes the request (a wrong ``base_url`` pointing at a debugging endpoint, a proxy's or a
WAF's error page) echoes our key in them. Whatever the path, the error passes ``RedactedProvider`` on its
way out of the adapter, and there its strings are scrubbed of the provider's credentials before any of
them reaches the relay, and so a client, a log line or a stored record. Chained exceptions, which a
traceback would print, are dropped.

What is scrubbed (``credentials_of``): the provider's key, the values of configured headers whose names say
they carry a credential (and the token of an ``Authorization: <scheme> <token>`` value), and the password of
the base URL. Matching ignores case (an echo may change it), and any piece of a credential of 12 characters
or more is scrubbed too: a snippet cut off after 300 characters may end in the middle of the key (a shorter
piece of a random key gives nothing away, and shorter pieces would match words of keys that hold words). Values
shorter than 6 characters are placeholders (``EMPTY``, ``none``), not secrets, and are left alone.

A successful answer passes untouched: the wrapper costs one try block per call, and one frame per batch of
a stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from tokenmux.errors import ProviderRejected, UpstreamError
from tokenmux.providers.base import CallContext, Provider, ProviderConfig
from tokenmux.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResult, StreamEvent

MASK = "***"
PIECE_CHARS = 12  # a piece of a credential this long is scrubbed wherever it appears
MIN_SECRET_CHARS = 6
_CREDENTIAL_HEADER_WORDS = ("auth", "key", "token", "secret", "cookie", "signature", "password")

T = TypeVar("T")
E = TypeVar("E", bound=UpstreamError)


def credentials_of(config: ProviderConfig) -> list[str]:
    """Every credential a provider's configuration sends upstream."""
    found = [config.api_key] if config.api_key else []
    for name, value in config.headers:
        if any(word in name.lower() for word in _CREDENTIAL_HEADER_WORDS):
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token.strip() and scheme.isalpha():
                found.append(token.strip())
    password = urlsplit(config.base_url).password
    if password:
        found.append(password)
    return found


class Redactor:
    """Scrubs given secrets out of text, ignoring case, pieces of them included."""

    __slots__ = ("_secrets",)

    def __init__(self, secrets: Iterable[str]) -> None:
        kept = {s.lower() for s in secrets if len(s) >= MIN_SECRET_CHARS}
        self._secrets = sorted(kept, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._secrets)

    def scrub(self, text: str) -> str:
        if not text or not self._secrets:
            return text
        lowered = text.lower()
        spans: list[tuple[int, int]] = []
        for secret in self._secrets:
            spans.extend(_occurrences(lowered, secret))
        if not spans:
            return text
        out = []
        done = 0
        for start, end in _merged(spans):
            out.append(text[done:start])
            out.append(MASK)
            done = end
        out.append(text[done:])
        return "".join(out)

    def scrub_error(self, err: E) -> E:
        """The same error with every string it carries scrubbed and its chained causes dropped."""
        err.message = self.scrub(err.message)
        err.args = (err.message,)
        if err.param is not None:
            err.param = self.scrub(err.param)
        if isinstance(err, ProviderRejected) and err.upstream_type is not None:
            err.upstream_type = self.scrub(err.upstream_type)
        err.__cause__ = None
        err.__context__ = None
        err.__suppress_context__ = True
        return err


def _occurrences(text: str, secret: str) -> list[tuple[int, int]]:
    """Spans of ``text`` that are the secret or a piece of it at least ``PIECE_CHARS`` long."""
    if len(secret) <= PIECE_CHARS:
        spans = []
        start = text.find(secret)
        while start != -1:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
        return spans
    spans = []
    for offset in range(len(secret) - PIECE_CHARS + 1):
        gram = secret[offset : offset + PIECE_CHARS]
        at = text.find(gram)
        while at != -1:
            # Grow the match both ways as far as text and secret agree.
            begin, end, s_begin, s_end = at, at + PIECE_CHARS, offset, offset + PIECE_CHARS
            while begin > 0 and s_begin > 0 and text[begin - 1] == secret[s_begin - 1]:
                begin -= 1
                s_begin -= 1
            while end < len(text) and s_end < len(secret) and text[end] == secret[s_end]:
                end += 1
                s_end += 1
            spans.append((begin, end))
            at = text.find(gram, at + 1)
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        last_start, last_end = merged[-1]
        if start <= last_end:
            merged[-1] = (last_start, max(last_end, end))
        else:
            merged.append((start, end))
    return merged


class RedactedProvider:
    """An adapter whose errors leave it scrubbed of its credentials (``build_provider`` wraps each one).

    It offers the optional stream forms (``stream_batches``, ``stream_chunks``) exactly when the adapter
    does, so the relay picks the same way of streaming as it would for the adapter itself; likewise
    ``embed``."""

    def __init__(self, adapter: Provider, redactor: Redactor) -> None:
        self.adapter = adapter
        self.config = adapter.config
        self.kind = adapter.kind
        self._redactor = redactor
        for optional in ("stream_batches", "stream_chunks"):
            form = getattr(adapter, optional, None)
            if form is not None:
                setattr(self, optional, self._redacted_form(form))
        embed = getattr(adapter, "embed", None)
        if embed is not None:

            async def redacted_embed(request: EmbeddingRequest, ctx: CallContext) -> EmbeddingResult:
                try:
                    result: EmbeddingResult = await embed(request, ctx)
                except UpstreamError as err:
                    raise redactor.scrub_error(err) from None
                return result

            self.embed = redacted_embed

    async def complete(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        try:
            return await self.adapter.complete(request, ctx)
        except UpstreamError as err:
            raise self._redactor.scrub_error(err) from None

    def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[StreamEvent]:
        return _RedactedStream(self.adapter.stream(request, ctx), self._redactor)

    def _redacted_form(self, form: Any) -> Any:
        redactor = self._redactor

        def redacted(request: ChatRequest, ctx: CallContext) -> AsyncIterator[Any]:
            return _RedactedStream(form(request, ctx), redactor)

        return redacted

    async def aclose(self) -> None:
        await self.adapter.aclose()

    def __repr__(self) -> str:
        return f"RedactedProvider({self.adapter.config!r})"


class _RedactedStream(AsyncIterator[T]):
    __slots__ = ("_items", "_redactor")

    def __init__(self, items: AsyncIterator[T], redactor: Redactor) -> None:
        self._items = items
        self._redactor = redactor

    def __aiter__(self) -> _RedactedStream[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self._items.__anext__()
        except UpstreamError as err:
            raise self._redactor.scrub_error(err) from None

    async def aclose(self) -> None:
        aclose = getattr(self._items, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except UpstreamError as err:
                raise self._redactor.scrub_error(err) from None
