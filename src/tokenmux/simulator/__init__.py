"""Simulated LLM providers: a real HTTP server that speaks each provider's wire format under its own path
prefix, with a seeded behaviour profile per prefix (latency, throughput, errors, outages, drops).

``tokenmux simulate`` calls ``run``; ``tokenmux demo`` awaits ``serve``; tests and the benchmark use
``SimulatorThread``. See ``app.py`` for the routes and ``profile.py`` for the profile fields.
"""

from tokenmux.simulator.app import SimulatorApp, create_app
from tokenmux.simulator.server import SimulatorThread, run, serve

__all__ = ["SimulatorApp", "SimulatorThread", "create_app", "run", "serve"]
