"""KeyRing: keys found by their digest, lookups cached under the header bytes for a few seconds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tokenmux.errors import AuthenticationFailed
from tokenmux.server.auth import KeyRing
from tokenmux.store import SQLiteStore, new_key
from tokenmux.store.records import KeyRecord


class CountingStore(SQLiteStore):
    """The real store, counting the lookups that reach it."""

    lookups = 0

    async def find_key(self, digest: str) -> KeyRecord | None:
        self.lookups += 1
        return await super().find_key(digest)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CountingStore]:
    store = CountingStore(str(tmp_path / "keys.db"))
    await store.open()
    yield store
    await store.close()


async def test_a_known_key_is_looked_up_once_then_served_from_the_cache(store: CountingStore) -> None:
    secret, record = new_key("app")
    await store.create_key(record)
    keys = KeyRing(store, clock=Clock())
    header = f"Bearer {secret}".encode()
    for _ in range(3):
        assert (await keys.authenticate(header)).id == record.id
    assert store.lookups == 1


async def test_the_cache_keeps_a_found_key_five_seconds_and_a_revocation_then_applies(
    store: CountingStore,
) -> None:
    secret, record = new_key("app")
    await store.create_key(record)
    clock = Clock()
    keys = KeyRing(store, clock=clock)
    header = f"Bearer {secret}".encode()
    await keys.authenticate(header)
    await store.revoke_key(record.id)
    clock.now += 4.9
    assert (await keys.authenticate(header)).id == record.id  # still cached
    clock.now += 0.2
    with pytest.raises(AuthenticationFailed, match="unknown or revoked"):
        await keys.authenticate(header)
    assert store.lookups == 2


async def test_an_unknown_key_is_remembered_for_a_second(store: CountingStore) -> None:
    clock = Clock()
    keys = KeyRing(store, clock=clock)
    secret, record = new_key("late")
    header = f"Bearer {secret}".encode()
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await keys.authenticate(header)
    assert store.lookups == 1
    await store.create_key(record)  # created after the first attempt: found once the second has passed
    clock.now += 1.1
    assert (await keys.authenticate(header)).id == record.id
    assert store.lookups == 2


async def test_headers_that_differ_in_spelling_find_the_same_key(store: CountingStore) -> None:
    secret, record = new_key("app")
    await store.create_key(record)
    keys = KeyRing(store, clock=Clock())
    assert (await keys.authenticate(f"Bearer {secret}".encode())).id == record.id
    assert (await keys.authenticate(f"bearer  {secret} ".encode())).id == record.id
    assert (await keys.authenticate(None, secret.encode())).id == record.id  # x-api-key style
    assert store.lookups == 3


async def test_no_key_is_refused_with_how_to_get_one(store: CountingStore) -> None:
    keys = KeyRing(store, clock=Clock())
    for authorization in (None, b"Bearer ", b"Basic abc"):
        with pytest.raises(AuthenticationFailed, match="tokenmux keys create") as caught:
            await keys.authenticate(authorization)
        assert caught.value.code == "missing_api_key"
    assert store.lookups == 0


async def test_forget_drops_every_cached_lookup(store: CountingStore) -> None:
    secret, record = new_key("app")
    await store.create_key(record)
    keys = KeyRing(store, clock=Clock())
    header = f"Bearer {secret}".encode()
    await keys.authenticate(header)
    keys.forget()
    await keys.authenticate(header)
    assert store.lookups == 2
