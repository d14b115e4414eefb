"""Where the tests find the real client CLIs: ``clients/node_modules/.bin`` (``npm ci`` in ``clients/``,
the pinned versions), or the folder ``TOKENMUX_TEST_CLIENTS_BIN`` names, where
``scripts/test-newest-clients`` installs the newest releases."""

from __future__ import annotations

import os
from pathlib import Path

PINNED_BIN = Path(__file__).resolve().parents[2] / "clients" / "node_modules" / ".bin"


def client_cli(name: str) -> Path:
    return Path(os.environ.get("TOKENMUX_TEST_CLIENTS_BIN") or PINNED_BIN) / name
