from __future__ import annotations

from clock_support import Clock
from tokenmux.errors import ProviderRejected, ProviderTimeout
from tokenmux.routing.health import MAX_PROBE_INTERVAL_S, PROBE_WAIT_S, HealthBoard


def board(clock: Clock) -> HealthBoard:
    return HealthBoard(cooldown_s=10, circuit_failures=3, circuit_open_s=30, clock=clock)


def test_retry_after_sets_a_cooldown_of_that_length() -> None:
    clock = Clock()
    h = board(clock)
    h.record_failure("e", ProviderRejected("slow down", upstream_status=429, retry_after=7))
    assert h.blocked_until("e") == 1007.0
    clock.now += 7
    assert h.blocked_until("e") == 0.0


def test_429_without_retry_after_uses_the_default_cooldown_and_does_not_count_against_uptime() -> None:
    clock = Clock()
    h = board(clock)
    h.record_failure("e", ProviderRejected("slow down", upstream_status=429))
    assert h.blocked_until("e") == 1010.0
    assert h.get("e").success == 1.0 and h.get("e").consecutive_failures == 0


def test_consecutive_failures_open_the_circuit_and_a_probe_closes_it() -> None:
    clock = Clock()
    h = board(clock)
    for _ in range(2):
        h.record_failure("e", ProviderTimeout("t"))
    assert h.blocked_until("e") == 0.0
    h.record_failure("e", ProviderTimeout("t"))
    assert h.blocked_until("e") == 1030.0
    clock.now += 30
    assert h.blocked_until("e") == 0.0  # half-open: one probe may go
    h.begin_attempt("e")
    assert h.blocked_until("e") > 0  # and only one
    h.record_success("e", ttft_ms=100, throughput_tps=50)
    assert h.blocked_until("e") == 0.0 and h.get("e").consecutive_failures == 0


def test_a_failed_probe_opens_the_circuit_for_longer() -> None:
    clock = Clock()
    h = HealthBoard(cooldown_s=10, circuit_failures=3, circuit_open_s=1, clock=clock)
    for _ in range(3):
        h.record_failure("e", ProviderRejected("down", upstream_status=500))
    clock.now += 1
    h.begin_attempt("e")
    h.record_failure("e", ProviderRejected("down", upstream_status=500))
    assert h.blocked_until("e") == clock.now + 2


def test_client_errors_do_not_open_the_circuit() -> None:
    clock = Clock()
    h = board(clock)
    for _ in range(10):
        h.record_failure("e", ProviderRejected("bad request", upstream_status=400))
    assert h.blocked_until("e") == 0.0


def test_recent_figures_are_smoothed() -> None:
    h = board(Clock())
    h.record_success("e", ttft_ms=100, throughput_tps=10)
    h.record_success("e", ttft_ms=200, throughput_tps=20)
    state = h.get("e")
    assert state.ttft_ms == 120.0 and state.throughput_tps == 12.0


def test_a_failed_probe_backs_off_doubling_up_to_a_few_seconds() -> None:
    clock = Clock()
    h = HealthBoard(cooldown_s=10, circuit_failures=3, circuit_open_s=1, clock=clock)
    for _ in range(3):
        h.record_failure("e", ProviderTimeout("t"))
    waits = []
    for _ in range(6):
        clock.now = h.blocked_until("e")
        h.begin_attempt("e")
        h.record_failure("e", ProviderTimeout("t"))
        waits.append(h.blocked_until("e") - clock.now)
    assert waits == [
        2,
        4,
        MAX_PROBE_INTERVAL_S,
        MAX_PROBE_INTERVAL_S,
        MAX_PROBE_INTERVAL_S,
        MAX_PROBE_INTERVAL_S,
    ]


def test_a_circuit_open_longer_than_the_backoff_cap_keeps_its_length() -> None:
    clock = Clock()
    h = board(clock)  # circuit_open_s 30
    for _ in range(3):
        h.record_failure("e", ProviderTimeout("t"))
    clock.now = h.blocked_until("e")
    h.begin_attempt("e")
    h.record_failure("e", ProviderTimeout("t"))
    assert h.blocked_until("e") - clock.now == 30


def test_a_probe_that_never_reports_does_not_hold_the_endpoint_away() -> None:
    clock = Clock()
    h = board(clock)
    for _ in range(3):
        h.record_failure("e", ProviderTimeout("t"))
    clock.now += 30
    h.begin_attempt("e")  # the probe goes out, and its request never says how it went
    assert h.blocked_until("e") == clock.now + PROBE_WAIT_S
    clock.now += PROBE_WAIT_S
    assert h.blocked_until("e") == 0.0
    h.begin_attempt("e")  # another request may probe now
    assert h.blocked_until("e") == clock.now + PROBE_WAIT_S


def test_an_answer_from_a_blocked_endpoint_puts_it_back_at_once() -> None:
    clock = Clock()
    h = board(clock)
    for _ in range(3):
        h.record_failure("e", ProviderTimeout("t"))
    h.begin_attempt("e")  # tried as a last resort while its circuit is open: not a probe
    h.record_answering("e")  # its stream's first content
    assert h.blocked_until("e") == 0.0 and h.get("e").consecutive_failures == 0
    h.record_failure("e", ProviderRejected("slow down", upstream_status=429, retry_after=60))
    h.record_success("e", ttft_ms=100, throughput_tps=None)
    assert h.blocked_until("e") == 0.0  # the cooldown ends with an answer


def test_a_last_resort_failure_while_open_does_not_extend_the_circuit() -> None:
    clock = Clock()
    h = board(clock)
    for _ in range(3):
        h.record_failure("e", ProviderTimeout("t"))
    clock.now += 10
    h.begin_attempt("e")
    h.record_failure("e", ProviderTimeout("t"))
    assert h.blocked_until("e") == 1030.0
