"""What happens to one request: answered, failed, rate limited, malformed, hung; and how fast.

The draws come from a ``random.Random`` seeded by the prefix's seed, the request's hash and the prefix's
request counter, so a run of the same requests against the same profile repeats exactly. A profile with
nothing random in it (the default) never builds a generator: that keeps the benchmark baseline cheap.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from tokenmux.simulator.profile import Behaviour

# Shape of the latency and throughput distributions: Beta(k*m, k*(1-m)) scaled onto [min, max] has the
# requested mean for any mean inside the range, skewed or not (the seed page's figures are skewed).
_CONCENTRATION = 4.0


class Outcome(enum.Enum):
    ANSWER = "answer"
    OUTAGE = "outage"  # 503 during an outage window
    HANG = "hang"  # accept, never answer
    ERROR = "error"  # error_status before any byte
    RATE_LIMITED = "rate_limited"  # 429 with Retry-After
    MALFORMED = "malformed"  # 200 with a body no client can read


@dataclass(slots=True, frozen=True)
class Fate:
    outcome: Outcome
    ttft_s: float = 0.0
    tokens_per_second: float = 0.0  # 0: send everything at once
    blocked: bool = False  # an answer, but the safety filter refuses the prompt (block_rate)

    @property
    def seconds_per_token(self) -> float:
        return 1.0 / self.tokens_per_second if self.tokens_per_second > 0 else 0.0


_INSTANT = Fate(Outcome.ANSWER)


def decide(behaviour: Behaviour, draw_seed: int, uptime_s: float) -> Fate:
    """The fate of one request under ``behaviour``, ``uptime_s`` seconds after the simulator started."""
    b = behaviour
    if b.outages and b.in_outage(uptime_s):
        return Fate(Outcome.OUTAGE)
    if b.hang:
        return Fate(Outcome.HANG)
    if not _has_randomness(b):
        if not b.ttft_ms and not b.paced:
            return _INSTANT
        return Fate(Outcome.ANSWER, b.ttft_ms / 1000.0, b.tokens_per_second or 0.0)
    rng = random.Random(draw_seed)
    # Always draw in the same order so that changing one rate does not reshuffle the others.
    error_draw, limit_draw, malformed_draw = rng.random(), rng.random(), rng.random()
    if error_draw < b.error_rate:
        return Fate(Outcome.ERROR)
    if limit_draw < b.rate_limit_rate:
        return Fate(Outcome.RATE_LIMITED)
    ttft_ms = draw_around(rng, b.ttft_ms, b.ttft_ms_min, b.ttft_ms_max)
    tokens_per_second = 0.0
    if b.paced:
        assert b.tokens_per_second is not None
        tokens_per_second = draw_around(
            rng, b.tokens_per_second, b.tokens_per_second_min, b.tokens_per_second_max
        )
    outcome = Outcome.MALFORMED if malformed_draw < b.malformed_rate else Outcome.ANSWER
    # Drawn last, so that profiles without block_rate draw exactly what they drew before it existed.
    blocked = rng.random() < b.block_rate
    return Fate(outcome, ttft_ms / 1000.0, tokens_per_second, blocked=blocked)


def _has_randomness(b: Behaviour) -> bool:
    return bool(
        b.error_rate
        or b.rate_limit_rate
        or b.malformed_rate
        or b.block_rate
        or b.ttft_ms_min is not None
        or b.ttft_ms_max is not None
        or (b.paced and (b.tokens_per_second_min is not None or b.tokens_per_second_max is not None))
    )


def draw_around(rng: random.Random, mean: float, low: float | None, high: float | None) -> float:
    """A draw within [low, high] whose expected value is ``mean``; a missing bound mirrors the other."""
    if low is None and high is None:
        return mean
    if low is None:
        assert high is not None
        low = max(0.0, 2 * mean - high)
    if high is None:
        high = 2 * mean - low
    if high <= low:
        return mean
    position = (mean - low) / (high - low)
    if position <= 0.0:
        return low
    if position >= 1.0:
        return high
    return low + (high - low) * rng.betavariate(_CONCENTRATION * position, _CONCENTRATION * (1 - position))
