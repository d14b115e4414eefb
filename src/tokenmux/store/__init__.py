"""Storage: the request log, its batching recorder, and API keys, behind one ``Store`` interface.

store = open_store("sqlite:///tokenmux.db")   # or a bare path, or postgresql://user@host/db
await store.open()
recorder = Recorder(store)
recorder.start()
recorder.record(generation)                    # on the response path: never waits
...
await recorder.close()                         # writes what is still queued
await store.close()
"""

from tokenmux.errors import KeyNameTaken, StoreError, StoreUnavailable
from tokenmux.store.base import Store
from tokenmux.store.keys import key_digest, new_key
from tokenmux.store.recorder import Recorder
from tokenmux.store.records import AttemptRecord, GenerationRecord, KeyRecord, new_generation_id
from tokenmux.store.sqlite import SQLiteStore
from tokenmux.store.url import open_store

__all__ = [
    "AttemptRecord",
    "GenerationRecord",
    "KeyNameTaken",
    "KeyRecord",
    "Recorder",
    "SQLiteStore",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "key_digest",
    "new_generation_id",
    "new_key",
    "open_store",
]
