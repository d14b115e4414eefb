"""KeyRing: keys found by their digest, lookups cached under that digest for a few seconds, in bounds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clock_support import Clock
from tokenmux.errors import AuthenticationFailed, DatabaseUnavailable
from tokenmux.server.auth import KeyRing
from tokenmux.store import SQLiteStore, new_key
from tokenmux.store.base import StoreError
from tokenmux.store.records import KeyRecord


class CountingStore(SQLiteStore):
    """The real store, counting the lookups that reach it."""

    lookups = 0

    async def find_key(self, digest: str) -> KeyRecord | None:
        self.lookups += 1
        return await super().find_key(digest)


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


async def test_headers_that_differ_in_spelling_find_the_same_key_with_one_lookup(
    store: CountingStore,
) -> None:
    secret, record = new_key("app")
    await store.create_key(record)
    keys = KeyRing(store, clock=Clock())
    assert (await keys.authenticate(f"Bearer {secret}".encode())).id == record.id
    assert (await keys.authenticate(f"bearer  {secret} ".encode())).id == record.id
    assert (await keys.authenticate(None, secret.encode())).id == record.id  # x-api-key style
    assert store.lookups == 1  # cached under the key's digest, not under the header as spelled


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


async def test_a_key_longer_than_any_key_is_refused_before_lookup(store: CountingStore) -> None:
    keys = KeyRing(store, clock=Clock())
    for authorization, api_key in (
        (b"Bearer sk-tm-" + b"a" * 200, None),
        (b"Bearer " + b"b" * 1_000_000, None),
        (None, b"c" * 5000),
    ):
        with pytest.raises(AuthenticationFailed, match="longer than any key") as caught:
            await keys.authenticate(authorization, api_key)
        assert caught.value.status == 401
    assert store.lookups == 0
    assert len(keys.cache) == 0


async def test_a_long_configured_admin_key_still_works(store: CountingStore) -> None:
    admin = "admin-" + "x" * 300
    keys = KeyRing(store, admin_key=admin, clock=Clock())
    assert (await keys.authenticate(f"Bearer {admin}".encode())).is_admin
    with pytest.raises(AuthenticationFailed, match="longer than any key"):
        await keys.authenticate(f"Bearer {admin}y".encode())


async def test_a_flood_of_wrong_keys_stays_within_the_cache_bounds(store: CountingStore) -> None:
    """Distinct wrong keys each cost the cache a digest, at most ``max_refused`` of them, and never push
    out the keys that work."""
    clock = Clock()
    keys = KeyRing(store, clock=clock)
    keys.cache.max_refused = 50
    secret, record = new_key("app")
    await store.create_key(record)
    await keys.authenticate(f"Bearer {secret}".encode())
    for n in range(500):
        with pytest.raises(AuthenticationFailed):
            await keys.authenticate(f"Bearer sk-tm-wrong-{n:0100d}".encode())
    assert len(keys.cache._refused) == 50
    assert all(len(digest) == 32 for digest in keys.cache._refused)  # digests, not the headers
    lookups = store.lookups
    assert (await keys.authenticate(f"Bearer {secret}".encode())).id == record.id
    assert store.lookups == lookups  # the working key is still cached


async def test_expired_refusals_are_evicted(store: CountingStore) -> None:
    clock = Clock()
    keys = KeyRing(store, clock=clock)
    for n in range(20):
        with pytest.raises(AuthenticationFailed):
            await keys.authenticate(f"Bearer wrong-{n}".encode())
    assert len(keys.cache._refused) == 20
    clock.now += 1.5  # past the second a refusal is remembered
    with pytest.raises(AuthenticationFailed):
        await keys.authenticate(b"Bearer wrong-again")
    assert len(keys.cache._refused) == 1


async def test_found_keys_are_bounded_and_kept_past_their_ttl_only_as_a_last_reading(
    store: CountingStore,
) -> None:
    clock = Clock()
    keys = KeyRing(store, clock=clock)
    keys.cache.max_found = 3
    secrets = []
    for n in range(5):
        secret, record = new_key(f"app-{n}")
        await store.create_key(record)
        secrets.append(secret)
        await keys.authenticate(f"Bearer {secret}".encode())
    assert len(keys.cache._found) == 3  # the two oldest made room
    clock.now += keys.cache.keep_stale_s + 10
    secret, record = new_key("late")
    await store.create_key(record)
    await keys.authenticate(f"Bearer {secret}".encode())
    assert len(keys.cache._found) == 1  # readings older than keep_stale_s went at the next insertion


class FailingStore(CountingStore):
    """The real store, failing its lookups while ``down``."""

    down = True

    async def find_key(self, digest: str) -> KeyRecord | None:
        self.lookups += 1
        if self.down:
            raise StoreError("the database is down")
        return await SQLiteStore.find_key(self, digest)


async def test_the_database_is_asked_again_two_seconds_after_a_failure_however_often_keys_come(
    tmp_path: Path,
) -> None:
    store = FailingStore(str(tmp_path / "keys.db"))
    await store.open()
    try:
        secret, record = new_key("app")
        await store.create_key(record)
        clock = Clock()
        keys = KeyRing(store, clock=clock)
        header = f"Bearer {secret}".encode()
        with pytest.raises(DatabaseUnavailable):
            await keys.authenticate(header)
        store.down = False
        for _ in range(19):  # a request every 0.1 s: none of them asks the database, or delays the next ask
            clock.now += 0.1
            with pytest.raises(DatabaseUnavailable):
                await keys.authenticate(header)
        assert store.lookups == 1
        clock.now += 0.1
        assert (await keys.authenticate(header)).id == record.id
        assert store.lookups == 2
    finally:
        await store.close()
