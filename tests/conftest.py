"""Shared fixtures: the provider simulator and a gateway in front of it, each on a loopback port."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gateway_support
from gateway_support import SIM_PREFIXES, Gateway, make_key, open_gateway, sim_config
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


@pytest.fixture(scope="session", autouse=True)
def spools_in_the_session_folder(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Test gateways whose test names no spool directory get one of their own in the session's folder."""
    gateway_support.spool_root = tmp_path_factory.mktemp("spools")


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


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "shared_gateway: the module's tests that take `gateway` share one (module_gateway), reset simulator "
        "and all; only for tests that neither leave state in it nor read state another test could leave",
    )
    config.addinivalue_line(
        "markers",
        "own_gateway: in a shared_gateway module, this test gets a gateway of its own (it changes or reads "
        "state another test could see: health after failures, routing choices, limits, counts)",
    )


@pytest.fixture
def gateway(request: pytest.FixtureRequest) -> Gateway:
    """A gateway of the test's own, or in a module marked ``shared_gateway`` the module's: one gateway costs
    about 0.35 s to build and stop, often more than the test. Looked up by name so that a test that gets
    the shared one builds nothing."""
    node = request.node
    if node.get_closest_marker("shared_gateway") and not node.get_closest_marker("own_gateway"):
        return request.getfixturevalue("shared_gateway")  # type: ignore[no-any-return]
    return request.getfixturevalue("gateway_factory")()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def module_gateway(
    simulator: BackgroundServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """One gateway at the defaults for all of a module's tests: building and stopping one costs about 0.35 s.
    Only for tests that leave nothing in it another test could see (health after failures, limits and
    spend, counted records, stats, affinity); take it through ``shared_gateway``."""
    with open_gateway(simulator.url, tmp_path_factory.mktemp("gateway")) as gw:
        yield gw


@pytest.fixture
def shared_gateway(module_gateway: Gateway, sim: SimulatorControl) -> Iterator[Gateway]:
    """The module's gateway for one test: the simulator reset before it (``sim``), as a gateway of its own
    would have seen it, and the test's SDK clients closed after it."""
    yield module_gateway
    module_gateway.close_clients()


@pytest.fixture
def redis_url() -> str:
    """The machine's Redis, on a database index of its own, empty; skips when there is none."""
    import redis_support

    if not redis_support.reachable():
        pytest.skip(redis_support.NOT_REACHABLE)
    redis_support.flush()
    return redis_support.URL
