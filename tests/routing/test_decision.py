from __future__ import annotations

import pytest

from tokenmux.errors import (
    ProviderMalformed,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnreachable,
    StreamInterrupted,
    UpstreamError,
)
from tokenmux.routing.decision import Next, after_failure


def rejected(status: int) -> ProviderRejected:
    return ProviderRejected("no", upstream_status=status)


@pytest.mark.parametrize(
    "error",
    [
        ProviderUnreachable("refused"),
        ProviderTimeout("slow"),
        ProviderMalformed("garbage"),
        rejected(408),
        rejected(409),
        rejected(429),
        rejected(500),
        rejected(502),
        rejected(503),
        rejected(529),
        # Our own credentials or catalog are wrong for that provider: another one may serve.
        rejected(401),
        rejected(403),
        rejected(404),
    ],
)
def test_provider_failures_before_the_first_byte_try_the_next_endpoint(error: UpstreamError) -> None:
    assert after_failure(error, committed=False) is Next.TRY_NEXT


@pytest.mark.parametrize("status", [400, 413, 422])
def test_refusals_of_the_request_itself_go_back_to_the_client(status: int) -> None:
    assert after_failure(rejected(status), committed=False) is Next.RETURN_ERROR


@pytest.mark.parametrize("error", [rejected(500), ProviderTimeout("slow"), StreamInterrupted("cut")])
def test_nothing_is_retried_after_the_first_byte(error: UpstreamError) -> None:
    assert after_failure(error, committed=True) is Next.END_STREAM
