"""The one exception tree of tokenmux, and the only place that maps errors to HTTP statuses.

    TokenmuxError                       status  type
    ├── ClientError                     4xx: the request cannot be served as sent
    │   ├── InvalidRequest              400     invalid_request_error
    │   ├── AuthenticationFailed        401     authentication_error
    │   ├── InsufficientCredit          402     insufficient_credit
    │   ├── PermissionDenied            403     permission_error
    │   ├── NotFound                    404     not_found_error        (route, generation)
    │   │   └── ModelNotFound           404     not_found_error
    │   ├── MethodNotAllowed            405     invalid_request_error  (allow: the route's methods)
    │   ├── PayloadTooLarge             413     request_too_large
    │   ├── HeadersTooLarge             431     invalid_request_error  (too many or too long headers)
    │   └── RateLimited                 429     rate_limit_error       (retry_after)
    ├── UpstreamError                   one attempt at one provider went wrong
    │   ├── ProviderUnreachable         could not reach the provider (connect refused, reset)
    │   │   └── ProviderTimeout         no answer in time
    │   │       └── DeadlineTimeout     the request's deadline passed while waiting on this attempt
    │   ├── ProviderRejected            the provider answered with an error status (status, retry_after)
    │   ├── ProviderMalformed           the provider answered something we cannot read
    │   └── StreamInterrupted           the stream broke after the client had its first byte
    ├── AllAttemptsFailed               502     upstream_error         (metadata: every attempt)
    ├── DatabaseUnavailable             503     service_unavailable    (a key cannot be checked now)
    ├── ShuttingDown                    503     service_unavailable    (the drain after SIGTERM ended)
    ├── GatewayBusy                     503     service_unavailable    (request bodies over their budget)
    └── DeadlineExceeded                504     timeout

Errors of the gateway's own parts. They never reach a client as they are: each is caught at one place
and either stops the start (configuration, catalog) or becomes a ``TokenmuxError`` or a fallback.

    Exception
    ├── ConfigError                     a setting is missing or wrong (at start: the message names the fix)
    ├── CatalogError (ValueError)       catalog data that cannot be used (at start)
    ├── StoreError                      a database operation failed
    │   ├── StoreUnavailable            the database cannot be reached now (a key lookup: DatabaseUnavailable)
    │   └── KeyNameTaken                an active key has this name (the key API: InvalidRequest)
    ├── RedisUnavailable                Redis cannot be used now (limits and health fall back to this process)
    ├── ReplyError                      Redis answered a command with an error
    ├── FormTooLarge                    a page's form body is too large (the page: 413)
    └── CountStopped                    a prompt's token count was stopped: nobody needs its answer any more

``UpstreamError`` subclasses describe one attempt; they are never shown to a client as they are. The
attempt loop (``tokenmux.attempts``) turns a run of them into ``AllAttemptsFailed`` or ``DeadlineExceeded``
(or passes a provider's non-retryable 4xx through as a ``TokenmuxError`` carrying the provider's status).
Messages say what went wrong and how to fix it, and never contain a key or an ``Authorization`` header.
"""

from __future__ import annotations

import math
from typing import Any


class TokenmuxError(Exception):
    status: int = 500
    type: str = "api_error"
    code: str | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        self.metadata = metadata

    def headers(self) -> list[tuple[bytes, bytes]]:
        """Extra response headers this error carries (``Retry-After``)."""
        return []


class ClientError(TokenmuxError):
    status = 400
    type = "invalid_request_error"


class InvalidRequest(ClientError):
    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(ClientError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class InsufficientCredit(ClientError):
    status = 402
    type = "insufficient_credit"
    code = "insufficient_credit"


class PermissionDenied(ClientError):
    status = 403
    type = "permission_error"
    code = "model_not_allowed"


class NotFound(ClientError):
    status = 404
    type = "not_found_error"
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class MethodNotAllowed(ClientError):
    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"

    def __init__(self, message: str, *, allow: list[str], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.allow = allow

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"allow", ", ".join(self.allow).encode())]


class PayloadTooLarge(ClientError):
    status = 413
    type = "request_too_large"
    code = "request_too_large"


class HeadersTooLarge(ClientError):
    status = 431
    type = "invalid_request_error"
    code = "request_headers_too_large"


class RateLimited(ClientError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: float, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after

    def headers(self) -> list[tuple[bytes, bytes]]:
        # Retry-After is whole seconds (at least 1, so no client spins); retry-after-ms, which OpenAI's and
        # Anthropic's SDKs read first, gives a sub-second wait as it is.
        return [
            (b"retry-after", str(max(1, math.ceil(self.retry_after - 1e-9))).encode()),
            (b"retry-after-ms", str(max(1, math.ceil(self.retry_after * 1000))).encode()),
        ]


class UpstreamError(TokenmuxError):
    """One attempt at one provider failed. ``error_class`` is the short name stored in the request log."""

    status = 502
    type = "upstream_error"
    error_class = "upstream_error"
    retryable = True


class ProviderUnreachable(UpstreamError):
    error_class = "unreachable"


class ProviderTimeout(ProviderUnreachable):
    error_class = "timeout"


class DeadlineTimeout(ProviderTimeout):
    """The request's deadline (``request_timeout_s``, one for all its attempts) passed while waiting on
    this attempt: no other endpoint is tried after it."""


class ProviderRejected(UpstreamError):
    """The provider answered with an error status. Retryable when the status says the provider (not the
    request) is at fault: 408, 409, 429, 5xx, 529."""

    error_class = "rejected"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int,
        retry_after: float | None = None,
        upstream_type: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message, param=param)
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.upstream_type = upstream_type
        self.retryable = is_retryable_status(upstream_status)
        if upstream_status == 429:
            self.error_class = "rate_limited"
        elif upstream_status >= 500:
            self.error_class = "server_error"
        elif not self.retryable:
            self.error_class = "client_error"


class ProviderMalformed(UpstreamError):
    error_class = "malformed"


class StreamInterrupted(UpstreamError):
    error_class = "stream_interrupted"
    retryable = False


class AllAttemptsFailed(TokenmuxError):
    status = 502
    type = "upstream_error"
    code = "all_attempts_failed"


class DatabaseUnavailable(TokenmuxError):
    status = 503
    type = "service_unavailable"
    code = "database_unavailable"

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", b"5")]


class ShuttingDown(TokenmuxError):
    """The drain period after SIGTERM ended with the request still running (``gateway.drain_s``)."""

    status = 503
    type = "service_unavailable"
    code = "shutting_down"

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", b"1")]  # another replica, or this one restarted, takes it


class GatewayBusy(TokenmuxError):
    """The gateway holds as many request bodies as it may (``server/body_budget.py``): retry in a moment."""

    status = 503
    type = "service_unavailable"
    code = "gateway_busy"

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", b"1")]


class DeadlineExceeded(TokenmuxError):
    status = 504
    type = "timeout"
    code = "deadline_exceeded"


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the setting and the fix, on one line."""


class CatalogError(ValueError):
    """Catalog data that cannot be used as it is. Raised at start-up, never while serving."""


class StoreError(Exception):
    """A database operation failed; the message says what and, where possible, how to fix it."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or written now (down, locked, disk full); retrying may succeed."""


class KeyNameTaken(StoreError):
    """A key with this name exists and is not revoked."""


class RedisUnavailable(Exception):
    """Redis cannot be used now; the message says why (never with a password in it)."""


class ReplyError(Exception):
    """Redis answered the command with an error (``-ERR ...``, ``-NOSCRIPT ...``)."""


class FormTooLarge(Exception):
    """A form posted to a page is larger than a page accepts."""


class CountStopped(Exception):
    """A prompt's token count was stopped (``tokens.RunningCount.stop``) before it answered, because the
    request it was for no longer needs it; it ends the count in the worker thread and reaches no one."""


def is_retryable_status(status: int) -> bool:
    """Statuses that mean "this provider, now" rather than "this request": try the next endpoint."""
    return status in (408, 409, 429) or status >= 500
