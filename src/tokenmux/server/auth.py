"""Who is calling: the API key from ``Authorization: Bearer`` (or Anthropic's ``x-api-key``).

Keys are looked up by their SHA-256 digest. What a lookup found is cached for a few seconds under the
header bytes exactly as they came, so a client's every request but the first costs one dict lookup: no
parsing, no hashing, no database. A revoked key stops working within that time.

While the database cannot be reached, a key that was seen before keeps working as it was last read (its
limits still apply); an unknown key gets a 503 saying so, never a 401 that would tell its owner to give up.
A lookup waits at most ``lookup_timeout_s``, and after a failed one the database is not asked again for
``_RETRY_S``: a frozen database costs one request a short wait, not every request a long one.

The admin key of the configuration (``gateway.admin_key``) is never stored: its digest is compared in
constant time with the digest of the key presented.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import Callable

from tokenmux.errors import AuthenticationFailed, DatabaseUnavailable
from tokenmux.store.base import Store, StoreError
from tokenmux.store.keys import key_digest
from tokenmux.store.records import KeyRecord

_POSITIVE_TTL_S = 5.0
_NEGATIVE_TTL_S = 1.0  # unknown keys too, so a client retrying a wrong key does not hammer the database
_MAX_CACHED = 100_000
_RETRY_S = 2.0


def bearer_token(authorization: bytes | None, api_key: bytes | None = None) -> str | None:
    if authorization:
        scheme, _, token = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if api_key:
        return api_key.decode("latin-1").strip() or None
    return None


CONFIG_ADMIN_ID = "key_admin_config"


class KeyRing:
    def __init__(
        self,
        store: Store,
        *,
        admin_key: str | None = None,
        lookup_timeout_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lookup_timeout_s = lookup_timeout_s
        self.positive_ttl_s = _POSITIVE_TTL_S  # how long a found key is trusted without asking again
        self._store_down_until = 0.0
        self._admin_digest = key_digest(admin_key).encode() if admin_key else None
        # (Authorization header, protocol key header) -> (monotonic expiry, the key found or None)
        self._cache: dict[tuple[bytes | None, bytes | None], tuple[float, KeyRecord | None]] = {}

    async def authenticate(self, authorization: bytes | None, api_key: bytes | None = None) -> KeyRecord:
        raw = (authorization, api_key)
        now = self._clock()
        hit = self._cache.get(raw)
        if hit is not None and hit[0] > now:
            record = hit[1]
        else:
            token = bearer_token(authorization, api_key)
            if token is None:
                raise AuthenticationFailed(
                    "no API key: send 'Authorization: Bearer <key>'; create a key with 'tokenmux keys create --name NAME'",
                    code="missing_api_key",
                )
            record = await self._look_up(raw, token)
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[raw] = (now + (self.positive_ttl_s if record else _NEGATIVE_TTL_S), record)
        if record is None or record.revoked:
            raise AuthenticationFailed(
                "the API key is not valid (unknown or revoked); check the key you sent"
            )
        if record.expires_at is not None and record.expires_at <= time.time():
            raise AuthenticationFailed("the API key has expired; ask for a new one")
        return record

    async def _look_up(self, raw: tuple[bytes | None, bytes | None], token: str) -> KeyRecord | None:
        digest = key_digest(token)
        if self._admin_digest is not None and hmac.compare_digest(digest.encode(), self._admin_digest):
            return KeyRecord(
                id=CONFIG_ADMIN_ID,
                name="admin (configuration)",
                digest="",
                display="configured",
                created_at=0.0,
                is_admin=True,
            )
        try:
            if self._clock() < self._store_down_until:
                raise StoreError("the database failed a moment ago")
            async with asyncio.timeout(self._lookup_timeout_s):
                return await self._store.find_key(digest)
        except (StoreError, TimeoutError):
            self._store_down_until = max(self._store_down_until, self._clock() + _RETRY_S)
            stale = self._cache.get(raw)
            if stale is not None and stale[1] is not None:
                return stale[1]  # the database is down: a key seen before keeps working as it was
            raise DatabaseUnavailable(
                "the gateway's database is unavailable, so this API key cannot be checked now; retry shortly"
            ) from None

    def forget(self) -> None:
        self._cache.clear()
