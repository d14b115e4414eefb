"""What every ``Store`` must do, run on each backend: SQLite, and PostgreSQL when it is running.

Each test gets a fresh database (a file, or a schema of its own); backend-specific behaviour is tested in
test_store_sqlite.py and test_store_postgres.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from postgres_support import StoreDatabase
from tokenmux.store import GenerationRecord, KeyNameTaken, Store, StoreError, key_digest, new_key
from tokenmux.store.migrations import MIGRATIONS
from tokenmux.store.records import ATTEMPT_FIELDS, GENERATION_FIELDS, KEY_FIELDS, ContentRecord

GenerationFactory = Callable[..., GenerationRecord]  # the make_generation fixture (conftest.py)


@pytest.fixture
async def store(database: StoreDatabase) -> AsyncIterator[Store]:
    async with database.store() as opened:
        yield opened


# -- request log --------------------------------------------------------------------------------------


async def test_batch_round_trips_every_field(store: Store, make_generation: GenerationFactory) -> None:
    failed_over = make_generation("gen-1-a", attempts=3)
    all_failed = make_generation(
        "gen-1-b",
        model=None,
        provider=None,
        status="error",
        http_status=502,
        error_message="every attempt failed",
        finish_reason=None,
        ttft_ms=None,
        generation_ms=None,
        throughput_tps=None,
        dropped_params=[],
        key_id=None,
        streamed=False,
    )
    await store.write_batch([failed_over, all_failed])

    got = await store.get_generation("gen-1-a")
    assert got == failed_over
    assert got is not None
    assert [a.attempt for a in got.attempts] == [1, 2, 3]
    assert [a.provider for a in got.attempts] == ["fallback1", "fallback2", "openai"]
    assert got.dropped_params == ["logit_bias", "top_logprobs"]
    assert isinstance(got.streamed, bool) and isinstance(got.attempts[0].counts_for_uptime, bool)
    assert [a.counts_for_uptime for a in got.attempts] == [True, False, True]

    assert await store.get_generation("gen-1-b") == all_failed
    assert await store.get_generation("gen-unknown") is None


async def test_rewriting_a_stored_generation_is_a_no_op(
    store: Store, make_generation: GenerationFactory
) -> None:
    first = make_generation("gen-2-a", attempts=2)
    await store.write_batch([first])
    # A retried batch, with the same generation changed: the stored one stays as it was.
    changed = make_generation("gen-2-a", attempts=2, cost_usd=99.0)
    await store.write_batch([changed, make_generation("gen-2-b")])

    assert await store.get_generation("gen-2-a") == first
    assert await store.get_generation("gen-2-b") is not None
    stored = await store.attempts_since(0.0)
    assert sorted((a.generation_id, a.attempt) for a in stored) == [
        ("gen-2-a", 1),
        ("gen-2-a", 2),
        ("gen-2-b", 1),
    ]


async def test_an_id_repeated_in_one_batch_is_stored_once_as_first_given(
    store: Store, make_generation: GenerationFactory
) -> None:
    first = make_generation("gen-2-c", cost_usd=1.0)
    await store.write_batch([first, make_generation("gen-2-c", attempts=2, cost_usd=2.0)])
    assert await store.get_generation("gen-2-c") == first
    assert len(await store.attempts_since(0.0)) == 1


async def test_attempts_take_the_generation_id_of_their_generation(
    store: Store, make_generation: GenerationFactory
) -> None:
    gen = make_generation("gen-3-a", attempts=2)
    gen.attempts[0].generation_id = "gen-someone-else"
    await store.write_batch([gen])
    got = await store.get_generation("gen-3-a")
    assert got is not None
    assert [a.generation_id for a in got.attempts] == ["gen-3-a", "gen-3-a"]


async def test_attempts_since_filters_by_time_and_endpoint(
    store: Store, make_generation: GenerationFactory
) -> None:
    await store.write_batch(
        [
            make_generation("gen-old", attempts=2, created_at=1000.0),
            make_generation("gen-new", attempts=2, created_at=2000.0),
        ]
    )
    recent = await store.attempts_since(1500.0)
    assert [(a.generation_id, a.attempt) for a in recent] == [("gen-new", 1), ("gen-new", 2)]

    served = await store.attempts_since(0.0, endpoint="openai/gpt-4.1-nano@openai")
    assert [(a.generation_id, a.outcome) for a in served] == [("gen-old", "success"), ("gen-new", "success")]


async def test_recent_generations_are_the_keys_newest_with_their_attempts(
    store: Store, make_generation: GenerationFactory
) -> None:
    mine = [make_generation(f"gen-11-{n}", attempts=n, created_at=1000.0 + n) for n in (1, 2, 3)]
    other = make_generation("gen-11-x", key_id="key_other", created_at=2000.0)
    await store.write_batch([*mine, other])
    newest = await store.recent_generations("key_0123456789abcdef", limit=2)
    assert newest == [mine[2], mine[1]]
    assert await store.recent_generations("key_nobody") == []


async def test_writes_submitted_together_are_applied_in_order(
    store: Store, make_generation: GenerationFactory
) -> None:
    # The second batch repeats the first's id: whichever is written first wins, and it must be the first.
    first = make_generation("gen-8-a", cost_usd=1.0)
    second = make_generation("gen-8-a", cost_usd=2.0)
    await asyncio.gather(store.write_batch([first]), store.write_batch([second]))
    got = await store.get_generation("gen-8-a")
    assert got is not None and got.cost_usd == 1.0


# -- schema and lifecycle -------------------------------------------------------------------------------


async def test_tables_have_a_column_for_every_record_field(store: Store, database: StoreDatabase) -> None:
    assert set(await database.columns("generations")) == set(GENERATION_FIELDS) - {"attempts"}
    assert set(await database.columns("attempts")) == set(ATTEMPT_FIELDS)
    assert set(await database.columns("api_keys")) == set(KEY_FIELDS)


async def test_opening_twice_applies_migrations_once_and_keeps_data(
    database: StoreDatabase, make_generation: GenerationFactory
) -> None:
    async with database.store() as first:
        await first.write_batch([make_generation("gen-5-a")])
    applied = await database.rows("SELECT name, applied_at FROM _migrations ORDER BY name")
    async with database.store() as second:
        assert await second.get_generation("gen-5-a") is not None

    assert [name for name, _ in applied] == sorted(m.__name__ for m in MIGRATIONS)
    assert await database.rows("SELECT name, applied_at FROM _migrations ORDER BY name") == applied


async def test_using_a_store_that_is_not_open_says_so(
    database: StoreDatabase, make_generation: GenerationFactory
) -> None:
    store = database.store()
    with pytest.raises(StoreError, match="not open"):
        await store.write_batch([make_generation("gen-6-a")])
    with pytest.raises(StoreError, match="not open"):
        await store.get_generation("gen-6-a")


async def test_ping_answers_only_while_open(database: StoreDatabase) -> None:
    store = database.store()
    assert not await store.ping()
    await store.open()
    assert await store.ping()
    await store.close()
    assert not await store.ping()
    await store.close()  # twice is fine


# -- keys -----------------------------------------------------------------------------------------------


async def test_keys_create_find_list_revoke(store: Store) -> None:
    secret, record = new_key("ci", now=100.0)
    record.rpm = 60
    record.allowed_models = '["openai/*"]'
    admin_secret, admin = new_key("admin", is_admin=True, now=200.0)
    await store.create_key(record)
    await store.create_key(admin)

    assert await store.find_key(key_digest(secret)) == record
    found_admin = await store.find_key(key_digest(admin_secret))
    assert found_admin is not None and found_admin.is_admin is True
    assert await store.find_key(key_digest("sk-tm-not-a-key")) is None
    assert [k.name for k in await store.list_keys()] == ["ci", "admin"]

    assert await store.revoke_key("ci") is True
    assert await store.find_key(key_digest(secret)) is None
    assert await store.revoke_key("ci") is False  # nothing active by that name any more
    assert await store.revoke_key(admin.id) is True
    assert await store.revoke_key("nobody") is False
    listed = await store.list_keys()
    assert [k.revoked for k in listed] == [True, True]
    assert all(k.revoked_at is not None for k in listed)


async def test_an_active_key_name_cannot_be_taken_twice(store: Store) -> None:
    await store.create_key(new_key("deploy")[1])
    with pytest.raises(KeyNameTaken, match="'deploy' already exists"):
        await store.create_key(new_key("deploy")[1])

    assert await store.revoke_key("deploy")
    secret, again = new_key("deploy")
    await store.create_key(again)
    assert await store.find_key(key_digest(secret)) == again
    assert len(await store.list_keys()) == 2


async def test_a_repeated_key_id_is_refused_but_not_as_a_name_clash(store: Store) -> None:
    _, first = new_key("one")
    _, second = new_key("two")
    second.id = first.id
    await store.create_key(first)
    with pytest.raises(StoreError, match="already exists") as caught:
        await store.create_key(second)
    assert not isinstance(caught.value, KeyNameTaken)


async def test_revoking_by_id_does_not_touch_a_key_named_like_that_id(store: Store) -> None:
    _, target = new_key("target")
    _, lookalike = new_key(target.id)
    await store.create_key(target)
    await store.create_key(lookalike)
    assert await store.revoke_key(target.id)
    by_name = {k.name: k for k in await store.list_keys()}
    assert by_name["target"].revoked and not by_name[target.id].revoked


async def test_keys_are_read_and_updated_by_id_or_name(store: Store) -> None:
    _, first = new_key("alpha")
    _, second = new_key("beta")
    await store.create_key(first)
    await store.create_key(second)
    found = await store.get_key("alpha")
    assert found is not None and found.id == first.id
    updated = await store.update_key(first.id, {"rpm": 10, "credit_usd": 2.5, "allowed_models": '["a/*"]'})
    assert updated is not None and updated.rpm == 10 and updated.credit_usd == 2.5
    assert updated.allowed_models == '["a/*"]' and updated.digest == first.digest
    cleared = await store.update_key("alpha", {"rpm": None})
    assert cleared is not None and cleared.rpm is None and cleared.credit_usd == 2.5
    with pytest.raises(KeyNameTaken):
        await store.update_key("alpha", {"name": "beta"})
    with pytest.raises(StoreError):
        await store.update_key("alpha", {"digest": "x"})
    assert await store.update_key("nobody", {"rpm": 1}) is None
    await store.revoke_key("beta")
    assert await store.get_key("beta") is None


async def test_stored_prompts_round_trip_and_are_purged_by_key_and_age(store: Store) -> None:
    rows = [
        ContentRecord(id="g1", key_id="k1", created_at=100.0, request='{"m":1}', response='{"a":1}'),
        ContentRecord(id="g2", key_id="k1", created_at=200.0, request="{}", response="{}"),
        ContentRecord(id="g3", key_id="k2", created_at=50.0, request="{}", response="{}"),
    ]
    await store.write_contents(rows)
    await store.write_contents(rows[:1])  # a repeated id is left as it is
    assert await store.get_contents("g1") == rows[0]
    assert sorted(await store.content_key_ids()) == ["k1", "k2"]
    assert await store.purge_contents("k1", 150.0) == 1
    assert await store.get_contents("g1") is None and await store.get_contents("g2") is not None
    assert await store.purge_contents("k2", float("inf")) == 1


async def test_all_key_days_cover_every_key(store: Store, make_generation: GenerationFactory) -> None:
    await store.write_batch([make_generation("gen-a", key_id="k1"), make_generation("gen-b", key_id="k2")])
    days = await store.all_key_days("2000-01-01")
    assert {d.key_id for d in days} == {"k1", "k2"}
