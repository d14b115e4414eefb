"""Reading a JSON request body within the gateway's bounds, as it arrives.

The body is claimed from the process's ``BodyBudget`` before its bytes are read: all of its
``Content-Length`` at once, or step by step as a chunked body grows. Each chunk is fed to a ``JsonShape``
as it comes, so a body nested too deep or holding too many values is refused after its first few hundred
kB, and no step works on more than one chunk: the event loop never spends long on one body however large
(``protocols/json_limits.py``). The decoder need not look at the structure again.
"""

from __future__ import annotations

from tokenmux.asgi import Receive, Scope, client_gone, header
from tokenmux.errors import PayloadTooLarge
from tokenmux.protocols.json_limits import JsonShape
from tokenmux.server.body_budget import BodyClaim

# A chunked body (no Content-Length) is claimed this much ahead of what has arrived.
CHUNKED_CLAIM_STEP = 1024 * 1024


async def read_json_body(
    scope: Scope, receive: Receive, *, limit: int, claim: BodyClaim, shape: JsonShape
) -> bytes:
    """The whole body, claimed from the budget before it is read and shape-checked as it arrives.

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
        shape.feed(chunk)
        parts.append(chunk)
    if len(parts) == 1:
        return parts[0]
    body = b"".join(parts)
    parts.clear()
    return body
