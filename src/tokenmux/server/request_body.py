"""Reading a JSON request body within the gateway's bounds, as it arrives.

The body is claimed from the process's ``BodyBudget`` before its bytes are read: all of its
``Content-Length`` at once, or step by step as a chunked body grows. Each chunk is fed to a ``JsonShape``
as it comes, so a body nested too deep or holding too many values is refused after its first few hundred
kB, and no step works on more than one chunk: the event loop never spends long on one body however large
(``protocols/json_limits.py``). The decoder need not look at the structure again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tokenmux.asgi import Receive, Scope, client_gone, header
from tokenmux.errors import PayloadTooLarge
from tokenmux.protocols.json_limits import JsonShape
from tokenmux.server.body_budget import BodyClaim
from tokenmux.server.off_loop import LARGE_BODY_BYTES, off_loop

T = TypeVar("T")

# A chunked body (no Content-Length) is claimed this much ahead of what has arrived.
CHUNKED_CLAIM_STEP = 1024 * 1024
# A body of known length above this is written into one buffer as its chunks arrive rather than joined at
# the end: joining tens of MB would hold the event loop for tens of ms in one piece. The buffer is made
# once this much has arrived and passed the shape check (making it touches all of its memory), so a
# pathological body, refused within its first few hundred kB, never has one.
FILL_IN_PLACE_BYTES = 1024 * 1024


async def read_request(
    scope: Scope,
    receive: Receive,
    decode: Callable[..., T],
    *args: object,
    limit: int,
    claim: BodyClaim,
    example: str,
) -> T:
    """``decode(body, *args)`` of the body read by ``read_json_body``; a large body is decoded in the
    large-request worker (``server/off_loop.py``), and only the decoded request lives on."""
    body = await read_json_body(scope, receive, limit=limit, claim=claim, shape=JsonShape(example))
    if len(body) > LARGE_BODY_BYTES:
        return await off_loop(decode, body, *args)
    return decode(body, *args)


async def read_json_body(
    scope: Scope, receive: Receive, *, limit: int, claim: BodyClaim, shape: JsonShape
) -> bytes | bytearray:
    """The whole body, claimed from the budget before it is read and shape-checked as it arrives (a
    ``bytearray`` when it was filled in place; the JSON decoders read either).

    Raises ``PayloadTooLarge`` (413) as soon as the body is known to exceed ``limit``, ``GatewayBusy``
    (503) when the budget has no room for it in time, and the shape's 400/413 for a pathological body.
    """
    declared = header(scope, b"content-length")
    if declared is not None:
        # The HTTP parser has refused a malformed Content-Length already.
        expected = int(declared)
        if expected > limit:
            raise PayloadTooLarge(
                f"the request body is {expected} bytes; this gateway accepts at most {limit}"
            )
        await claim.grow_to(expected)
    fill_in_place = declared is not None and expected > FILL_IN_PLACE_BYTES
    buffer: bytearray | None = None
    parts: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise client_gone()
        chunk: bytes = message.get("body", b"")
        more = bool(message.get("more_body"))
        if not chunk:
            continue
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body exceeds this gateway's limit of {limit} bytes")
        if size > claim.held:
            await claim.grow_to(min(limit, (size // CHUNKED_CLAIM_STEP + 1) * CHUNKED_CLAIM_STEP))
        if more or parts or buffer is not None:
            shape.feed(chunk)
        else:
            shape.feed_whole(chunk)  # the whole body in one piece, as nearly every body comes
        if buffer is not None:
            buffer[size - len(chunk) : size] = chunk
            continue
        parts.append(chunk)
        if fill_in_place and size > FILL_IN_PLACE_BYTES:
            buffer = bytearray(expected)
            buffer[:size] = b"".join(parts)
            parts.clear()
    if buffer is not None:
        del buffer[size:]  # nothing, unless the client sent less than it declared
        return buffer
    if len(parts) == 1:
        return parts[0]
    body = b"".join(parts)
    parts.clear()
    return body
