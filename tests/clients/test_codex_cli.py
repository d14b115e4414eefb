"""Codex CLI (``clients/``, installed by .ci/run) completes a turn through the gateway's Responses route.

Codex runs with HOME and CODEX_HOME in a temporary folder, telemetry, feedback and update checks off, and
every proxy variable pointing at a closed loopback port (only loopback bypasses it), so nothing it does
can leave the machine; each run is bounded in time.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from installed_clients import client_cli

from gateway_support import NANO

CODEX = client_cli("codex")
RUN_TIMEOUT_S = 120
# A loopback port nothing listens on: any request that is not for loopback fails at once.
NOWHERE = "http://127.0.0.1:9"

pytestmark = [
    pytest.mark.clients,
    pytest.mark.skipif(
        not CODEX.exists(),
        reason="Codex CLI is not installed: run `npm ci` in clients/ (.ci/run does it where npm is available)",
    ),
]


def codex_config(gateway_url: str, model: str) -> str:
    return f"""
model = "{model}"
model_provider = "tokenmux"
check_for_update_on_startup = false
approval_policy = "never"
sandbox_mode = "read-only"

[model_providers.tokenmux]
name = "tokenmux"
base_url = "{gateway_url}/api/v1"
env_key = "TOKENMUX_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
"""


def run_codex(tmp_path: Path, gateway: Any, prompt: str, model: str = NANO) -> list[dict[str, Any]]:
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(codex_config(gateway.url, model))
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "CODEX_HOME": str(home / ".codex"),
        "TOKENMUX_API_KEY": gateway.key,
        "HTTPS_PROXY": NOWHERE,
        "HTTP_PROXY": NOWHERE,
        "ALL_PROXY": NOWHERE,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [str(CODEX), "exec", "--json", "--strict-config", "--skip-git-repo-check", "-C", str(work), prompt],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(("model", "prefix"), [(NANO, "openai"), ("anthropic/claude-haiku-4.5", "anthropic")])
def test_codex_exec_completes_a_turn(tmp_path: Path, gateway: Any, sim: Any, model: str, prefix: str) -> None:
    events = run_codex(tmp_path, gateway, "Say hello", model)
    kinds = [e["type"] for e in events]
    assert "turn.completed" in kinds and "turn.failed" not in kinds, events
    messages = [
        e["item"]["text"]
        for e in events
        if e["type"] == "item.completed" and e["item"]["type"] == "agent_message"
    ]
    assert messages and messages[-1]
    usage = next(e["usage"] for e in events if e["type"] == "turn.completed")
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    received = sim.requests(prefix) or sim.requests("azure")
    assert received, "the turn did not reach the simulated provider"
    assert "Say hello" in json.dumps(received[-1]["body"])
