"""What to do after an attempt failed: one pure function of the outcome, tested on its own.

The attempt loop (``tokenmux.attempts``) asks it about every failure, before and after the client has
seen content, with the time left of the request's deadline; it decides nothing of its own.
"""

from __future__ import annotations

import enum

from tokenmux.errors import DeadlineTimeout, ProviderRejected, UpstreamError


class Next(enum.Enum):
    TRY_NEXT = "try_next"  # move to the next candidate endpoint (or fallback model)
    RETURN_ERROR = "return_error"  # the provider refused the request itself: tell the client
    END_STREAM = "end_stream"  # the client already has content: end the stream with an error event
    GIVE_UP = "give_up"  # the request's deadline passed: no time for another endpoint


# Provider statuses that are the gateway's problem, not the client's: our credentials or our catalog are
# wrong for that provider, so another provider may well serve the request.
_GATEWAY_SIDE_STATUSES = frozenset({401, 402, 403, 404})


def after_failure(
    error: UpstreamError, *, committed: bool, time_left_s: float, size_refused: bool = False
) -> Next:
    """Decide after a failed attempt. ``committed``: the client has received content from this attempt;
    ``time_left_s``: what is left of the request's deadline (up to its first byte); ``size_refused``: the
    attempt was sent before the prompt was counted, and the count says it did not fit that endpoint.

    After the first byte nothing is retried. Before it, a non-retryable 4xx that is about the request
    (400, 413, 422, ...) goes back to the client: another provider would refuse it too. Every other
    failure (connect error, timeout, 408, 409, 429, 5xx, 529, a malformed answer, a first stream event that
    is an error, our own credentials refused) moves on to the next endpoint while the deadline allows, as
    does a refusal explained by the prompt's size (``size_refused``): an endpoint with a larger context
    may take it.
    """
    if committed:
        return Next.END_STREAM
    if (
        not size_refused
        and isinstance(error, ProviderRejected)
        and not error.retryable
        and error.upstream_status not in _GATEWAY_SIDE_STATUSES
    ):
        return Next.RETURN_ERROR
    if time_left_s <= 0 or isinstance(error, DeadlineTimeout):
        return Next.GIVE_UP
    return Next.TRY_NEXT
