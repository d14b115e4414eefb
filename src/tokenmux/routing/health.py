"""Endpoint health: cooldowns, circuit breakers and recent performance, in process.

- A cooldown comes from the provider: a 429 (or 503) with ``Retry-After`` puts the endpoint last in every
  plan until then; a 429 without one uses the configured default.
- A circuit opens after ``circuit_failures`` consecutive provider-caused failures (unreachable, timeout,
  5xx, malformed), for ``circuit_open_s``. Then one request is let through as a probe (half-open): its
  answer closes the circuit (a stream's first content is enough), its failure opens it again for twice as
  long, up to ``MAX_PROBE_INTERVAL_S`` (or ``circuit_open_s`` if longer): a provider that recovers is
  probed, and back in rotation, within seconds, while a dead one costs one failed attempt (which falls
  back) every few seconds. A probe that never reports is given up after ``PROBE_WAIT_S``, so an endpoint
  nothing probes is not held away.
- Blocked is never out: a blocked endpoint is tried after the others (``router.blocked_last``), and any
  success, probe or not, closes its circuit and ends its cooldown.
- Recent performance is an exponentially weighted average of first-token latency, throughput and success,
  which the default routing score reads. The stats module's windowed figures replace them where they exist.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tokenmux.errors import ProviderRejected, UpstreamError

_EWMA = 0.2  # weight of the newest observation: about the last ten calls dominate
# The longest a failed probe's backoff keeps an endpoint last (unless circuit_open_s is longer).
MAX_PROBE_INTERVAL_S = 5.0
# How long a half-open circuit waits for its probe's verdict before it lets another request probe.
PROBE_WAIT_S = 10.0


@dataclass(slots=True)
class EndpointHealth:
    cooldown_until: float = 0.0
    consecutive_failures: int = 0
    circuit_open_until: float = 0.0  # 0: closed
    circuit_open_s: float = 0.0  # length of the current/last open period
    probe_in_flight: bool = False
    probe_since: float = 0.0  # when the probe in flight was sent
    ttft_ms: float | None = None
    throughput_tps: float | None = None
    success: float = 1.0  # EWMA of 1 (success) / 0 (provider-caused failure)
    calls: int = 0


def counts_against_provider(error: UpstreamError) -> bool:
    """Failures that say the provider is unwell, rather than that the request or our quota was wrong."""
    if isinstance(error, ProviderRejected):
        return error.upstream_status >= 500 or error.upstream_status == 408
    return True


class HealthBoard:
    def __init__(
        self,
        *,
        cooldown_s: float = 10.0,
        circuit_failures: int = 5,
        circuit_open_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._states: dict[str, EndpointHealth] = {}
        self._cooldown_s = cooldown_s
        self._circuit_failures = circuit_failures
        self._circuit_open_s = circuit_open_s
        self.clock = clock
        # Told of every cooldown and circuit opening decided here (monotonic "until"), to share with
        # other replicas (``shared_health``); what they share comes back through ``apply_shared``.
        self.on_block: Callable[[str, str, float], None] | None = None

    def get(self, key: str) -> EndpointHealth:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = EndpointHealth()
        return state

    def peek(self, key: str) -> EndpointHealth | None:
        return self._states.get(key)

    def blocked_until(self, key: str) -> float:
        """Monotonic time until which the endpoint should not be tried; 0 when it may be."""
        state = self._states.get(key)
        if state is None:
            return 0.0
        now = self.clock()
        until = state.cooldown_until if state.cooldown_until > now else 0.0
        if state.circuit_open_until:
            if state.circuit_open_until > now:
                until = max(until, state.circuit_open_until)
            elif state.probe_in_flight and now < state.probe_since + PROBE_WAIT_S:
                # Half-open with its one probe already out: wait for the probe's verdict.
                until = max(until, state.probe_since + PROBE_WAIT_S)
        return until

    def begin_attempt(self, key: str) -> None:
        """Called when an attempt is sent; claims the probe slot of a half-open circuit."""
        state = self._states.get(key)
        if state is not None and state.circuit_open_until:
            now = self.clock()
            if state.circuit_open_until <= now and (
                not state.probe_in_flight or now >= state.probe_since + PROBE_WAIT_S
            ):
                state.probe_in_flight = True
                state.probe_since = now

    def record_answering(self, key: str) -> None:
        """The endpoint's answer has begun (a whole answer, or a stream's first content): the provider is
        serving, so its circuit closes and its cooldown ends now, not when a long stream finishes."""
        state = self._states.get(key)
        if state is not None and (
            state.consecutive_failures or state.circuit_open_until or state.cooldown_until
        ):
            _close(state)

    def record_success(self, key: str, *, ttft_ms: float | None, throughput_tps: float | None) -> None:
        state = self.get(key)
        state.calls += 1
        _close(state)
        state.success += _EWMA * (1.0 - state.success)
        if ttft_ms is not None:
            state.ttft_ms = (
                ttft_ms if state.ttft_ms is None else state.ttft_ms + _EWMA * (ttft_ms - state.ttft_ms)
            )
        if throughput_tps is not None:
            prev = state.throughput_tps
            state.throughput_tps = throughput_tps if prev is None else prev + _EWMA * (throughput_tps - prev)

    def record_failure(self, key: str, error: UpstreamError) -> None:
        state = self.get(key)
        state.calls += 1
        now = self.clock()
        if isinstance(error, ProviderRejected) and error.upstream_status in (429, 503, 529):
            wait = (
                error.retry_after
                if error.retry_after is not None
                else (self._cooldown_s if error.upstream_status == 429 else 0.0)
            )
            if wait > 0 and now + wait > state.cooldown_until:
                state.cooldown_until = now + wait
                if self.on_block is not None:
                    self.on_block(key, "cooldown", state.cooldown_until)
        if not counts_against_provider(error):
            state.probe_in_flight = False
            return
        state.success += _EWMA * (0.0 - state.success)
        state.consecutive_failures += 1
        if state.probe_in_flight:
            longest = max(self._circuit_open_s, MAX_PROBE_INTERVAL_S)
            state.circuit_open_s = min(longest, max(self._circuit_open_s, state.circuit_open_s * 2))
            state.circuit_open_until = now + state.circuit_open_s
            state.probe_in_flight = False
        elif state.consecutive_failures >= self._circuit_failures and not state.circuit_open_until:
            state.circuit_open_s = self._circuit_open_s
            state.circuit_open_until = now + self._circuit_open_s
        else:
            return
        if self.on_block is not None:
            self.on_block(key, "circuit", state.circuit_open_until)

    def apply_shared(self, key: str, kind: str, until: float) -> None:
        """Another replica put the endpoint in cooldown or opened its circuit until ``until`` (monotonic,
        this process's clock). Only ever extends what is known here."""
        state = self.get(key)
        if kind == "cooldown":
            state.cooldown_until = max(state.cooldown_until, until)
        elif kind == "circuit" and until > state.circuit_open_until:
            state.circuit_open_s = max(state.circuit_open_s, until - self.clock())
            state.circuit_open_until = until

    def record_neutral(self, key: str) -> None:
        """An attempt that ended for a reason that says nothing of the provider (client went away)."""
        state = self._states.get(key)
        if state is not None:
            state.probe_in_flight = False

    def snapshot(self) -> dict[str, EndpointHealth]:
        return dict(self._states)


def _close(state: EndpointHealth) -> None:
    state.consecutive_failures = 0
    state.circuit_open_until = 0.0
    state.circuit_open_s = 0.0
    state.probe_in_flight = False
    state.cooldown_until = 0.0
