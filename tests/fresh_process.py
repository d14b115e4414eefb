"""Code run in a fresh interpreter, for what this process cannot show any more: which modules a gateway
imports, what a load makes resident, once other tests have imported or loaded them here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_fresh(code: str, cwd: Path | None = None, timeout_s: float = 120) -> str:
    """What ``code`` printed, run by this Python in a process of its own; raises when it fails."""
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=cwd, timeout=timeout_s
    )
    return ran.stdout
