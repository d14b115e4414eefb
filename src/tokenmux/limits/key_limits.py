"""A key's limits as the request path reads them, and the checking of limits a person sets.

``KeyLimits.of(record)`` turns a stored ``KeyRecord`` into what each request needs: compiled model
patterns, the provider set, the data policy, and which of the (costlier) checks apply at all. A key without
limits pays for none of them.

``limit_changes`` is the one place that checks limits coming from a person (the CLI and the management
API): it names the field and the fix, and returns column values for ``Store.create_key``/``update_key``.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tokenmux.errors import InvalidRequest, PermissionDenied
from tokenmux.limits.money import PERIODS
from tokenmux.routing.router import Candidate
from tokenmux.store.records import KeyRecord

DATA_POLICIES = ("zdr", "no_training")


@dataclass(frozen=True, slots=True)
class KeyLimits:
    key_id: str
    credit_usd: float | None
    budget_usd: float | None
    budget_period: str | None
    rpm: int | None
    tpm: int | None
    concurrency: int | None
    models: tuple[str, ...] | None  # ids or fnmatch patterns; None: every model
    providers: frozenset[str] | None  # None: every provider
    data_policy: str | None
    _model_match: re.Pattern[str] | None = None

    @classmethod
    def of(cls, key: KeyRecord) -> KeyLimits:
        models = tuple(_json_list(key.allowed_models)) if key.allowed_models else None
        providers = frozenset(_json_list(key.allowed_providers)) if key.allowed_providers else None
        match = re.compile("|".join(fnmatch.translate(m) for m in models)) if models else None
        return cls(
            key_id=key.id,
            credit_usd=key.credit_usd,
            budget_usd=key.budget_usd if key.budget_period else None,
            budget_period=key.budget_period if key.budget_usd is not None else None,
            rpm=key.rpm,
            tpm=key.tpm,
            concurrency=key.concurrency,
            models=models,
            providers=providers,
            data_policy=key.data_policy,
            _model_match=match,
        )

    @property
    def restricts_routing(self) -> bool:
        return self.models is not None or self.providers is not None or self.data_policy is not None

    @property
    def limits_spend(self) -> bool:
        return self.credit_usd is not None or self.budget_usd is not None

    @property
    def needs_admission(self) -> bool:
        """Whether a request must be admitted (counted, reserved for) before it is sent."""
        return (
            self.limits_spend or self.rpm is not None or self.tpm is not None or self.concurrency is not None
        )

    def allows_model(self, model_id: str) -> bool:
        return self._model_match is None or self._model_match.fullmatch(model_id) is not None

    def allows(self, cand: Candidate) -> bool:
        if self._model_match is not None and self._model_match.fullmatch(cand.model.id) is None:
            return False
        if self.providers is not None and cand.endpoint.provider not in self.providers:
            return False
        policy = cand.endpoint.data_policy
        if self.data_policy == "zdr":
            return policy.zero_retention
        if self.data_policy == "no_training":
            return not policy.prompt_training
        return True

    def check_model(self, model_id: str) -> None:
        """The requested model itself must be allowed; fallback models that are not are skipped."""
        if not self.allows_model(model_id):
            raise PermissionDenied(
                f"this API key may not use {model_id}; it may use: {', '.join(self.models or ())}",
                param="model",
            )

    def filter(self, plan: list[Candidate]) -> list[Candidate]:
        """The plan without the endpoints this key may not reach; none left is a 403 saying why."""
        kept = [c for c in plan if self.allows(c)]
        if kept:
            return kept
        rules = []
        if self.providers is not None:
            rules.append(f"providers {', '.join(sorted(self.providers))}")
        if self.data_policy is not None:
            rules.append(f"data policy {self.data_policy}")
        if self.models is not None:
            rules.append(f"models {', '.join(self.models)}")
        served_by = ", ".join(sorted({c.endpoint.provider for c in plan}))
        raise PermissionDenied(
            f"this API key may only use {'; '.join(rules)}, and no endpoint that can serve this request "
            f"does ({served_by} could)",
            code="provider_not_allowed",
        )

    def as_api(self) -> dict[str, Any]:
        return {
            "credit": self.credit_usd,
            "budget": self.budget_usd,
            "budget_period": self.budget_period,
            "rpm": self.rpm,
            "tpm": self.tpm,
            "concurrency": self.concurrency,
            "models": list(self.models) if self.models is not None else None,
            "providers": sorted(self.providers) if self.providers is not None else None,
            "data_policy": self.data_policy,
        }


def _json_list(text: str) -> list[str]:
    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# -- limits set by a person -----------------------------------------------------------------------

# field name (as the CLI's and the API's) -> column
_FIELDS = {
    "name": "name",
    "credit": "credit_usd",
    "budget": "budget_usd",
    "period": "budget_period",
    "budget_period": "budget_period",
    "rpm": "rpm",
    "tpm": "tpm",
    "concurrency": "concurrency",
    "models": "allowed_models",
    "providers": "allowed_providers",
    "data_policy": "data_policy",
    "expires": "expires_at",
    "expires_at": "expires_at",
    "prompt_retention_days": "prompt_retention_days",
    "admin": "is_admin",
}


def limit_changes(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for the limits in ``raw``; ``None`` for a field removes that limit.

    Raises ``InvalidRequest`` naming the field and what it takes."""
    out: dict[str, Any] = {}
    for field, value in raw.items():
        column = _FIELDS.get(field)
        if column is None:
            known = ", ".join(sorted(k for k in _FIELDS if k not in ("budget_period", "expires_at")))
            raise InvalidRequest(f"unknown key field {field!r}; known: {known}", param=field)
        out[column] = _parse(field, column, value)
    if out.get("budget_usd") is not None and "budget_period" not in out:
        out["budget_period"] = "month"
    if out.get("budget_period") is not None and "budget_usd" not in out:
        raise InvalidRequest("a budget period needs a budget: set 'budget' (USD) too", param="budget")
    return out


def _parse(field: str, column: str, value: Any) -> Any:
    if value is None:
        if column == "name":
            raise InvalidRequest("a key needs a name", param=field)
        return False if column == "is_admin" else None
    if column == "name":
        if not isinstance(value, str) or not value.strip() or len(value) > 200:
            raise InvalidRequest("'name' must be a non-empty string of at most 200 characters", param=field)
        if not value.isprintable():
            # A terminal would act on them where the name is listed (escape sequences, bidi overrides).
            raise InvalidRequest(
                "'name' must not contain line breaks or other control characters", param=field
            )
        return value.strip()
    if column in ("credit_usd", "budget_usd"):
        amount = _number(field, value)
        if amount < 0 or not math.isfinite(amount) or amount > 1e9:
            raise InvalidRequest(f"'{field}' must be an amount in USD from 0 to 1e9", param=field)
        return amount
    if column in ("rpm", "tpm", "concurrency", "prompt_retention_days"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise InvalidRequest(f"'{field}' must be a whole number", param=field)
        try:
            number = int(value)
        except ValueError:
            raise InvalidRequest(f"'{field}' must be a whole number, got {value!r}", param=field) from None
        if number < 1 or number > 1_000_000_000:
            raise InvalidRequest(f"'{field}' must be from 1 to 1e9 (leave it out for no limit)", param=field)
        return number
    if column == "budget_period":
        if value not in PERIODS:
            raise InvalidRequest(f"'{field}' must be one of {', '.join(PERIODS)}", param=field)
        return value
    if column in ("allowed_models", "allowed_providers"):
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise InvalidRequest(
                f"'{field}' must be a list of strings or a comma-separated string", param=field
            )
        cleaned = [i.strip() for i in items if i.strip()]
        if not cleaned:
            raise InvalidRequest(f"'{field}' must name at least one (leave it out for no limit)", param=field)
        return json.dumps(cleaned)
    if column == "data_policy":
        if value not in DATA_POLICIES:
            raise InvalidRequest(f"'{field}' must be one of {', '.join(DATA_POLICIES)}", param=field)
        return value
    if column == "expires_at":
        return _instant(field, value)
    if column == "is_admin":
        if not isinstance(value, bool):
            raise InvalidRequest(f"'{field}' must be true or false", param=field)
        return value
    raise AssertionError(column)


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidRequest(f"'{field}' must be a number", param=field)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"'{field}' must be a number, got {value!r}", param=field) from None


def _instant(field: str, value: Any) -> float:
    """Unix seconds from a number or an ISO date/date-time (a bare date means its UTC midnight)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if len(text) == 10:
                day = date.fromisoformat(text)
                return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return moment.timestamp()
    raise InvalidRequest(
        f"'{field}' must be an ISO date such as 2027-01-31 or a date-time such as 2027-01-31T12:00:00Z",
        param=field,
    )
