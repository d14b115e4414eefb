"""HeaderCheck: requests with CR, LF or NUL in a header are refused in the client's protocol, unseen by the app."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway_support import raw_exchange
from tokenmux.server.header_check import HeaderCheck, first_broken_header, header_error, problem_of
from tokenmux.server.runner import BackgroundServer


class RecordingApp:
    """A tiny ASGI app that remembers what reached it and answers 200 ``ok``."""

    def __init__(self) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.channels: list[tuple[Any, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        self.channels.append((receive, send))
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
            await send({"type": "http.response.body", "body": b"ok"})


async def run(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def http_scope(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "headers": headers}


CLEAN = [(b"host", b"gw"), (b"authorization", b"Bearer sk-tm-abc"), (b"content-type", b"application/json")]


@pytest.mark.parametrize("bad", [b"\r", b"\n", b"\0"])
def test_a_forbidden_byte_in_a_value_or_a_name_is_found(bad: bytes) -> None:
    assert first_broken_header([*CLEAN, (b"x-title", b"a" + bad + b"b")]) == b"x-title"
    assert first_broken_header([(b"x-ti" + bad + b"tle", b"fine"), *CLEAN]) == b"x-ti" + bad + b"tle"


def test_clean_headers_pass_and_the_first_broken_one_is_named() -> None:
    assert first_broken_header(CLEAN) is None
    assert first_broken_header([]) is None
    # Tab and high bytes are legal in field values (RFC 9110 obs-text); only CR, LF and NUL are refused.
    assert first_broken_header([(b"x-title", b"caf\xe9\tbar")]) is None
    headers = [*CLEAN, (b"x-first", b"a\nb"), (b"x-second", b"c\rd")]
    assert first_broken_header(headers) == b"x-first"


def test_a_broken_name_is_shown_without_its_bad_bytes() -> None:
    err = header_error(b"x-a\r\nset-cookie")
    assert err.param == "x-a??set-cookie"
    assert "\r" not in err.message and "\n" not in err.message
    assert err.status == 400
    assert len(header_error(b"x" * 500).param or "") == 64


async def test_openai_shaped_400_names_the_header_but_never_its_value() -> None:
    app = RecordingApp()
    scope = http_scope("/api/v1/chat/completions", [*CLEAN, (b"x-title", b"a\r\nInjected: secret-value")])
    sent = await run(HeaderCheck(app), scope)
    assert app.scopes == []
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 400
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    body = sent[1]["body"]
    assert b"secret-value" not in body and b"Injected" not in body
    error = json.loads(body)["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "x-title"
    assert "x-title" in error["message"]


async def test_anthropic_shaped_400_under_the_anthropic_api() -> None:
    app = RecordingApp()
    scope = http_scope("/api/anthropic/v1/messages", [(b"anthropic-version", b"2023-06-01\x00evil"), *CLEAN])
    sent = await run(HeaderCheck(app), scope)
    assert app.scopes == []
    assert sent[0]["status"] == 400
    answer = json.loads(sent[1]["body"])
    assert answer["type"] == "error"
    assert answer["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in answer["error"]["message"]
    assert "evil" not in answer["error"]["message"]


async def test_pages_and_other_paths_get_the_openai_shape() -> None:
    for path in ("/", "/api/anthropic", "/keys"):
        sent = await run(HeaderCheck(RecordingApp()), http_scope(path, [(b"cookie", b"a\nb")]))
        assert sent[0]["status"] == 400
        assert json.loads(sent[1]["body"])["error"]["param"] == "cookie"


async def test_a_clean_request_reaches_the_app_with_the_same_channels() -> None:
    app = RecordingApp()
    received_channels: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        received_channels.append(message)

    scope = http_scope("/api/v1/models", CLEAN)
    await HeaderCheck(app)(scope, receive, send)
    assert app.scopes == [scope]
    assert app.channels == [(receive, send)]  # nothing wrapped: a clean request costs only the check
    assert [m.get("status") for m in received_channels] == [200, None]


async def test_lifespan_passes_straight_to_the_app() -> None:
    app = RecordingApp()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    assert await run(HeaderCheck(app), scope) == []
    assert app.scopes == [scope]


def test_a_real_server_never_lets_a_broken_header_reach_the_app() -> None:
    app = RecordingApp()

    def request(header: bytes) -> bytes:
        return b"GET /api/v1/models HTTP/1.1\r\nHost: gw\r\n" + header + b"\r\nConnection: close\r\n\r\n"

    with BackgroundServer(HeaderCheck(app), lifespan="off") as server:
        clean = raw_exchange(server.url, request(b"X-Title: fine"))
        assert clean.startswith(b"HTTP/1.1 200"), clean[:200]
        assert len(app.scopes) == 1
        for header in (
            b"X-Title: a\rInjected: b",  # a bare CR inside a value
            b"X-Title: a\r\n Injected: b",  # an obs-fold continuation line
        ):
            answer = raw_exchange(server.url, request(header))
            assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
            assert b"Injected" not in answer
    assert len(app.scopes) == 1  # only the clean request got through


def test_too_many_or_too_long_headers_are_refused_with_431() -> None:
    many = [(b"x-h%d" % n, b"v") for n in range(101)]
    err = problem_of(many)
    assert err is not None and err.status == 431 and "101 headers" in err.message
    assert problem_of(many[:100]) is None
    long = [*CLEAN, (b"cookie", b"c" * (32 * 1024))]
    err = problem_of(long)
    assert err is not None and err.status == 431 and "at most 32768" in err.message
    assert problem_of(long, max_bytes=64 * 1024) is None


def test_a_credential_header_sent_twice_is_refused_with_400() -> None:
    for name in (b"authorization", b"x-api-key"):
        err = problem_of(
            [*CLEAN, (name, b"Bearer sk-tm-other")]
            if name == b"authorization"
            else [(name, b"k1"), (b"host", b"gw"), (name, b"k2")]
        )
        assert err is not None and err.status == 400 and err.param == name.decode()
        assert "k1" not in err.message and "sk-tm" not in err.message
    # The name appearing inside a value is not a second header.
    assert problem_of([*CLEAN, (b"x-note", b"authorization")]) is None


async def test_431_in_the_routes_protocol() -> None:
    headers = [*CLEAN, (b"cookie", b"c" * 40_000)]
    for path, shape in (("/api/anthropic/v1/messages", "anthropic"), ("/api/v1/chat/completions", "openai")):
        app = RecordingApp()
        sent = await run(HeaderCheck(app), http_scope(path, headers))
        assert app.scopes == []
        assert sent[0]["status"] == 431
        answer = json.loads(sent[1]["body"])
        if shape == "anthropic":
            assert answer["type"] == "error" and "32768" in answer["error"]["message"]
        else:
            assert answer["error"]["code"] == "request_headers_too_large"


def test_a_real_server_answers_431_and_400_before_the_app() -> None:
    app = RecordingApp()

    def request(extra: bytes) -> bytes:
        return b"GET /api/v1/models HTTP/1.1\r\nHost: gw\r\n" + extra + b"Connection: close\r\n\r\n"

    with BackgroundServer(HeaderCheck(app), lifespan="off") as server:
        big = raw_exchange(server.url, request(b"Authorization: Bearer " + b"k" * 40_000 + b"\r\n"))
        assert big.startswith(b"HTTP/1.1 431"), big[:200]
        many = raw_exchange(server.url, request(b"".join(b"X-H%d: v\r\n" % n for n in range(150))))
        assert many.startswith(b"HTTP/1.1 431"), many[:200]
        twice = raw_exchange(server.url, request(b"Authorization: Bearer a\r\nAuthorization: Bearer b\r\n"))
        assert twice.startswith(b"HTTP/1.1 400"), twice[:200]
    assert app.scopes == []
