"""Who is calling: the API key from ``Authorization: Bearer`` (or Anthropic's ``x-api-key``).

Keys are looked up by their SHA-256 digest. What a lookup found is cached for a few seconds under that
digest (``key_cache.py``: bounded, never the header bytes themselves), so a client's every request but the
first costs one hash and one dict lookup, no database. A revoked key stops working within that time. A
credential longer than any key can be is refused before it is hashed or looked up.

While the database cannot be reached, a key that was seen before keeps working as it was last read (its
limits still apply); an unknown key gets a 503 saying so, never a 401 that would tell its owner to give up.
A lookup waits at most ``lookup_timeout_s``, and after a failed one the database is not asked again for
``_RETRY_S``: a frozen database costs one request a short wait, not every request a long one.

The admin key of the configuration (``gateway.admin_key``) is never stored: its digest is compared in
constant time with the digest of the key presented.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable

from tokenmux.errors import AuthenticationFailed, DatabaseUnavailable, StoreError
from tokenmux.server.auth_failures import AuthFailures
from tokenmux.server.key_cache import KeyCache
from tokenmux.store.base import Store
from tokenmux.store.keys import key_digest
from tokenmux.store.records import KeyRecord

_RETRY_S = 2.0
# Keys this gateway makes are 54 characters; a configured admin key may be longer (then it is the bound).
MAX_KEY_CHARS = 128
_SCHEME_SLACK = 32  # "Bearer " and the spaces a client may put around the key


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
        failures: AuthFailures | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._lookup_timeout_s = lookup_timeout_s
        self._store_down_until = 0.0
        self._admin_digest = key_digest(admin_key).encode() if admin_key else None
        self.max_key_chars = max(MAX_KEY_CHARS, len(admin_key or ""))
        self._max_header_bytes = self.max_key_chars + _SCHEME_SLACK
        self.cache = KeyCache()
        # Every refusal is counted and logged there, and may block the address it came from.
        self.failures = failures or AuthFailures(limit=0)

    @property
    def positive_ttl_s(self) -> float:
        """How long a found key is trusted without asking the database again."""
        return self.cache.found_ttl_s

    @positive_ttl_s.setter
    def positive_ttl_s(self, seconds: float) -> None:
        self.cache.found_ttl_s = seconds

    async def authenticate(self, authorization: bytes | None, api_key: bytes | None = None) -> KeyRecord:
        token = self._token(authorization, api_key)
        digest = hashlib.sha256(token.encode()).digest()
        now = self._clock()
        known, record = self.cache.fresh(digest, now)
        if not known:
            record = await self._look_up(digest)
            self.cache.put(digest, record, now)
        if record is None or record.revoked:
            self.failures.failed("unknown" if record is None else "revoked")
            raise AuthenticationFailed(
                "the API key is not valid (unknown or revoked); check the key you sent"
            )
        if record.expires_at is not None and record.expires_at <= time.time():
            self.failures.failed("expired")
            raise AuthenticationFailed("the API key has expired; ask for a new one")
        return record

    def _token(self, authorization: bytes | None, api_key: bytes | None) -> str:
        """The key presented, refused outright when missing or longer than any key of this gateway."""
        limit = self._max_header_bytes
        if (authorization is not None and len(authorization) > limit) or (
            api_key is not None and len(api_key) > limit
        ):
            raise self._too_long()
        token = bearer_token(authorization, api_key)
        if token is None:
            self.failures.failed("missing")
            raise AuthenticationFailed(
                "no API key: send 'Authorization: Bearer <key>'; create a key with 'tokenmux keys create --name NAME'",
                code="missing_api_key",
            )
        if len(token) > self.max_key_chars:
            raise self._too_long()
        return token

    def _too_long(self) -> AuthenticationFailed:
        self.failures.failed("too_long")
        return AuthenticationFailed(
            f"the API key is longer than any key of this gateway (at most {self.max_key_chars} characters);"
            " check the key you sent"
        )

    async def _look_up(self, digest: bytes) -> KeyRecord | None:
        hex_digest = digest.hex()
        if self._admin_digest is not None and hmac.compare_digest(hex_digest.encode(), self._admin_digest):
            return KeyRecord(
                id=CONFIG_ADMIN_ID,
                name="admin (configuration)",
                digest="",
                display="configured",
                created_at=0.0,
                is_admin=True,
            )
        # After a failed lookup the database is not asked for _RETRY_S, counted from that failure: requests
        # arriving meanwhile do not push the next attempt further away.
        if self._clock() >= self._store_down_until:
            try:
                async with asyncio.timeout(self._lookup_timeout_s):
                    return await self._store.find_key(hex_digest)
            except (StoreError, TimeoutError):
                self._store_down_until = self._clock() + _RETRY_S
        stale = self.cache.last_read(digest)
        if stale is not None:
            return stale  # the database is down: a key seen before keeps working as it was
        raise DatabaseUnavailable(
            "the gateway's database is unavailable, so this API key cannot be checked now; retry shortly"
        )

    def forget(self) -> None:
        self.cache.forget()
