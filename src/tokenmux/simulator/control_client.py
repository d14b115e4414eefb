"""A client of the simulator's control route, for the tests and the benchmark.

    control = SimulatorControl("http://127.0.0.1:9100")
    control.profile("openai", ttft_ms=400, error_rate=0.1)   # POST /_control/openai; no fields: defaults
    control.requests("openai")                               # what the prefix received, keys redacted
    control.reset("openai", "azure")                         # default profiles, request logs cleared
    openai_control = control.at("openai")                    # the same, for one prefix

The control route is in ``app.py``, the profile's fields in ``profile.py``. One keep-alive connection
(``http.client``: nothing beyond the standard library, so the benchmark needs no test dependency), opened
again when the simulator has closed it; not for use from several threads at once.
"""

from __future__ import annotations

import http.client
import json
import time
from typing import Any
from urllib.parse import quote, urlsplit


class ControlError(Exception):
    """The control route refused a call (an unknown profile field, a bad value); the message is its own."""


class SimulatorControl:
    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        parts = urlsplit(self.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"the simulator's URL must be http://host:port, got {url!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        self._timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None

    # -- one prefix at a time

    def profile(self, prefix: str, **fields: Any) -> dict[str, Any]:
        """Set ``prefix``'s profile to ``fields`` (the defaults for the rest) and return it as set."""
        return self._call("POST", f"/_control/{quote(prefix)}", fields)

    def current_profile(self, prefix: str) -> dict[str, Any]:
        return self._call("GET", f"/_control/{quote(prefix)}")

    def requests(self, prefix: str) -> list[dict[str, Any]]:
        """The requests ``prefix`` received, oldest first (method, path, query, headers, body)."""
        return self._call("GET", f"/_control/{quote(prefix)}/requests")

    def clear_requests(self, prefix: str) -> None:
        self._call("DELETE", f"/_control/{quote(prefix)}/requests")

    def reset(self, *prefixes: str) -> None:
        """Default profiles and empty request logs for ``prefixes``."""
        for prefix in prefixes:
            self.profile(prefix)
            self.clear_requests(prefix)

    def at(self, prefix: str) -> PrefixControl:
        return PrefixControl(self, prefix)

    # -- the simulator as a whole

    def is_up(self) -> bool:
        try:
            self._call("GET", "/health")
        except (OSError, ControlError):
            return False
        return True

    def wait_until_up(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.is_up():
            if time.monotonic() > deadline:
                raise TimeoutError(f"the simulator at {self.url} did not answer within {timeout_s} s")
            time.sleep(0.05)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> SimulatorControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        for attempt in (1, 2):
            conn = self._conn or http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
            self._conn = conn
            try:
                conn.request(method, path, body=payload, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The simulator closed the idle keep-alive connection: once more on a new one.
                self.close()
                if attempt == 2:
                    raise
            except OSError:
                self.close()
                raise
        if response.status >= 400:
            raise ControlError(f"{method} {path}: {response.status} {data.decode(errors='replace')[:300]}")
        return json.loads(data) if data else None


class PrefixControl:
    """The control route of one prefix (the simulator's own tests give each test a prefix)."""

    def __init__(self, control: SimulatorControl, prefix: str) -> None:
        self.control = control
        self.prefix = prefix

    def set(self, **fields: Any) -> dict[str, Any]:
        return self.control.profile(self.prefix, **fields)

    def get(self) -> dict[str, Any]:
        return self.control.current_profile(self.prefix)

    def requests(self) -> list[dict[str, Any]]:
        return self.control.requests(self.prefix)

    def clear(self) -> None:
        self.control.clear_requests(self.prefix)
