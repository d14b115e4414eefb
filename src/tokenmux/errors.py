"""The one exception tree of tokenmux, and the only place that maps errors to HTTP statuses.

    TokenmuxError                       status  type
    ├── ClientError                     4xx: the request cannot be served as sent
    │   ├── InvalidRequest              400     invalid_request_error
    │   ├── AuthenticationFailed        401     authentication_error
    │   ├── InsufficientCredit          402     insufficient_credit
    │   ├── PermissionDenied            403     permission_error
    │   ├── NotFound                    404     not_found_error        (route, generation)
    │   │   └── ModelNotFound           404     not_found_error
    │   ├── PayloadTooLarge             413     request_too_large
    │   ├── HeadersTooLarge             431     invalid_request_error  (too many or too long headers)
    │   └── RateLimited                 429     rate_limit_error       (retry_after)
    ├── UpstreamError                   one attempt at one provider went wrong
    │   ├── ProviderUnreachable         could not reach the provider (connect refused, reset)
    │   │   └── ProviderTimeout         no answer in time
    │   ├── ProviderRejected            the provider answered with an error status (status, retry_after)
    │   ├── ProviderMalformed           the provider answered something we cannot read
    │   └── StreamInterrupted           the stream broke after the client had its first byte
    ├── AllAttemptsFailed               502     upstream_error         (metadata: every attempt)
    ├── NoEndpointAvailable             503     service_unavailable    (every endpoint cooling down)
    ├── DatabaseUnavailable             503     service_unavailable    (a key cannot be checked now)
    └── DeadlineExceeded                504     timeout

``UpstreamError`` subclasses describe one attempt; they are never shown to a client as they are. The relay
turns a run of them into ``AllAttemptsFailed`` (or passes a provider's non-retryable 4xx through as a
``ProviderRejected`` carrying the provider's status). Messages say what went wrong and how to fix it, and
never contain a key or an ``Authorization`` header.
"""

from __future__ import annotations

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
        return [(b"retry-after", str(max(1, round(self.retry_after))).encode())]


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


class NoEndpointAvailable(TokenmuxError):
    status = 503
    type = "service_unavailable"
    code = "no_endpoint_available"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after

    def headers(self) -> list[tuple[bytes, bytes]]:
        if self.retry_after is None:
            return []
        return [(b"retry-after", str(max(1, round(self.retry_after))).encode())]


class DatabaseUnavailable(TokenmuxError):
    status = 503
    type = "service_unavailable"
    code = "database_unavailable"

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"retry-after", b"5")]


class DeadlineExceeded(TokenmuxError):
    status = 504
    type = "timeout"
    code = "deadline_exceeded"


def is_retryable_status(status: int) -> bool:
    """Statuses that mean "this provider, now" rather than "this request": try the next endpoint."""
    return status in (408, 409, 429) or status >= 500
