"""The control route's client, which the tests and the benchmark share."""

from __future__ import annotations

import socket

import pytest

from tokenmux.server.runner import free_port
from tokenmux.simulator.control_client import ControlError, SimulatorControl


def test_a_refused_profile_raises_with_the_routes_message(sim_control: SimulatorControl) -> None:
    with pytest.raises(ControlError, match=r"POST /_control/refused: 400 .*error_rate"):
        sim_control.profile("refused", error_rate=3)


def test_reset_restores_the_profile_and_empties_the_log(
    sim_control: SimulatorControl, client: object, prefix: str
) -> None:
    sim_control.profile(prefix, ttft_ms=5)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])  # type: ignore[attr-defined]
    assert len(sim_control.requests(prefix)) == 1
    sim_control.reset(prefix)
    assert sim_control.requests(prefix) == [] and sim_control.current_profile(prefix)["ttft_ms"] == 0


def test_a_connection_the_simulator_closed_is_opened_again(
    sim_control: SimulatorControl, prefix: str
) -> None:
    sim_control.profile(prefix, ttft_ms=1)
    dropped = sim_control._conn
    assert dropped is not None and dropped.sock is not None
    dropped.sock.shutdown(socket.SHUT_RDWR)  # as an idle keep-alive connection the server dropped
    assert sim_control.current_profile(prefix)["ttft_ms"] == 1
    assert sim_control._conn is not dropped


def test_is_up_and_waiting_for_a_simulator_that_is_not_there() -> None:
    with SimulatorControl(f"http://127.0.0.1:{free_port()}") as nowhere:
        assert not nowhere.is_up()
        with pytest.raises(TimeoutError, match=r"did not answer within 0\.1 s"):
            nowhere.wait_until_up(timeout_s=0.1)
