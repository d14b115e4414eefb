"""The storage contract: what the recorder, the server and the CLI may assume of every database.

SQLite (``sqlite.py``) is the embedded default, PostgreSQL (``postgres.py``) the shared one for replicas;
``url.open_store`` picks one by URL. Nothing here is called on a request's response path except
``find_key`` (which the auth layer is expected to cache); request records arrive through ``Recorder``.

Errors: every method may raise ``StoreError``. ``StoreUnavailable`` means the database could not be
reached or written just now and the same call may succeed later (the recorder keeps its records and
retries); any other exception from ``write_batch`` means the batch itself was refused.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from tokenmux.errors import StoreError
from tokenmux.store.buckets import BucketCounts, EndpointBucket, KeyDay, ModelDay
from tokenmux.store.records import KEY_FIELDS, AttemptRecord, ContentRecord, GenerationRecord, KeyRecord

# What identifies a key and its history; everything else (name, limits, admin) may be changed.
_FIXED_KEY_COLUMNS = frozenset({"id", "digest", "display", "created_at", "revoked_at"})


def updatable_columns(changes: Mapping[str, Any]) -> list[str]:
    """The columns of ``changes`` after checking an update may set each of them."""
    refused = sorted(c for c in changes if c in _FIXED_KEY_COLUMNS or c not in KEY_FIELDS)
    if refused:
        raise StoreError(f"cannot change {', '.join(refused)} of a key")
    return list(changes)


class Store(ABC):
    """A request log and key table behind one connection string. ``open()`` before use (or ``async with``)."""

    @abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date (runs pending migrations)."""

    @abstractmethod
    async def close(self) -> None:
        """Finish queued writes and release connections. Safe to call twice."""

    @abstractmethod
    async def ping(self) -> bool:
        """True when the database answers now. Never raises (for ``/ready``)."""

    @abstractmethod
    async def write_batch(self, generations: Sequence[GenerationRecord]) -> None:
        """Store generations with their attempts in one transaction. Writing a generation id that is
        already stored is a no-op, so a batch may be retried after an ambiguous failure.

        The same transaction adds the new generations (only those) to the aggregate tables, computed by
        ``tokenmux.store.buckets.aggregate``: the figures can never disagree with the log."""

    @abstractmethod
    async def get_generation(self, generation_id: str) -> GenerationRecord | None:
        """One generation with its attempts in the order they were tried, or None."""

    @abstractmethod
    async def attempts_since(self, since: float, *, endpoint: str | None = None) -> list[AttemptRecord]:
        """Attempts started at or after ``since`` (unix seconds), oldest first; for rebuilding live
        figures after a restart."""

    # -- aggregates (tokenmux.store.buckets), written by write_batch with the log -----------------------

    @abstractmethod
    async def endpoint_windows(self, span_s: int, since_s: int) -> list[EndpointBucket]:
        """Per endpoint, its buckets of ``span_s`` seconds (60 or 3600) starting at or after ``since_s``
        summed into one (``start_s`` is the earliest of them). Reads bucket rows only."""

    @abstractmethod
    async def endpoint_counts(self, span_s: int, since_s: int) -> list[BucketCounts]:
        """The counts of every endpoint's buckets of ``span_s`` seconds starting at or after ``since_s``."""

    @abstractmethod
    async def model_days(self, since_day: str) -> list[ModelDay]:
        """Tokens per model per UTC day from ``since_day`` ("YYYY-MM-DD") on, oldest first."""

    @abstractmethod
    async def key_days(self, key_id: str, since_day: str) -> list[KeyDay]:
        """One key's requests, tokens and cost per UTC day per model from ``since_day`` on, oldest first."""

    @abstractmethod
    async def key_spend_log(self, key_id: str, ids_since: float) -> tuple[list[tuple[str, float]], list[str]]:
        """One key's cost per UTC day (one row per day and model, oldest first), and the ids of its
        generations created at ``ids_since`` (unix seconds) or later, read at one moment: the ids are those
        of the generations the costs include (the shared ledger's seed, ``limits/redis_ledger.py``)."""

    @abstractmethod
    async def recent_generations(self, key_id: str, limit: int = 20) -> list[GenerationRecord]:
        """The key's latest ``limit`` generations with their attempts, newest first."""

    @abstractmethod
    async def create_key(self, record: KeyRecord) -> None:
        """Store a new key. Raises ``KeyNameTaken`` when an active key already has its name."""

    @abstractmethod
    async def find_key(self, digest: str) -> KeyRecord | None:
        """The key with this digest if it exists and is not revoked. Expiry and limits are the caller's."""

    @abstractmethod
    async def list_keys(self) -> list[KeyRecord]:
        """Every key, revoked ones included, oldest first."""

    @abstractmethod
    async def revoke_key(self, id_or_name: str) -> bool:
        """Revoke the active key with this id or name; False when there is none."""

    @abstractmethod
    async def get_key(self, id_or_name: str) -> KeyRecord | None:
        """The active key with this id, else the active key with this name, else None."""

    @abstractmethod
    async def update_key(self, id_or_name: str, changes: Mapping[str, Any]) -> KeyRecord | None:
        """Set the given columns (limits, name) of the active key with this id or name and return it as
        stored now; None when there is no such key. Raises ``KeyNameTaken`` for a name in use."""

    @abstractmethod
    async def all_key_days(self, since_day: str) -> list[KeyDay]:
        """Every key's requests, tokens and cost per UTC day per model from ``since_day`` on."""

    # -- prompts and answers, kept only for keys that opt in ------------------------------------------

    @abstractmethod
    async def write_contents(self, contents: Sequence[ContentRecord]) -> None:
        """Store prompts and answers; an id already stored is left as it is."""

    @abstractmethod
    async def get_contents(self, generation_id: str) -> ContentRecord | None:
        """The stored prompt and answer of one generation, or None."""

    @abstractmethod
    async def purge_contents(self, key_id: str, before: float) -> int:
        """Delete the key's stored prompts and answers created before ``before`` (unix seconds); return how
        many went. ``before`` = infinity deletes them all."""

    @abstractmethod
    async def content_key_ids(self) -> list[str]:
        """The ids of keys that have stored prompts and answers."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
