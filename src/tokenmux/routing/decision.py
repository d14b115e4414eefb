"""What to do after an attempt failed: one pure function, tested on its own."""

from __future__ import annotations

import enum

from tokenmux.errors import ProviderRejected, UpstreamError


class Next(enum.Enum):
    TRY_NEXT = "try_next"  # move to the next candidate endpoint (or fallback model)
    RETURN_ERROR = "return_error"  # the provider refused the request itself: tell the client
    END_STREAM = "end_stream"  # the client already has bytes: end the stream with an error event


# Provider statuses that are the gateway's problem, not the client's: our credentials or our catalog are
# wrong for that provider, so another provider may well serve the request.
_GATEWAY_SIDE_STATUSES = frozenset({401, 402, 403, 404})


def after_failure(error: UpstreamError, *, committed: bool) -> Next:
    """Decide after a failed attempt. ``committed``: the client has received content from this attempt.

    Before the first byte every failure that is the provider's (connect error, timeout, 408, 409, 429, 5xx,
    529, a malformed answer, a first stream event that is an error) moves on to the next endpoint. A
    non-retryable 4xx that is about the request (400, 413, 422, ...) goes back to the client: another
    provider would refuse it too. After the first byte nothing is retried.
    """
    if committed:
        return Next.END_STREAM
    if isinstance(error, ProviderRejected) and not error.retryable:
        if error.upstream_status in _GATEWAY_SIDE_STATUSES:
            return Next.TRY_NEXT
        return Next.RETURN_ERROR
    return Next.TRY_NEXT
