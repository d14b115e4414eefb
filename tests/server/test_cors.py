"""CorsPolicy and CorsMiddleware: off unless configured, exact echoes, preflights, streams untouched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tokenmux.config import ConfigError
from tokenmux.server.cors import ALLOWED_METHODS, BASE_ALLOWED_HEADERS, CorsMiddleware, CorsPolicy
from tokenmux.server.runner import BackgroundServer

APP_ORIGIN = b"https://app.example.com"
EVIL_ORIGIN = b"https://evil.example"
CHUNKS = [b'data: {"n": 1}\n\n', b"", b'data: {"n": 2}\n\n', b"data: [DONE]\n\n"]


class TinyApp:
    """Answers 200 JSON, or streams ``CHUNKS`` on ``/stream``; remembers each scope and its ``send``."""

    def __init__(self, response_headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.response_headers = response_headers or [(b"content-type", b"application/json")]
        self.calls: list[tuple[dict[str, Any], Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls.append((scope, send))
        if scope["type"] != "http":
            return
        start = {"type": "http.response.start", "status": 200, "headers": list(self.response_headers)}
        await send(start)
        if scope["path"] != "/stream":
            await send({"type": "http.response.body", "body": b"{}"})
            return
        for chunk in CHUNKS:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def policy(**settings: Any) -> CorsPolicy:
    built = CorsPolicy.from_settings({"allow_origins": [APP_ORIGIN.decode()], **settings})
    assert built is not None
    return built


def wildcard_policy() -> CorsPolicy:
    built = CorsPolicy.from_settings({"allow_origins": "*"})
    assert built is not None
    return built


def scope_for(
    method: str = "GET",
    path: str = "/api/v1/models",
    origin: bytes | None = None,
    *extra: tuple[bytes, bytes],
) -> dict[str, Any]:
    headers = [(b"host", b"gw"), *extra]
    if origin is not None:
        headers.append((b"origin", origin))
    return {"type": "http", "method": method, "path": path, "headers": headers}


def preflight_scope(origin: bytes) -> dict[str, Any]:
    return scope_for(
        "OPTIONS",
        "/api/v1/chat/completions",
        origin,
        (b"access-control-request-method", b"POST"),
        (b"access-control-request-headers", b"authorization, content-type"),
    )


async def run(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def cors_headers(start: dict[str, Any]) -> dict[bytes, bytes]:
    return {name: value for name, value in start["headers"] if name.startswith(b"access-control-")}


def header_values(start: dict[str, Any], wanted: bytes) -> list[bytes]:
    return [value for name, value in start["headers"] if name == wanted]


# -- the policy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [None, {}, {"allow_origins": []}, {"allow_origins": None, "max_age_s": 5}])
def test_cors_is_off_unless_origins_are_configured(raw: Any) -> None:
    assert CorsPolicy.from_settings(raw) is None


def test_wildcard_with_credentials_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="cannot go with allow_credentials") as refused:
        CorsPolicy.from_settings({"allow_origins": ["*"], "allow_credentials": True})
    assert "list the origins" in str(refused.value)
    assert "allow_credentials: false" in str(refused.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"allow_origins": ["https://app.example.com/"]}, "as https://app.example.com "),
        ({"allow_origins": ["https://app.example.com/ui"]}, "an origin has no path"),
        ({"allow_origins": ["app.example.com"]}, "scheme://host"),
        ({"allow_origins": ["null"]}, "must not list 'null'"),
        ({"allow_origins": [3]}, "must be a list of origins"),
        ({"allowed_origins": ["https://app.example.com"]}, "unknown gateway.cors setting 'allowed_origins'"),
        ({"allow_origins": ["https://a.example"], "allow_credentials": "yes"}, "true or false"),
        ({"allow_origins": ["https://a.example"], "max_age_s": -1}, "whole number of seconds"),
        ({"allow_origins": ["https://a.example"], "max_age_s": True}, "whole number of seconds"),
        ({"allow_origins": ["https://a.example"], "allow_headers": ["x-a, x-b"]}, "is not a header name"),
        ({"allow_origins": ["https://a.example"], "allow_headers": "x-title"}, "list of header names"),
    ],
)
def test_bad_settings_are_refused_naming_the_fix(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        CorsPolicy.from_settings(raw)


def test_settings_are_normalised() -> None:
    built = CorsPolicy.from_settings(
        {
            "allow_origins": ["https://App.Example.com", "http://localhost:5173"],
            "allow_headers": ["X-Title", "authorization"],
            "max_age_s": 60,
        }
    )
    assert built == CorsPolicy(
        allow_origins=frozenset({"https://app.example.com", "http://localhost:5173"}),
        allow_any_origin=False,
        allow_credentials=False,
        allow_headers=(*BASE_ALLOWED_HEADERS, "x-title"),
        max_age_s=60,
    )
    wildcard = CorsPolicy.from_settings({"allow_origins": "*"})
    assert wildcard is not None and wildcard.allow_any_origin and wildcard.max_age_s == 600
    assert wildcard.allows("https://anything.example")
    assert built.allows("http://localhost:5173") and not built.allows("http://localhost:5174")


# -- actual requests ----------------------------------------------------------------------------


async def test_an_allowed_origin_is_echoed_exactly_with_vary() -> None:
    app = TinyApp()
    sent = await run(CorsMiddleware(app, policy()), scope_for(origin=APP_ORIGIN))
    assert cors_headers(sent[0]) == {b"access-control-allow-origin": APP_ORIGIN}
    assert header_values(sent[0], b"vary") == [b"Origin"]
    assert sent[1]["body"] == b"{}"
    assert len(app.calls) == 1


async def test_credentials_are_allowed_only_when_configured() -> None:
    sent = await run(CorsMiddleware(TinyApp(), policy(allow_credentials=True)), scope_for(origin=APP_ORIGIN))
    assert cors_headers(sent[0]) == {
        b"access-control-allow-origin": APP_ORIGIN,
        b"access-control-allow-credentials": b"true",
    }


@pytest.mark.parametrize("origin", [EVIL_ORIGIN, b"https://app.example.com.evil.example", b"null", None])
async def test_other_origins_get_the_answer_without_cors_headers_but_with_vary(origin: bytes | None) -> None:
    app = TinyApp()
    sent = await run(CorsMiddleware(app, policy(allow_credentials=True)), scope_for(origin=origin))
    assert sent[0]["status"] == 200 and len(app.calls) == 1
    assert cors_headers(sent[0]) == {}
    # The answer differs from an allowed origin's, so a shared cache must key it on Origin too.
    assert header_values(sent[0], b"vary") == [b"Origin"]


async def test_a_wildcard_answers_star_and_never_echoes() -> None:
    middleware = CorsMiddleware(TinyApp(), wildcard_policy())
    for origin in (EVIL_ORIGIN, None):
        sent = await run(middleware, scope_for(origin=origin))
        assert cors_headers(sent[0]) == {b"access-control-allow-origin": b"*"}
        assert header_values(sent[0], b"vary") == []


async def test_an_existing_vary_is_extended_not_repeated() -> None:
    app = TinyApp([(b"content-type", b"application/json"), (b"Vary", b"Accept-Encoding")])
    sent = await run(CorsMiddleware(app, policy()), scope_for(origin=APP_ORIGIN))
    assert [(n, v) for n, v in sent[0]["headers"] if n.lower() == b"vary"] == [
        (b"Vary", b"Accept-Encoding, Origin")
    ]


async def test_a_streamed_response_passes_through_unchanged() -> None:
    plain = await run(TinyApp(), scope_for(path="/stream"))
    sent = await run(CorsMiddleware(TinyApp(), policy()), scope_for(path="/stream", origin=APP_ORIGIN))
    assert sent[1:] == plain[1:]
    assert [m["body"] for m in sent[1:]] == [*CHUNKS, b""]
    assert [m.get("more_body", False) for m in sent[1:]] == [True] * len(CHUNKS) + [False]
    assert cors_headers(sent[0]) == {b"access-control-allow-origin": APP_ORIGIN}
    assert sent[0]["status"] == plain[0]["status"]


async def test_a_plain_options_request_is_the_apps_to_answer() -> None:
    app = TinyApp()
    sent = await run(CorsMiddleware(app, policy()), scope_for("OPTIONS", origin=APP_ORIGIN))
    assert len(app.calls) == 1 and sent[0]["status"] == 200
    assert cors_headers(sent[0]) == {b"access-control-allow-origin": APP_ORIGIN}


async def test_lifespan_passes_straight_to_the_app() -> None:
    app = TinyApp()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: Any) -> None:
        raise AssertionError("nothing is sent for a lifespan scope here")

    await CorsMiddleware(app, policy())(scope, receive, send)
    assert app.calls == [(scope, send)]  # the very same send: nothing wrapped


# -- preflights ---------------------------------------------------------------------------------


async def test_a_preflight_from_an_allowed_origin_is_answered_here() -> None:
    app = TinyApp()
    middleware = CorsMiddleware(app, policy(allow_headers=["x-title"], max_age_s=120, allow_credentials=True))
    sent = await run(middleware, preflight_scope(APP_ORIGIN))
    assert app.calls == []
    assert sent[0]["status"] == 204
    assert cors_headers(sent[0]) == {
        b"access-control-allow-origin": APP_ORIGIN,
        b"access-control-allow-credentials": b"true",
        b"access-control-allow-methods": b"GET, POST, PATCH, DELETE, OPTIONS",
        b"access-control-allow-headers": b"authorization, content-type, x-api-key, x-goog-api-key, "
        b"anthropic-version, anthropic-beta, x-title",
        b"access-control-max-age": b"120",
    }
    assert header_values(sent[0], b"vary") == [b"Origin"]
    assert header_values(sent[0], b"content-length") == []  # a 204 has none
    assert sent[1] == {"type": "http.response.body", "body": b""}
    assert ALLOWED_METHODS == ("GET", "POST", "PATCH", "DELETE", "OPTIONS")


async def test_a_preflight_from_another_origin_is_refused_without_cors_headers() -> None:
    app = TinyApp()
    sent = await run(CorsMiddleware(app, policy()), preflight_scope(EVIL_ORIGIN))
    assert app.calls == []
    assert sent[0]["status"] == 403
    assert cors_headers(sent[0]) == {}
    assert sent[1]["body"] == b""


async def test_a_wildcard_preflight_answers_star() -> None:
    middleware = CorsMiddleware(TinyApp(), wildcard_policy())
    sent = await run(middleware, preflight_scope(EVIL_ORIGIN))
    assert sent[0]["status"] == 204
    assert cors_headers(sent[0])[b"access-control-allow-origin"] == b"*"
    assert b"access-control-allow-credentials" not in cors_headers(sent[0])


def test_over_a_real_server_preflights_and_streams_keep_their_shape() -> None:
    with BackgroundServer(CorsMiddleware(TinyApp(), policy()), lifespan="off") as server:
        pre = httpx.options(
            f"{server.url}/api/v1/chat/completions",
            headers={"Origin": APP_ORIGIN.decode(), "Access-Control-Request-Method": "POST"},
        )
        assert pre.status_code == 204 and pre.content == b""
        assert pre.headers["access-control-allow-origin"] == APP_ORIGIN.decode()
        with httpx.stream(
            "GET", f"{server.url}/stream", headers={"Origin": APP_ORIGIN.decode()}, timeout=10
        ) as streamed:
            assert streamed.headers["access-control-allow-origin"] == APP_ORIGIN.decode()
            assert streamed.headers["transfer-encoding"] == "chunked"
            assert b"".join(streamed.iter_raw()) == b"".join(CHUNKS)
