from __future__ import annotations

import pytest

from tokenmux.errors import (
    DeadlineTimeout,
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
    assert after_failure(error, committed=False, time_left_s=5.0) is Next.TRY_NEXT


@pytest.mark.parametrize("status", [400, 413, 422])
def test_refusals_of_the_request_itself_go_back_to_the_client(status: int) -> None:
    assert after_failure(rejected(status), committed=False, time_left_s=5.0) is Next.RETURN_ERROR


@pytest.mark.parametrize("error", [rejected(500), ProviderTimeout("slow"), StreamInterrupted("cut")])
def test_nothing_is_retried_after_the_first_byte(error: UpstreamError) -> None:
    assert after_failure(error, committed=True, time_left_s=5.0) is Next.END_STREAM
    assert after_failure(error, committed=True, time_left_s=0.0) is Next.END_STREAM


@pytest.mark.parametrize("error", [rejected(500), rejected(429), ProviderUnreachable("refused")])
def test_no_next_endpoint_once_the_deadline_has_passed(error: UpstreamError) -> None:
    assert after_failure(error, committed=False, time_left_s=0.0) is Next.GIVE_UP
    assert after_failure(error, committed=False, time_left_s=-1.0) is Next.GIVE_UP


def test_an_attempt_the_deadline_cut_ends_the_request() -> None:
    assert after_failure(DeadlineTimeout("late"), committed=False, time_left_s=0.001) is Next.GIVE_UP


def test_a_refusal_of_the_request_is_told_even_at_the_deadline() -> None:
    assert after_failure(rejected(400), committed=False, time_left_s=0.0) is Next.RETURN_ERROR
