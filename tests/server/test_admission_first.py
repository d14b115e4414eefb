"""A key's concurrency and rate limits are checked from the request's head, before its body is read or
its prompt counted, on every chat route; the connection stays usable after such an early refusal."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from test_body_bounds import CHAT, MESSAGES, chat_body, connected, head, held_soon, read_response

from gateway_support import HELLO, NANO

RESPONSES = "/api/v1/responses"


@pytest.mark.parametrize("path", [CHAT, MESSAGES, RESPONSES])
def test_a_key_at_its_concurrency_is_refused_before_its_body_is_sent(gateway: Any, path: str) -> None:
    key = gateway.new_key(f"one-at-a-time-{path.count('/')}-{len(path)}", concurrency=1)
    body = chat_body(200_000)  # skipped within MAX_SKIPPED_BODY after an early answer
    with connected(gateway.url) as holder:
        # In flight: its head is in, its body is still coming.
        holder.sendall(head(CHAT, key, len(body)))
        held_soon(gateway.app, len(body))
        with connected(gateway.url) as conn:
            conn.sendall(head(path, key, len(body)))
            status, headers, answer = read_response(conn)  # not a byte of the body sent
            assert status == 429 and "retry-after" in headers
            error = json.loads(answer)["error"]
            assert "in flight" in error["message"]
            # The body sent late is skipped as that request's; the connection serves the next request.
            conn.sendall(body + b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert read_response(conn)[0] == 200
        holder.sendall(body)
        assert read_response(holder)[0] == 200
    # The slot is free again.
    answer = gateway.openai(key=key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    assert answer.choices[0].message.content


def test_a_key_over_its_rate_is_refused_before_its_prompt_is_counted(gateway: Any) -> None:
    """A prompt far over every context would be a 413 once counted; over the key's rate it is a 429
    first, without being read."""
    key = gateway.new_key("once-a-minute", rpm=1)
    gateway.openai(key=key).chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    body = chat_body(8_000_000)
    with connected(gateway.url) as conn:
        conn.sendall(head(CHAT, key, len(body)))
        status, _, answer = read_response(conn)
    assert status == 429 and json.loads(answer)["error"]["code"] == "rpm_limited"


def test_a_request_refused_after_admission_gives_its_slot_back(gateway: Any) -> None:
    key = gateway.new_key("one-slot", concurrency=1, credit=0.000001)
    auth = {"Authorization": f"Bearer {key}"}
    bad = httpx.post(f"{gateway.url}{CHAT}", content=b'{"model": ', headers=auth, timeout=10)
    assert bad.status_code == 400
    # Admitted, then its worst-case cost is over the credit: 402, and the slot is released.
    costly = {"model": NANO, "messages": HELLO, "max_tokens": 30_000}
    r = httpx.post(f"{gateway.url}{CHAT}", json=costly, headers=auth, timeout=10)
    assert r.status_code == 402, r.text
    r = httpx.post(f"{gateway.url}{CHAT}", json=costly, headers=auth, timeout=10)
    assert r.status_code == 402, r.text  # not 429: no slot was left taken
