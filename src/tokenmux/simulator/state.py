"""Per-prefix state: the profile in force, the request counter behind the seeded draws, the prompt cache,
the request log."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from tokenmux.asgi import Scope
from tokenmux.simulator.profile import Profile, ProfileError, build_profile
from tokenmux.simulator.prompt_cache import PromptCache

REQUEST_LOG_SIZE = 200
_REDACTED_HEADERS = frozenset({b"authorization", b"api-key", b"x-api-key", b"x-goog-api-key"})


class PrefixState:
    __slots__ = ("_requests", "counter", "profile", "prompt_cache")

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.counter = 0
        self.prompt_cache = PromptCache(time.monotonic)
        # (method, path, query, headers, body) as received; made readable only when asked for, which is
        # rare next to recording.
        self._requests: deque[tuple[str, str, bytes, list[tuple[bytes, bytes]], Any]] = deque(
            maxlen=REQUEST_LOG_SIZE
        )

    def next_count(self) -> int:
        self.counter += 1
        return self.counter

    def record(self, scope: Scope, body: Any) -> None:
        """Keep the request as the provider received it, for tests to inspect."""
        self._requests.append(
            (scope["method"], scope["path"], scope.get("query_string", b""), scope["headers"], body)
        )

    def requests(self) -> list[dict[str, Any]]:
        """The recorded requests, oldest first, with header names lowercased and keys redacted."""
        return [
            {
                "method": method,
                "path": path,
                "query": query.decode("latin-1"),
                "headers": _readable_headers(headers),
                "body": body,
            }
            for method, path, query, headers, body in self._requests
        ]

    def clear_requests(self) -> None:
        self._requests.clear()


def _readable_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        text = "<redacted>" if name.lower() in _REDACTED_HEADERS else value.decode("latin-1")
        key = name.decode("latin-1").lower()
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return headers


class Registry:
    """Every prefix's state, made on first use with the default profile."""

    def __init__(self, seed: int, profiles: dict[str, Any] | None) -> None:
        self.seed = seed
        self._default = build_profile({}, seed)
        self._states: dict[str, PrefixState] = {}
        for prefix, posted in (profiles or {}).items():
            try:
                self.set_profile(prefix, posted)
            except ProfileError as exc:
                raise ValueError(f"simulator profile for {prefix!r}: {exc}") from None

    def state(self, prefix: str) -> PrefixState:
        state = self._states.get(prefix)
        if state is None:
            state = self._states[prefix] = PrefixState(self._default)
        return state

    def set_profile(self, prefix: str, posted: Any) -> Profile:
        """Replace a prefix's profile with the defaults merged with ``posted``; the draws restart and the
        prompt cache empties, so what follows repeats from run to run. Raises ``ProfileError``."""
        profile = build_profile(posted, self.seed)
        state = self.state(prefix)
        state.profile = profile
        state.counter = 0
        state.prompt_cache.clear()
        return profile
