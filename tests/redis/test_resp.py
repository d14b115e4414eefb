"""The small Redis client, against the machine's real Redis: replies pair with their commands however many
are in flight, errors come back as errors, scripts load themselves, a dropped connection is replaced."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tokenmux.errors import ReplyError
from tokenmux.redis.resp import RespClient, Script, encode_command


def test_commands_are_encoded_as_resp_arrays() -> None:
    assert (
        encode_command(["SET", b"k", 12, 1.5]) == b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n12\r\n$3\r\n1.5\r\n"
    )
    assert encode_command(["ECHO", "é"]) == b"*2\r\n$4\r\nECHO\r\n$2\r\n\xc3\xa9\r\n"


async def test_replies_pair_with_their_commands_under_concurrency(redis_url: str) -> None:
    client = RespClient(redis_url)
    replies = await asyncio.gather(*(client.call("ECHO", f"value-{i}") for i in range(500)))
    assert replies == [f"value-{i}".encode() for i in range(500)]
    assert await client.call("SELECT", 7) == b"OK"  # the URL's database index was selected on connect
    await client.aclose()


async def test_an_error_reply_is_raised_and_the_connection_stays_usable(redis_url: str) -> None:
    client = RespClient(redis_url)
    with pytest.raises(ReplyError, match="unknown command"):
        await client.call("NOT-A-COMMAND")
    assert await client.call("PING") == b"PONG"
    replies = await client.pipeline([("SET", "a", 1), ("INCR", "a", "x"), ("GET", "a")])
    assert replies[0] == b"OK" and isinstance(replies[1], ReplyError) and replies[2] == b"1"
    await client.aclose()


async def test_a_script_is_loaded_when_the_server_does_not_know_it(redis_url: str) -> None:
    client = RespClient(redis_url)
    await client.call("SCRIPT", "FLUSH")
    script = Script("return ARGV[1] .. '!'")
    assert await client.run(script, "hi") == b"hi!"
    await client.call("SCRIPT", "FLUSH")
    assert await client.run_many(script, [("a",), ("b",)]) == [b"a!", b"b!"]
    await client.aclose()


async def test_reset_fails_what_waits_and_the_next_call_connects_again(redis_url: str) -> None:
    client = RespClient(redis_url)
    assert await client.call("PING") == b"PONG"
    blocked = asyncio.ensure_future(client.call("BLPOP", "never-filled", 5))
    await asyncio.sleep(0.05)
    client.reset()
    with pytest.raises(ConnectionResetError):
        await blocked
    assert await client.call("PING") == b"PONG"
    await client.aclose()


async def test_a_server_that_never_answers_is_bounded_by_the_caller() -> None:
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    client = RespClient(f"redis://127.0.0.1:{hung.getsockname()[1]}/0")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await client.call("PING")
    client.reset()
    hung.close()
    with pytest.raises(OSError):
        await client.call("PING")  # nothing listens there now


def test_urls_carry_credentials_and_database() -> None:
    client = RespClient("redis://user:p%40ss@db.example:6380/3")
    assert (client._host, client._port, client._db) == ("db.example", 6380, 3)
    assert (client._username, client._password) == ("user", "p@ss")
    with pytest.raises(ValueError):
        RespClient("http://127.0.0.1:6379")
