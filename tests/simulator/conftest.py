"""Fixtures for the simulator's tests: one simulator on a loopback port for the session, a prefix of its
own for each test (any prefix speaks the OpenAI format), and the official SDK pointed at it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import openai
import pytest
from sim_test_support import openai_base_url

from tokenmux.server.runner import BackgroundServer
from tokenmux.simulator.app import create_app
from tokenmux.simulator.control_client import PrefixControl, SimulatorControl

SEED = 7


@pytest.fixture(scope="session")
def sim_server() -> Iterator[BackgroundServer]:
    # A test may leave a hanging request open: do not wait long for it at shutdown.
    with BackgroundServer(create_app(seed=SEED), graceful_timeout_s=1) as server:
        yield server


@pytest.fixture
def http(sim_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim_server.url, timeout=10) as client:
        yield client


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]


@pytest.fixture(scope="session")
def sim_control(sim_server: BackgroundServer) -> Iterator[SimulatorControl]:
    with SimulatorControl(sim_server.url) as control:
        yield control


@pytest.fixture
def control(sim_control: SimulatorControl, prefix: str) -> PrefixControl:
    return sim_control.at(prefix)


@pytest.fixture
def client(sim_server: BackgroundServer, prefix: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=openai_base_url(sim_server, prefix), api_key="sk-test-key", max_retries=0, timeout=10
    ) as c:
        yield c


@pytest.fixture
def azure_control(sim_control: SimulatorControl) -> Iterator[PrefixControl]:
    """Azure has one prefix for the whole session: every Azure test starts from the defaults."""
    control = sim_control.at("azure")
    control.set()
    control.clear()
    yield control
    control.set()


@pytest.fixture
def azure(sim_server: BackgroundServer, azure_control: PrefixControl) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(
        azure_endpoint=f"{sim_server.url}/azure",
        api_key="azure-test-key",
        api_version="2024-10-21",
        max_retries=0,
        timeout=10,
    ) as c:
        yield c
