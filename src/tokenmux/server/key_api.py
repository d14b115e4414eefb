"""``GET /api/v1/key`` for every key, and the management API for admin keys.

    GET    /api/v1/key              the calling key: limits, spend, remaining credit and budget, rates
    GET    /api/v1/keys             every key (admin)
    POST   /api/v1/keys             create a key; the answer holds the secret, shown this once (admin)
    GET    /api/v1/keys/{id}        one key by id or name, with its standing (admin)
    PATCH  /api/v1/keys/{id}        change its name or limits; null removes a limit (admin)
    DELETE /api/v1/keys/{id}        revoke it (admin)
    GET    /api/v1/usage?by=key|model&since=YYYY-MM-DD    spend and tokens per key or per model (admin)

A key without admin rights gets 403 on every admin route. Bodies never carry a secret except the one
answer to POST, and never a digest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote

import msgspec

from tokenmux.asgi import Receive, Scope, Send, header, read_body, send_bytes
from tokenmux.errors import InvalidRequest, KeyNameTaken, NotFound, PermissionDenied
from tokenmux.json_codec import encode_json
from tokenmux.limits.key_limits import KeyLimits, limit_changes
from tokenmux.limits.ledger import Ledger
from tokenmux.limits.money import period_end, to_usd
from tokenmux.server.auth import KeyRing
from tokenmux.server.key_limits_cache import KeyLimitsCache
from tokenmux.store.base import Store
from tokenmux.store.buckets import KeyDay
from tokenmux.store.keys import new_key
from tokenmux.store.records import KeyRecord, iso_utc

KEYS_PREFIX = "/api/v1/keys/"
_MAX_BODY = 64 * 1024


def key_json(key: KeyRecord) -> dict[str, Any]:
    """A key as the API shows it: never the secret, never its digest."""
    limits = KeyLimits.of(key)
    return {
        "id": key.id,
        "name": key.name,
        "key": key.display,
        "is_admin": key.is_admin,
        "created_at": iso_utc(key.created_at),
        "expires_at": iso_utc(key.expires_at) if key.expires_at is not None else None,
        "revoked_at": iso_utc(key.revoked_at) if key.revoked_at is not None else None,
        "prompt_retention_days": key.prompt_retention_days,
        "limits": limits.as_api(),
    }


class KeyApi:
    def __init__(
        self,
        *,
        keys: KeyRing,
        key_limits: KeyLimitsCache,
        ledger: Ledger,
        store: Store,
        key_changed: Callable[[str], None],
    ) -> None:
        self.keys = keys
        self.key_limits = key_limits
        self.ledger = ledger
        self.store = store
        # Told the id of a key changed or revoked here, so that no cached copy outlives the change.
        self.key_changed = key_changed

    async def _caller(self, scope: Scope) -> KeyRecord:
        return await self.keys.authenticate(header(scope, b"authorization"), header(scope, b"x-api-key"))

    async def _admin(self, scope: Scope) -> KeyRecord:
        key = await self._caller(scope)
        if not key.is_admin:
            raise PermissionDenied(
                "this route needs an admin key (tokenmux keys create --admin, or gateway.admin_key)",
                code="admin_required",
            )
        return key

    # -- the calling key ----------------------------------------------------------------------------

    async def current_key(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = await self._caller(scope)
        await send_bytes(send, 200, encode_json({"data": await self.standing(key)}))

    async def standing(self, key: KeyRecord) -> dict[str, Any]:
        """What ``GET /api/v1/key`` says of a key: OpenRouter's fields first, then ours."""
        limits = self.key_limits.of(key)
        spend = await self.ledger.spend(limits)
        usage = to_usd(spend.spent)
        credit = limits.credit_usd
        budget: dict[str, Any] | None = None
        if limits.budget_usd is not None and limits.budget_period is not None:
            period_spent = to_usd(spend.period_spent or 0)
            budget = {
                "limit": limits.budget_usd,
                "period": limits.budget_period,
                "usage": period_spent,
                "remaining": max(limits.budget_usd - period_spent, 0.0),
                "resets_at": period_end(limits.budget_period, time.time()).isoformat().replace("+00:00", "Z"),
            }
        body = key_json(key)
        body.update(
            {
                "label": key.name,
                "limit": credit,
                "limit_remaining": None if credit is None else max(credit - usage, 0.0),
                "limit_reset": limits.budget_period,
                "usage": usage,
                "rate_limit": {"rpm": limits.rpm, "tpm": limits.tpm, "concurrency": limits.concurrency},
                "budget": budget,
                "reserved": to_usd(spend.reserved),
                "in_flight": spend.in_flight,
                "requests_last_minute": round(spend.requests_last_minute, 3),
                "tokens_last_minute": round(spend.tokens_last_minute, 3),
                # "this_replica" while Redis is unavailable: each replica then admits from its own books
                "figures": spend.figures,
            }
        )
        return body

    # -- management ---------------------------------------------------------------------------------

    async def list_keys(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._admin(scope)
        keys = await self.store.list_keys()
        await send_bytes(send, 200, encode_json({"data": [key_json(k) for k in keys]}))

    async def create_key(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._admin(scope)
        fields = await _json_object(scope, receive)
        name = fields.pop("name", None)
        if not isinstance(name, str):
            raise InvalidRequest("a new key needs a 'name'", param="name")
        changes = limit_changes({"name": name, **fields})
        secret, record = new_key(changes.pop("name"))
        for column, value in changes.items():
            setattr(record, column, value)
        try:
            await self.store.create_key(record)
        except KeyNameTaken:
            raise InvalidRequest(
                f"an active key named {record.name!r} exists; revoke it or choose another name",
                param="name",
                code="name_taken",
            ) from None
        body = {"data": key_json(record), "key": secret}
        await send_bytes(send, 201, encode_json(body))

    async def key_route(self, scope: Scope, receive: Receive, send: Send) -> None:
        """GET, PATCH and DELETE on ``/api/v1/keys/{id or name}``."""
        await self._admin(scope)
        ident = unquote(scope["path"][len(KEYS_PREFIX) :])
        store = self.store
        method = scope["method"]
        if method == "GET":
            key = await store.get_key(ident)
            if key is None:
                raise _no_key(ident)
            await send_bytes(send, 200, encode_json({"data": await self.standing(key)}))
        elif method == "PATCH":
            changes = limit_changes(await _json_object(scope, receive))
            try:
                key = await store.update_key(ident, changes)
            except KeyNameTaken:
                raise InvalidRequest(
                    f"an active key named {changes.get('name')!r} exists", param="name", code="name_taken"
                ) from None
            if key is None:
                raise _no_key(ident)
            self.key_changed(key.id)
            await send_bytes(send, 200, encode_json({"data": key_json(key)}))
        elif method == "DELETE":
            key = await store.get_key(ident)
            if key is None or not await store.revoke_key(key.id):
                raise _no_key(ident)
            self.key_changed(key.id)
            await send_bytes(send, 200, encode_json({"data": {"id": key.id, "revoked": True}}))
        else:
            raise NotFound(f"no route {method} {scope['path']}; keys take GET, PATCH and DELETE")

    async def usage(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._admin(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        by = (query.get("by") or ["key"])[0]
        if by not in ("key", "model"):
            raise InvalidRequest("'by' must be 'key' or 'model'", param="by")
        since = (query.get("since") or [""])[0] or (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
        try:
            datetime.strptime(since, "%Y-%m-%d")
        except ValueError:
            raise InvalidRequest("'since' must be a date such as 2026-11-01", param="since") from None
        days = await self.store.all_key_days(since)
        names = {k.id: k.name for k in await self.store.list_keys()}
        data = usage_rows(days, by, names)
        await send_bytes(send, 200, encode_json({"data": data, "since": since, "by": by}))


def usage_rows(days: list[KeyDay], by: str, names: Mapping[str, str]) -> list[dict[str, Any]]:
    """Requests, tokens and cost summed per key (with its name) or per model, dearest first."""
    rows: dict[str, dict[str, Any]] = {}
    for day in days:
        group = day.key_id if by == "key" else day.model
        row = rows.get(group)
        if row is None:
            row = rows[group] = {
                by: group,
                "requests": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost": 0.0,
            }
            if by == "key":
                row["name"] = names.get(group)
        row["requests"] += day.requests
        row["prompt_tokens"] += day.prompt_tokens
        row["completion_tokens"] += day.completion_tokens
        row["cost"] += day.cost_usd
    return sorted(rows.values(), key=lambda r: -r["cost"])


def _no_key(ident: str) -> NotFound:
    return NotFound(f"no active key with id or name {ident!r}", code="key_not_found")


async def _json_object(scope: Scope, receive: Receive) -> dict[str, Any]:
    body = await read_body(scope, receive, _MAX_BODY)
    try:
        value = msgspec.json.decode(body) if body else {}
    except msgspec.DecodeError:
        raise InvalidRequest("the body must be a JSON object") from None
    if not isinstance(value, Mapping):
        raise InvalidRequest("the body must be a JSON object")
    return dict(value)
