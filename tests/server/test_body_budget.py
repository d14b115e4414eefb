"""The budget of request bodies in flight, and reading a body within it: claims wait in arrival order,
are refused with 503 after their wait, and are released once; a body is claimed before it is read and its
shape checked chunk by chunk."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import pytest

from tokenmux.errors import GatewayBusy, InvalidRequest, PayloadTooLarge
from tokenmux.protocols.json_limits import JsonShape
from tokenmux.protocols.openai_chat import decode_chat_request
from tokenmux.server.body_budget import BodyBudget
from tokenmux.server.request_body import CHUNKED_CLAIM_STEP, FILL_IN_PLACE_BYTES, read_json_body


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_claims_within_the_budget_are_taken_at_once_and_released_once() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000, wait_s=0)
        a, b = budget.claim(), budget.claim()
        await a.grow_to(600)
        await b.grow_to(400)
        assert budget.in_use == 1000
        a.release()
        a.release()
        assert budget.in_use == 400
        b.release()
        assert budget.in_use == 0

    run(scenario())


def test_a_claim_that_does_not_fit_waits_then_is_refused_with_503() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000, wait_s=0.05)
        held = budget.claim()
        await held.grow_to(700)
        with pytest.raises(GatewayBusy) as refused:
            await budget.claim().grow_to(400)
        assert refused.value.status == 503 and refused.value.headers() == [(b"retry-after", b"1")]
        assert budget.in_use == 700 and budget.refused == 1
        await budget.claim().grow_to(300)  # what fits still does
        assert budget.in_use == 1000

    run(scenario())


def test_waiting_claims_are_granted_in_arrival_order_and_a_claim_that_fits_need_not_wait() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000, wait_s=5)
        held = budget.claim()
        await held.grow_to(800)
        order: list[str] = []

        async def claim(name: str, size: int) -> None:
            await budget.claim().grow_to(size)
            order.append(name)

        first = asyncio.create_task(claim("first", 500))
        await asyncio.sleep(0)
        second = asyncio.create_task(claim("second", 300))
        await asyncio.sleep(0)
        await claim("small", 100)  # fits beside what is held: taken at once, past those waiting
        assert order == ["small"]
        held.release()  # room for the first waiter, then the second behind it
        await asyncio.gather(first, second)
        assert order == ["small", "first", "second"] and budget.in_use == 900

    run(scenario())


def test_a_cancelled_wait_leaves_the_line_and_holds_nothing() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000, wait_s=5)
        held = budget.claim()
        await held.grow_to(900)
        waiting = asyncio.create_task(budget.claim().grow_to(500))
        await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await budget.claim().grow_to(100)  # nobody in line ahead of it
        held.release()
        assert budget.in_use == 100

    run(scenario())


def test_a_claim_larger_than_the_budget_is_refused_at_once() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000, wait_s=5)
        with pytest.raises(GatewayBusy):
            await budget.claim().grow_to(1001)
        assert budget.in_use == 0

    run(scenario())


# -- reading a body -------------------------------------------------------------------------------------


class Client:
    """The ASGI receive side of a request whose body arrives in ``chunks``; counts what was read."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self.chunks = list(chunks)
        self.read = 0

    async def receive(self) -> dict[str, Any]:
        chunk = self.chunks[self.read]
        self.read += 1
        return {"type": "http.request", "body": chunk, "more_body": self.read < len(self.chunks)}


def scope(length: int | None) -> dict[str, Any]:
    headers = [] if length is None else [(b"content-length", str(length).encode())]
    return {"type": "http", "headers": headers}


def test_a_body_is_claimed_by_its_content_length_before_it_is_read() -> None:
    async def scenario() -> None:
        budget = BodyBudget(1000, wait_s=0)
        claim = budget.claim()
        client = Client([b'{"a": ', b"1}"])
        body = await read_json_body(scope(8), client.receive, limit=100, claim=claim, shape=JsonShape("{}"))
        assert body == b'{"a": 1}' and claim.held == 8
        # Declared over the limit: refused before anything is read or claimed.
        client = Client([b"{}"])
        with pytest.raises(PayloadTooLarge):
            await read_json_body(
                scope(101), client.receive, limit=100, claim=budget.claim(), shape=JsonShape("{}")
            )
        assert client.read == 0
        # No room in the budget: refused before anything is read.
        with pytest.raises(GatewayBusy):
            await read_json_body(
                scope(995), client.receive, limit=1000, claim=budget.claim(), shape=JsonShape("{}")
            )
        assert client.read == 0

    run(scenario())


def test_a_chunked_body_is_claimed_as_it_grows_and_cut_off_at_the_limit() -> None:
    async def scenario() -> None:
        budget = BodyBudget(10 * CHUNKED_CLAIM_STEP, wait_s=0)
        claim = budget.claim()
        chunk = b" " * (CHUNKED_CLAIM_STEP // 2)
        client = Client([b"[", chunk, chunk, chunk, b"]"])
        body = await read_json_body(
            scope(None), client.receive, limit=10**8, claim=claim, shape=JsonShape("{}")
        )
        assert len(body) == 3 * len(chunk) + 2
        assert len(body) <= claim.held <= len(body) + CHUNKED_CLAIM_STEP
        client = Client([chunk, chunk, chunk])
        with pytest.raises(PayloadTooLarge):
            await read_json_body(
                scope(None), client.receive, limit=len(chunk) + 1, claim=budget.claim(), shape=JsonShape("{}")
            )
        assert client.read == 2

    run(scenario())


def test_a_pathological_body_is_refused_at_the_chunk_that_shows_it() -> None:
    async def scenario() -> None:
        budget = BodyBudget(10**9, wait_s=0)
        deep = Client([b"[" * 100, b"[" * 100, b"[" * 100, b"]" * 300])
        with pytest.raises(InvalidRequest):
            await read_json_body(
                scope(600), deep.receive, limit=10**6, claim=budget.claim(), shape=JsonShape("{}")
            )
        assert deep.read == 2
        many = Client([b"[" + b"1," * 60_000, b"1," * 60_000, b"1]"] + [b" "] * 5)
        with pytest.raises(PayloadTooLarge):
            await read_json_body(
                scope(None), many.receive, limit=10**7, claim=budget.claim(), shape=JsonShape("{}")
            )
        assert many.read == 2

    run(scenario())


def test_a_large_body_of_known_length_is_filled_in_place_as_it_arrives() -> None:
    async def scenario() -> None:
        budget = BodyBudget(10**8, wait_s=0)
        text = (
            b'{"model": "m", "messages": [{"role": "user", "content": "'
            + b"x" * FILL_IN_PLACE_BYTES
            + b'"}]}'
        )
        chunks = [text[i : i + 65536] for i in range(0, len(text), 65536)]
        body = await read_json_body(
            scope(len(text)), Client(chunks).receive, limit=10**8, claim=budget.claim(), shape=JsonShape("{}")
        )
        assert isinstance(body, bytearray) and body == text
        request = decode_chat_request(body, shape_checked=True)
        assert request.body_bytes == len(text) and request.messages[0]["content"] == "x" * FILL_IN_PLACE_BYTES

    run(scenario())
