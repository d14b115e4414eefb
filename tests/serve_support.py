"""A real ``tokenmux serve`` process for tests of what only a process shows: signals, kill -9, restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from tokenmux.server.runner import free_port

TOKENMUX = [sys.executable, "-m", "tokenmux.cli"]


class ServeProcess:
    """``tokenmux serve`` on a free port with a config file written from ``config``; ``start`` waits for
    /ready to answer 200."""

    def __init__(
        self, tmp_path: Path, config: dict[str, Any], database_url: str, name: str = "serve"
    ) -> None:
        self.config_path = tmp_path / f"{name}.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.database_url = database_url
        self.log_path = tmp_path / f"{name}.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> ServeProcess:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    *TOKENMUX,
                    "serve",
                    "--port",
                    str(self.port),
                    "--config",
                    str(self.config_path),
                    "--database",
                    self.database_url,
                    "--log-level",
                    "warning",
                ],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self.proc.poll() is None, self.log()
            try:
                if httpx.get(f"{self.url}/ready", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "tokenmux serve did not get ready\n" + self.log()
            time.sleep(0.05)

    def signal(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)

    def wait(self, timeout_s: float = 30.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout_s)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 30 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
