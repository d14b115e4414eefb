"""The SQL ``PostgresStore`` runs, derived from the record fields as SQLite's is.

A batch's generations and attempts are written with ``COPY`` (binary, one message per table), after one
query for which of the batch's ids are stored already: together several times faster than an INSERT per
row, or than ``unnest`` of one array per column. The aggregate deltas are few rows per batch (endpoints x
minutes), added with an upsert each.

Orderings compare text with ``COLLATE "C"`` (byte order): what SQLite does, whatever the database's locale.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import Any

import msgspec

from tokenmux.store.buckets import (
    ENDPOINT_BUCKET_COLUMNS,
    ENDPOINT_BUCKET_KEY,
    KEY_DAY_COLUMNS,
    KEY_DAY_KEY,
    MINUTE_S,
    MODEL_DAY_COLUMNS,
    MODEL_DAY_KEY,
)
from tokenmux.store.records import (
    ATTEMPT_FIELDS,
    GENERATION_FIELDS,
    KEY_FIELDS,
    AttemptRecord,
    GenerationRecord,
    KeyRecord,
)

# generations: every scalar field, then dropped_params as JSON text.
GEN_SCALARS = tuple(n for n in GENERATION_FIELDS if n not in ("dropped_params", "attempts"))
GEN_COLUMNS = (*GEN_SCALARS, "dropped_params")
gen_scalars = attrgetter(*GEN_SCALARS)
# attempts: generation_id comes from the generation, so an attempt can never point at another one.
ATT_REST = tuple(n for n in ATTEMPT_FIELDS if n != "generation_id")
ATT_COLUMNS = ("generation_id", *ATT_REST)
att_rest = attrgetter(*ATT_REST)
key_values = attrgetter(*KEY_FIELDS)

_C = 'COLLATE "C"'

SELECT_GENERATION = f"SELECT {', '.join(GEN_COLUMNS)} FROM generations WHERE id = $1"
SELECT_ATTEMPTS_OF = (
    f"SELECT {', '.join(ATT_COLUMNS)} FROM attempts WHERE generation_id = ANY($1::text[]) "
    f"ORDER BY generation_id {_C}, attempt"
)
SELECT_ATTEMPTS_SINCE = f"SELECT {', '.join(ATT_COLUMNS)} FROM attempts WHERE started_at >= $1"
ATTEMPTS_SINCE_ORDER = f" ORDER BY started_at, generation_id {_C}, attempt"
SELECT_KEY_GENERATIONS = (
    f"SELECT {', '.join(GEN_COLUMNS)} FROM generations WHERE key_id = $1 ORDER BY created_at DESC LIMIT $2"
)
PRUNE_MINUTE_BUCKETS = f"DELETE FROM stats_endpoint_buckets WHERE span_s = {MINUTE_S} AND start_s < $1"
SELECT_ENDPOINT_COUNTS = (
    "SELECT endpoint, start_s, attempts, successes, failures FROM stats_endpoint_buckets "
    f"WHERE span_s = $1 AND start_s >= $2 ORDER BY span_s, start_s, endpoint {_C}"
)
SELECT_MODEL_DAYS = (
    f"SELECT {', '.join(MODEL_DAY_COLUMNS)} FROM stats_model_days WHERE day >= $1 ORDER BY day, model {_C}"
)
# One statement, so the ids are read from the same snapshot as the costs.
SELECT_KEY_SPEND_LOG = (
    "SELECT day, cost_usd, NULL::text FROM stats_key_days WHERE key_id = $1 "
    "UNION ALL SELECT NULL::text, 0::double precision, id FROM generations WHERE key_id = $1 AND created_at >= $2"
)
SELECT_KEY_DAYS = (
    f"SELECT {', '.join(KEY_DAY_COLUMNS)} FROM stats_key_days "
    f"WHERE key_id = $1 AND day >= $2 ORDER BY day, model {_C}"
)

SELECT_ALL_KEY_DAYS = (
    f"SELECT {', '.join(KEY_DAY_COLUMNS)} FROM stats_key_days "
    f"WHERE day >= $1 ORDER BY day, key_id {_C}, model {_C}"
)
INSERT_CONTENT = (
    "INSERT INTO generation_contents (id, key_id, created_at, request, response) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING"
)
SELECT_CONTENT = "SELECT id, key_id, created_at, request, response FROM generation_contents WHERE id = $1"

INSERT_KEY = (
    f"INSERT INTO api_keys ({', '.join(KEY_FIELDS)}) "
    f"VALUES ({', '.join(f'${i}' for i in range(1, len(KEY_FIELDS) + 1))})"
)
SELECT_KEYS = f"SELECT {', '.join(KEY_FIELDS)} FROM api_keys"
SELECT_ACTIVE_KEY = SELECT_KEYS + " WHERE digest = $1 AND revoked_at IS NULL"
SELECT_ALL_KEYS = SELECT_KEYS + f" ORDER BY created_at, id {_C}"
ACTIVE_KEY_NAME_INDEX = "api_keys_active_name"  # migrations.m001_initial


def _combined(column: str) -> str:
    """How a stored aggregate value and a batch's combine: ``*_min``/``*_max`` keep the extreme (LEAST
    and GREATEST skip a NULL, which means "no sample yet"); counts, sums and histogram bins add."""
    if column.endswith("_min"):
        return f"LEAST(stored.{column}, excluded.{column})"
    if column.endswith("_max"):
        return f"GREATEST(stored.{column}, excluded.{column})"
    return f"stored.{column} + excluded.{column}"


def _upsert_adding(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """INSERT a delta row, or add it to the stored one."""
    updates = ", ".join(f"{column} = {_combined(column)}" for column in columns if column not in key)
    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return (
        f"INSERT INTO {table} AS stored ({', '.join(columns)}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


def _window_sum(column: str) -> str:
    """The same rule over a window's buckets. A sum of integers is numeric in PostgreSQL: cast back to
    bigint, so that Python gets ints, as from SQLite."""
    if column.endswith("_min"):
        return f"min({column})"
    if column.endswith("_max"):
        return f"max({column})"
    return f"sum({column})" if column.endswith("_sum") else f"sum({column})::bigint"


SELECT_STORED_IDS = "SELECT id FROM generations WHERE id = ANY($1::text[])"
UPSERT_ENDPOINT_BUCKET = _upsert_adding(
    "stats_endpoint_buckets", ENDPOINT_BUCKET_COLUMNS, ENDPOINT_BUCKET_KEY
)
UPSERT_MODEL_DAY = _upsert_adding("stats_model_days", MODEL_DAY_COLUMNS, MODEL_DAY_KEY)
UPSERT_KEY_DAY = _upsert_adding("stats_key_days", KEY_DAY_COLUMNS, KEY_DAY_KEY)
_WINDOW_SUMS = ", ".join(_window_sum(c) for c in ENDPOINT_BUCKET_COLUMNS[len(ENDPOINT_BUCKET_KEY) :])
SELECT_ENDPOINT_WINDOWS = (
    f"SELECT span_s, min(start_s), endpoint, {_WINDOW_SUMS} FROM stats_endpoint_buckets "
    f"WHERE span_s = $1 AND start_s >= $2 GROUP BY span_s, endpoint ORDER BY endpoint {_C}"
)


# -- rows to and from records ---------------------------------------------------------------------------


_json = msgspec.json.Encoder()


def generation_row(g: GenerationRecord) -> tuple[Any, ...]:
    # msgspec rather than json.dumps: a tenth of the time, and this runs for every record written.
    dropped = _json.encode(g.dropped_params).decode() if g.dropped_params else "[]"
    return (*gen_scalars(g), dropped)


def attempt_rows(generations: Sequence[GenerationRecord]) -> list[tuple[Any, ...]]:
    """The attempts' rows, each attempt number once per generation (the first kept, as SQLite's
    ON CONFLICT DO NOTHING keeps it): COPY would refuse the whole batch over a repeated one."""
    rows = [(g.id, *att_rest(a)) for g in generations for a in g.attempts]
    if len({(row[0], row[1]) for row in rows}) == len(rows):
        return rows
    first: dict[tuple[Any, Any], tuple[Any, ...]] = {}
    for row in rows:
        first.setdefault((row[0], row[1]), row)
    return list(first.values())


def generation_from_row(row: Mapping[str, Any], attempts: list[AttemptRecord]) -> GenerationRecord:
    values = dict(row)
    values["dropped_params"] = json.loads(values["dropped_params"])
    return GenerationRecord(**values, attempts=attempts)


def attempt_from_row(row: Mapping[str, Any]) -> AttemptRecord:
    return AttemptRecord(**row)


def key_from_row(row: Mapping[str, Any]) -> KeyRecord:
    return KeyRecord(**row)
