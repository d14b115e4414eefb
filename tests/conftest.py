"""Shared fixtures: the provider simulator and a gateway in front of it, each on a loopback port."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway_support import SIM_PREFIXES, Gateway, make_key, sim_config
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer
from tokenmux.simulator.app import create_app
from tokenmux.simulator.control_client import SimulatorControl

# A module that drives an official client (imports an SDK, or opens one on the gateway with ``.openai()``)
# has all its tests marked ``clients``: ``scripts/test-newest-clients`` runs them (``-m clients``) against
# the clients' newest releases. Read from the source so that no new module can forget the mark.
_DRIVES_A_CLIENT = re.compile(
    r"^\s*(?:import (?:openai|anthropic)\b|from (?:openai|anthropic)\b|from google import genai\b)|\.openai\(",
    re.MULTILINE,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    drives: dict[Path, bool] = {}
    for item in items:
        if item.path not in drives:
            drives[item.path] = bool(_DRIVES_A_CLIENT.search(item.path.read_text(encoding="utf-8")))
        if drives[item.path]:
            item.add_marker(pytest.mark.clients)


@pytest.fixture(scope="session")
def simulator() -> Iterator[BackgroundServer]:
    # A test may leave a hanging request open: do not wait long for it at shutdown.
    with BackgroundServer(create_app(seed=1), graceful_timeout_s=1) as server:
        yield server


@pytest.fixture
def sim(simulator: BackgroundServer) -> Iterator[SimulatorControl]:
    """The simulator's control route, every prefix the test gateway uses at its defaults."""
    with SimulatorControl(simulator.url) as control:
        control.reset(*SIM_PREFIXES)
        yield control
        control.reset(*SIM_PREFIXES)


@pytest.fixture
def gateway_factory(sim: SimulatorControl, tmp_path: Path) -> Iterator[Any]:
    started: list[BackgroundServer] = []
    gateways: list[Gateway] = []

    def start(config: dict[str, Any] | None = None, **gateway: Any) -> Gateway:
        url = f"sqlite:///{tmp_path}/gw-{len(started)}.db"
        key = make_key(url)
        gateway.setdefault("spool_dir", str(tmp_path / f"spool-{len(started)}"))  # the journal's too
        app = build_gateway(config or sim_config(sim.url, **gateway), database_url=url, env={})
        server = BackgroundServer(app, graceful_timeout_s=2).start()
        started.append(server)
        gateways.append(Gateway(server, key, app))
        return gateways[-1]

    yield start
    for gw in gateways:
        gw.close_clients()
    for server in started:
        server.stop()


@pytest.fixture
def gateway(gateway_factory: Any) -> Gateway:
    return gateway_factory()  # type: ignore[no-any-return]


@pytest.fixture
def redis_url() -> str:
    """The machine's Redis, on a database index of its own, empty; skips when there is none."""
    import redis_support

    if not redis_support.reachable():
        pytest.skip(redis_support.NOT_REACHABLE)
    redis_support.flush()
    return redis_support.URL
