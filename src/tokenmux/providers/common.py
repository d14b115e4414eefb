"""Small pieces every adapter needs the same way: error texts, snippets of answers, and stream failures.

Credentials are scrubbed from what adapters say in one place for all of them: ``redaction.py``."""

from __future__ import annotations

from typing import Any, NoReturn

import msgspec

from tokenmux.errors import ProviderMalformed, StreamInterrupted, UpstreamError
from tokenmux.providers.transport import HttpRequest, HttpResponse, Transport

_decode = msgspec.json.Decoder().decode


def fail_stream(error: UpstreamError, started: bool) -> NoReturn:
    """Raise ``error``, or, once output has begun, ``StreamInterrupted`` caused by it: after the first
    byte nothing may be retried, so the error must no longer look retryable."""
    if started:
        raise StreamInterrupted(f"the stream broke after output had begun: {error.message}") from error
    raise error


def json_object(body: bytes, status: int) -> dict[str, Any]:
    """A 2xx answer's body as a JSON object; ``ProviderMalformed`` when it is not one."""
    try:
        data = _decode(body)
    except msgspec.DecodeError:
        raise ProviderMalformed(
            f"the provider answered {status} with a body that is not JSON: {snippet(body)}"
        ) from None
    if not isinstance(data, dict):
        raise ProviderMalformed(
            f"the provider answered {status} with JSON that is not an object: {snippet(body)}"
        )
    return data


def snippet(body: bytes, limit: int = 300) -> str:
    """The start of an unreadable answer, for the error message."""
    text = body[:limit].decode("utf-8", "replace").strip()
    return text + "…" if len(body) > limit else text


async def send_and_read(transport: Transport, request: HttpRequest) -> tuple[HttpResponse, bytes]:
    """Send a non-streamed request and read its whole answer; the connection is released either way."""
    response = await transport.send(request)
    try:
        return response, await response.read()
    finally:
        await response.aclose()


def status_message(response: HttpResponse, body: bytes, message: str | None) -> str:
    """What to say of an error answer: the provider's own message, else what its status and body show."""
    if 300 <= response.status < 400:
        return f"redirected to {response.header('location')}; check the provider's base_url"
    if message is None:
        return f"HTTP {response.status}: {snippet(body) or 'empty body'}"
    return message
