"""Fixtures for the simulator's tests: one simulator on a loopback port for the session, a prefix of its
own for each test (any prefix speaks the OpenAI format), and the official SDK pointed at it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import openai
import pytest

from tokenmux.simulator import SimulatorThread
from tokenmux.simulator.control_client import PrefixControl, SimulatorControl

SEED = 7


@pytest.fixture(scope="session")
def sim_thread() -> Iterator[SimulatorThread]:
    with SimulatorThread(seed=SEED) as sim:
        yield sim


@pytest.fixture
def http(sim_thread: SimulatorThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim_thread.base_url, timeout=10) as client:
        yield client


@pytest.fixture
def prefix(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]


@pytest.fixture(scope="session")
def sim_control(sim_thread: SimulatorThread) -> Iterator[SimulatorControl]:
    with SimulatorControl(sim_thread.base_url) as control:
        yield control


@pytest.fixture
def control(sim_control: SimulatorControl, prefix: str) -> PrefixControl:
    return sim_control.at(prefix)


@pytest.fixture
def client(sim_thread: SimulatorThread, prefix: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=sim_thread.url(prefix), api_key="sk-test-key", max_retries=0, timeout=10
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
def azure(sim_thread: SimulatorThread, azure_control: PrefixControl) -> Iterator[openai.AzureOpenAI]:
    with openai.AzureOpenAI(
        azure_endpoint=f"{sim_thread.base_url}/azure",
        api_key="azure-test-key",
        api_version="2024-10-21",
        max_retries=0,
        timeout=10,
    ) as c:
        yield c
