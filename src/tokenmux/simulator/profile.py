"""Behaviour profiles: how one simulated provider (one path prefix) answers.

A profile is what ``POST /_control/{prefix}`` accepts: the fields of ``Behaviour`` plus ``seed`` and
``models`` (per-model overrides, each a partial ``Behaviour``). Every POST replaces the prefix's profile
with the built-in defaults merged with what was posted, so ``{}`` resets it and a posted profile means the
same thing whatever was set before.

Overrides are merged once, when a profile is set, so a request only looks its model up in a dict.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

Fraction = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
Positive = Annotated[float, msgspec.Meta(gt=0.0)]


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the field and the fix."""


class Behaviour(msgspec.Struct, forbid_unknown_fields=True):
    """What a prefix (or one model at it) does with a request. Rates are fractions of requests."""

    error_status: Annotated[int, msgspec.Meta(ge=400, le=599)] = 500
    error_rate: Fraction = 0.0
    rate_limit_rate: Fraction = 0.0
    retry_after_s: NonNegative = 1.0
    ttft_ms: NonNegative = 0.0
    ttft_ms_min: NonNegative | None = None
    ttft_ms_max: NonNegative | None = None
    tokens_per_second: NonNegative | None = None  # 0 or None: no pacing
    tokens_per_second_min: Positive | None = None
    tokens_per_second_max: Positive | None = None
    drop_after_chunks: Annotated[int, msgspec.Meta(ge=0)] | None = None
    malformed_rate: Fraction = 0.0
    # Prompts the provider's safety filter refuses: Gemini answers promptFeedback.blockReason SAFETY,
    # Anthropic stop_reason "refusal", OpenAI finish_reason "content_filter", all with no content.
    block_rate: Fraction = 0.0
    outages: list[tuple[NonNegative, NonNegative]] = msgspec.field(default_factory=list)
    completion_tokens: Annotated[int, msgspec.Meta(ge=1)] = 24
    # A fixed share of every prompt reported as read from the cache; when 0, the prompt cache decides.
    cached_ratio: Fraction = 0.0
    # Keep recent prompts' prefixes and report the part of a prompt seen before as cached (prompt_cache.py).
    prompt_cache: bool = True
    reasoning_tokens: Annotated[int, msgspec.Meta(ge=0)] = 0
    hang: bool = False

    def __post_init__(self) -> None:
        _check_range("ttft_ms", self.ttft_ms, self.ttft_ms_min, self.ttft_ms_max)
        if self.tokens_per_second:
            _check_range(
                "tokens_per_second",
                self.tokens_per_second,
                self.tokens_per_second_min,
                self.tokens_per_second_max,
            )
        for start, end in self.outages:
            if end <= start:
                raise ValueError(f"an outage window [{start}, {end}] must end after it starts")

    @property
    def paced(self) -> bool:
        return bool(self.tokens_per_second)

    def in_outage(self, uptime_s: float) -> bool:
        return any(start <= uptime_s < end for start, end in self.outages)


def _check_range(name: str, mean: float, low: float | None, high: float | None) -> None:
    if low is not None and low > mean:
        raise ValueError(f"{name}_min ({low}) must not exceed the mean {name} ({mean})")
    if high is not None and high < mean:
        raise ValueError(f"{name}_max ({high}) must not be below the mean {name} ({mean})")


_BEHAVIOUR_FIELDS = frozenset(Behaviour.__struct_fields__)


class Profile:
    """A prefix's effective profile: its behaviour, seed and per-model behaviours, merged."""

    __slots__ = ("behaviour", "by_model", "seed")

    def __init__(self, behaviour: Behaviour, by_model: dict[str, Behaviour], seed: int) -> None:
        self.behaviour = behaviour
        self.by_model = by_model
        self.seed = seed

    def for_model(self, model: str) -> Behaviour:
        return self.by_model.get(model, self.behaviour)

    def to_json(self) -> dict[str, Any]:
        """The effective profile; posting it back gives the same profile."""
        document: dict[str, Any] = msgspec.to_builtins(self.behaviour)
        document["seed"] = self.seed
        document["models"] = {name: msgspec.to_builtins(b) for name, b in self.by_model.items()}
        return document


def build_profile(posted: Any, default_seed: int) -> Profile:
    """Validate a posted profile and merge it with the defaults; raises ``ProfileError``."""
    if not isinstance(posted, dict):
        raise ProfileError('a profile must be a JSON object, e.g. {"error_rate": 0.5}')
    fields = dict(posted)
    seed = fields.pop("seed", None)
    if seed is None:
        seed = default_seed
    elif not isinstance(seed, int) or isinstance(seed, bool):
        raise ProfileError(f"seed must be an integer, not {seed!r}")
    models = fields.pop("models", None) or {}
    if not isinstance(models, dict):
        raise ProfileError("models must be an object mapping a model name to its overrides")
    behaviour = _behaviour(fields, "profile", _BEHAVIOUR_FIELDS | {"seed", "models"})
    by_model: dict[str, Behaviour] = {}
    for name, override in models.items():
        if not isinstance(override, dict):
            raise ProfileError(f"models[{name!r}] must be an object of profile fields")
        by_model[name] = _behaviour({**fields, **override}, f"models[{name!r}]", _BEHAVIOUR_FIELDS)
    return Profile(behaviour, by_model, seed)


def _behaviour(fields: dict[str, Any], where: str, allowed: frozenset[str]) -> Behaviour:
    unknown = sorted(set(fields) - _BEHAVIOUR_FIELDS)
    if unknown:
        raise ProfileError(
            f"unknown field(s) in {where}: {', '.join(unknown)}; allowed there: {', '.join(sorted(allowed))}"
        )
    try:
        return msgspec.convert(fields, Behaviour)
    except msgspec.ValidationError as exc:
        raise ProfileError(f"invalid {where}: {exc}") from None
