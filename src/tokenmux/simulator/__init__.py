"""Simulated LLM providers: a real HTTP server that speaks each provider's wire format under its own path
prefix, with a seeded behaviour profile per prefix (latency, throughput, errors, outages, drops).

``tokenmux simulate`` calls ``run``; the demo and the tests serve ``create_app()`` with
``server.runner.BackgroundServer`` and drive the control route with ``control_client.SimulatorControl``.
See ``app.py`` for the routes and ``profile.py`` for the profile fields.
"""

from tokenmux.simulator.app import SimulatorApp, create_app
from tokenmux.simulator.server import run, serve

__all__ = ["SimulatorApp", "create_app", "run", "serve"]
