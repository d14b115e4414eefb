"""The disk spool on its own: what it writes reads back field for field, and what it cannot read is set aside,
never taken for records. The recorder's use of it is in test_recorder.py."""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tokenmux.store import AttemptRecord, GenerationRecord
from tokenmux.store.spool import Spool

GenerationFactory = Callable[..., GenerationRecord]  # the make_generation fixture (conftest.py)


def varied_generations(make: GenerationFactory) -> list[GenerationRecord]:
    """Between them, every field of a generation and of an attempt holds something other than its default."""
    served = make("gen-1732634400-served", attempts=3)
    failed = make(
        "gen-1732634401-failed",
        attempts=1,
        key_id=None,
        model=None,
        provider=None,
        status="error",
        http_status=502,
        finish_reason=None,
        error_message='every endpoint failed: upstream answered 503 «ünïcödé» "quoted"\nsecond line',
        ttft_ms=None,
        generation_ms=None,
        throughput_tps=None,
        dropped_params=[],
    )
    failed.attempts[0] = dataclasses.replace(
        failed.attempts[0],
        outcome="error",
        error_class="server_error",
        error_message="503 Service Unavailable",
        upstream_status=503,
        counts_for_uptime=False,
    )
    return [served, failed]


def non_default_fields(records: list[object], record_type: type) -> set[str]:
    set_fields: set[str] = set()
    for field in dataclasses.fields(record_type):
        if field.default is not dataclasses.MISSING:
            default: object = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            set_fields.add(field.name)  # required: always set
            continue
        if any(getattr(r, field.name) != default for r in records):
            set_fields.add(field.name)
    return set_fields


def spooled_names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_records_read_back_exactly_as_written(tmp_path: Path, make_generation: GenerationFactory) -> None:
    generations = varied_generations(make_generation)
    attempts = [a for g in generations for a in g.attempts]
    # The check below means something only if the records really do exercise every field.
    assert non_default_fields(list(generations), GenerationRecord) == {
        f.name for f in dataclasses.fields(GenerationRecord)
    }
    assert non_default_fields(list(attempts), AttemptRecord) == {
        f.name for f in dataclasses.fields(AttemptRecord)
    }

    spool = Spool(tmp_path / "spool")
    path = spool.write(generations)

    read = spool.read(path)
    assert read == generations
    assert [type(a) for g in read for a in g.attempts] == [AttemptRecord] * len(attempts)
    assert read[0].cost_usd == generations[0].cost_usd  # floats exactly, not to a few digits


def test_the_directory_is_made_private_and_files_appear_only_whole(
    tmp_path: Path, make_generation: GenerationFactory
) -> None:
    directory = tmp_path / "not" / "yet" / "there"
    spool = Spool(directory)
    assert spool.pending() == []  # no directory yet: nothing pending, nothing created
    assert not directory.exists()

    path = spool.write([make_generation("gen-1")])

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert spooled_names(directory) == [path.name]  # no temporary file left behind
    assert path.name.startswith("records-") and path.name.endswith(".jsonl")
    assert str(os.getpid()) in path.name


def test_pending_lists_files_oldest_first_and_remove_takes_them_away(
    tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool = Spool(tmp_path)
    written = [spool.write([make_generation(f"gen-{i}")]) for i in range(12)]
    assert len(set(written)) == 12  # unique names even when written within one clock tick
    assert spool.pending() == written

    spool.remove(written[3])
    spool.remove(written[3])  # already gone: not an error
    assert spool.pending() == written[:3] + written[4:]
    assert [g.id for p in spool.pending() for g in spool.read(p)] == [f"gen-{i}" for i in range(12) if i != 3]


def test_an_empty_batch_makes_a_file_that_reads_as_no_records(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.write([])
    assert spool.read(path) == []
    assert spool.pending() == [path]  # not set aside: it is whole, just empty


def cut_inside_the_last_record(data: bytes) -> bytes:
    return data[: len(data) - 40]


def cut_after_the_last_record(data: bytes) -> bytes:
    return data[:-1]  # whole JSON, but the newline that ends every record is missing


def not_json(data: bytes) -> bytes:
    return data.replace(b'"id"', b"\x00\xff", 1)


def json_that_is_not_a_record(data: bytes) -> bytes:
    return data + b'{"id": 42, "created_at": "yesterday"}\n'


@pytest.mark.parametrize(
    "damage", [cut_inside_the_last_record, cut_after_the_last_record, not_json, json_that_is_not_a_record]
)
def test_a_damaged_file_is_set_aside_and_never_read_as_records(
    tmp_path: Path,
    make_generation: GenerationFactory,
    caplog: pytest.LogCaptureFixture,
    damage: Callable[[bytes], bytes],
) -> None:
    spool = Spool(tmp_path)
    before = spool.write([make_generation("gen-before")])
    damaged = spool.write([make_generation("gen-a"), make_generation("gen-b", attempts=2)])
    after = spool.write([make_generation("gen-after")])
    damaged.write_bytes(damage(damaged.read_bytes()))

    with caplog.at_level(logging.WARNING, logger="tokenmux.store.spool"):
        assert spool.read(damaged) == []

    assert not damaged.exists()
    bad = damaged.with_name(damaged.name + ".bad")
    assert bad.exists()
    assert str(damaged) in caplog.text and str(bad) in caplog.text
    assert spool.pending() == [before, after]
    assert [g.id for p in spool.pending() for g in spool.read(p)] == ["gen-before", "gen-after"]


def test_a_file_removed_meanwhile_reads_as_nothing_and_is_not_set_aside(
    tmp_path: Path, make_generation: GenerationFactory
) -> None:
    spool = Spool(tmp_path)
    path = spool.write([make_generation("gen-1")])
    path.unlink()  # another replica replayed it first
    assert spool.read(path) == []
    assert spooled_names(tmp_path) == []


def test_a_temporary_file_left_by_a_crashed_writer_is_set_aside_once_stale(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool = Spool(tmp_path)
    stale = tmp_path / ".records-00000001732634400000000000-7-000000-abcdef.jsonl.tmp"
    fresh = tmp_path / ".records-00000001732634500000000000-8-000000-fedcba.jsonl.tmp"
    stale.write_bytes(b'{"id": "gen-half')
    fresh.write_bytes(b'{"id": "gen-being-written')
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))

    with caplog.at_level(logging.WARNING, logger="tokenmux.store.spool"):
        assert spool.pending() == []

    # The stale one is visible for a person now; the fresh one may still be in the middle of a write.
    assert spooled_names(tmp_path) == [
        fresh.name,
        "records-00000001732634400000000000-7-000000-abcdef.jsonl.bad",
    ]
    assert "stopped before finishing" in caplog.text


def test_a_record_that_cannot_be_encoded_leaves_no_file(
    tmp_path: Path, make_generation: GenerationFactory
) -> None:
    poison = make_generation("gen-poison")
    poison.error_message = object()  # type: ignore[assignment]
    spool = Spool(tmp_path / "spool")
    with pytest.raises(TypeError):
        spool.write([make_generation("gen-fine"), poison])
    assert spool.pending() == []
    assert not (tmp_path / "spool").exists() or spooled_names(tmp_path / "spool") == []
