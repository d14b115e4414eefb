"""Per-prefix state: the profile in force, the request counter behind the seeded draws, the request log."""

from __future__ import annotations

from collections import deque
from typing import Any

from tokenmux.simulator.profile import Profile, ProfileError, build_profile

REQUEST_LOG_SIZE = 200
_REDACTED_HEADERS = frozenset({b"authorization", b"api-key", b"x-api-key", b"x-goog-api-key"})


class PrefixState:
    __slots__ = ("counter", "profile", "requests")

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.counter = 0
        self.requests: deque[dict[str, Any]] = deque(maxlen=REQUEST_LOG_SIZE)

    def next_count(self) -> int:
        self.counter += 1
        return self.counter

    def record(self, scope: dict[str, Any], body: Any) -> None:
        """Keep the request as the provider received it, keys redacted, for tests to inspect."""
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            text = "<redacted>" if name in _REDACTED_HEADERS else value.decode("latin-1")
            key = name.decode("latin-1")
            headers[key] = f"{headers[key]}, {text}" if key in headers else text
        self.requests.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "query": scope.get("query_string", b"").decode("latin-1"),
                "headers": headers,
                "body": body,
            }
        )


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
        """Replace a prefix's profile with the defaults merged with ``posted``; the draws restart, so
        what follows repeats from run to run. Raises ``ProfileError``."""
        profile = build_profile(posted, self.seed)
        state = self.state(prefix)
        state.profile = profile
        state.counter = 0
        return profile
