"""Gemini CLI (``clients/``, installed by .ci/run) completes a turn through the gateway's Gemini route.

Gemini CLI runs non-interactively (``gemini -p``) with ``GOOGLE_GEMINI_BASE_URL`` at the gateway's
``/api/gemini`` and the tokenmux key in ``GEMINI_API_KEY``; HOME in a temporary folder whose settings turn
usage statistics, telemetry and update checks off; every proxy variable pointing at a closed loopback port
(only loopback bypasses it), so nothing it does can leave the machine; each run is bounded in time.
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

GEMINI = client_cli("gemini")
RUN_TIMEOUT_S = 120
# A loopback port nothing listens on: any request that is not for loopback fails at once.
NOWHERE = "http://127.0.0.1:9"
SETTINGS = {
    # The API key way: the key from GEMINI_API_KEY, the base URL from GOOGLE_GEMINI_BASE_URL.
    "security": {"auth": {"selectedType": "gemini-api-key"}},
    "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
    "privacy": {"usageStatisticsEnabled": False},
    "telemetry": {"enabled": False},
}

pytestmark = [
    pytest.mark.clients,
    pytest.mark.skipif(
        not GEMINI.exists(),
        reason="Gemini CLI is not installed: run `npm ci` in clients/ (.ci/run does it where npm is available)",
    ),
]


def run_gemini(tmp_path: Path, gateway: Any, prompt: str, model: str) -> dict[str, Any]:
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(SETTINGS))
    work = tmp_path / "work"
    work.mkdir()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "GOOGLE_GEMINI_BASE_URL": f"{gateway.url}/api/gemini",
        "GEMINI_API_KEY": gateway.key,
        "GEMINI_CLI_NO_RELAUNCH": "true",
        "HTTPS_PROXY": NOWHERE,
        "HTTP_PROXY": NOWHERE,
        "ALL_PROXY": NOWHERE,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    done = subprocess.run(
        [str(GEMINI), "--skip-trust", "-m", model, "-o", "json", "-p", prompt],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
    return json.loads(done.stdout[done.stdout.index("{") :])  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("name", "model", "prefix"),
    [
        (NANO, NANO, "openai"),
        ("anthropic/claude-haiku-4.5", "anthropic/claude-haiku-4.5", "anthropic"),
        ("gemini-2.5-flash", "google/gemini-2.5-flash", "google"),  # Gemini's own name
    ],
)
def test_gemini_cli_completes_a_turn(
    tmp_path: Path, gateway: Any, sim: Any, name: str, model: str, prefix: str
) -> None:
    result = run_gemini(tmp_path, gateway, "Say hello", name)
    assert result.get("response"), result
    # Every call the CLI made (its main turn, and the utility calls of its tools) was answered; it counts
    # them under the answers' modelVersion, the catalog id.
    calls = result["stats"]["models"]
    assert calls[model]["api"]["totalRequests"] >= 1 and calls[model]["tokens"]["input"] > 0, calls
    assert all(c["api"]["totalErrors"] == 0 for c in calls.values()), calls
    received = sim.requests(prefix) or sim.requests("azure")
    assert received, "the turn did not reach the simulated provider"
    assert any("Say hello" in json.dumps(r["body"]) for r in received)
