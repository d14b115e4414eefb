"""How sqlite3 binds ``None`` and ``bool``: as it always does, minus two exceptions per value.

sqlite3 binds ``int``, ``float``, ``str`` and ``bytearray`` directly, but treats every other value, ``None``
and ``bool`` included, as one that may need adapting: it looks for a registered adapter, then asks its
``PrepareProtocol`` class for ``__adapt__`` and the value for ``__conform__``. The class lookup fails by
building an ``AttributeError`` message and throwing it away. A request record binds about a dozen
``None`` and ``bool`` values (the columns of what a call did not have: no error, no first token), and
adapting them was about a fifth of the instructions the request log's writer spent per record (callgrind,
2026-12-07: 38,000 of 173,000; 14,000 with the adapters).

An adapter registered for the type is found before those lookups. The ones here return exactly what
sqlite3 would have bound (``None`` as NULL, ``True`` as 1), and are C callables, so finding and calling
one costs less than a Python frame. The registry is sqlite3's, shared by the process: registering the
same identity conversions again anywhere changes nothing.
"""

from __future__ import annotations

import sqlite3

_NOTHING: dict[object, None] = {}


def bind_plainly() -> None:
    """Register the adapters (idempotent)."""
    # dict.get of an empty dict returns None for any key: NULL, without a Python frame.
    sqlite3.register_adapter(type(None), _NOTHING.get)
    sqlite3.register_adapter(bool, int)
