"""The machine's Redis for tests: one database index of its own, emptied before each test that uses it.

Tests that need it take the ``redis_url`` fixture, which skips with ``NOT_REACHABLE`` when no server
answers, so the suite passes on a machine without Redis while saying what was not tested.
"""

from __future__ import annotations

import functools
import os
import socket

HOST, PORT = "127.0.0.1", 6379
# Index 7: nothing else on the machine uses it; TOKENMUX_TEST_REDIS_DB lets two checkouts test side by side.
DB = int(os.environ.get("TOKENMUX_TEST_REDIS_DB", "7"))
URL = f"redis://{HOST}:{PORT}/{DB}"
NOT_REACHABLE = (
    f"Redis not reachable at {HOST}:{PORT}; start it with 'redis-server --daemonize yes --bind 127.0.0.1 "
    '--port 6379 --save "" --appendonly no\''
)


@functools.cache
def reachable() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def flush() -> None:
    """Empty the test database index (and only it)."""
    with socket.create_connection((HOST, PORT), timeout=2) as s:
        s.sendall(f"SELECT {DB}\r\nFLUSHDB\r\n".encode())
        got = b""
        while got.count(b"\r\n") < 2:
            got += s.recv(64)
        assert got == b"+OK\r\n+OK\r\n", got
