"""Making API keys and the digest they are stored and looked up by.

A key is 192 random bits, so a plain SHA-256 is enough to make the stored digest useless to an attacker
(there is nothing to brute-force), and being unsalted it can be looked up directly on every request.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from tokenmux.store.records import KeyRecord

KEY_PREFIX = "sk-tm-"  # recognisable in logs and by secret scanners
DISPLAY_CHARS = 12


def key_digest(secret: str) -> str:
    """The hex SHA-256 a key is stored and found by."""
    return hashlib.sha256(secret.encode()).hexdigest()


def display_of(secret: str) -> str:
    """Enough of a key to recognise it in a list, too little to use it."""
    return secret[:DISPLAY_CHARS] + "…"


def new_key(name: str, *, is_admin: bool = False, now: float | None = None) -> tuple[str, KeyRecord]:
    """A fresh secret and the record to store for it. The secret is shown once and never stored."""
    secret = KEY_PREFIX + secrets.token_hex(24)
    record = KeyRecord(
        id="key_" + secrets.token_hex(8),
        name=name,
        digest=key_digest(secret),
        display=display_of(secret),
        created_at=time.time() if now is None else now,
        is_admin=is_admin,
    )
    return secret, record
