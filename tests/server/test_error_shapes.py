"""Every answer under an API's prefix is in that API's error shape, whatever refuses the request: an unknown
route (404 naming the nearest real one), a wrong method (405), a failed key, or a bug of ours (500)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway_support import Gateway, make_key, sim_config
from tokenmux.asgi import Receive, Scope, Send
from tokenmux.server.build import build_gateway
from tokenmux.server.dispatch import Route, RouteTable
from tokenmux.server.runner import BackgroundServer

HELLO = [{"role": "user", "content": "Hello"}]
CLAUDE = "anthropic/claude-haiku-4.5"


@pytest.fixture(scope="module")
def gw(simulator: BackgroundServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("error-shapes")
    url = f"sqlite:///{tmp}/gw.db"
    key = make_key(url)
    app = build_gateway(sim_config(simulator.url, spool_dir=str(tmp / "spool")), database_url=url, env={})
    with BackgroundServer(app, graceful_timeout_s=2) as server:
        gateway = Gateway(server, key, app)
        yield gateway
        gateway.close_clients()


def claude(gw: Gateway, base: str = "/api/anthropic", key: str | None = None) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=f"{gw.url}{base}", api_key=key or gw.key, max_retries=0)


def test_a_mistyped_openai_route_is_a_404_naming_the_route_meant(gw: Gateway) -> None:
    client = gw.openai()
    with pytest.raises(openai.NotFoundError) as caught:
        client.post(
            "/chat/completion",
            body={"model": "openai/gpt-4.1-nano", "messages": HELLO},
            cast_to=httpx.Response,
        )
    error: Any = caught.value.body
    assert error["type"] == "not_found_error"
    assert "did you mean POST /api/v1/chat/completions?" in error["message"]


def test_an_openai_base_url_without_v1_is_told_where_the_api_is(gw: Gateway) -> None:
    client = openai.OpenAI(base_url=f"{gw.url}/api", api_key=gw.key, max_retries=0)
    with client, pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="openai/gpt-4.1-nano", messages=HELLO)  # type: ignore[arg-type]
    assert "did you mean POST /api/v1/chat/completions?" in caught.value.message


def test_a_wrong_anthropic_base_url_is_a_404_in_anthropics_shape(gw: Gateway) -> None:
    with claude(gw, "/api/anthropic/v2") as client, pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=16, messages=HELLO)  # type: ignore[arg-type]
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "did you mean POST /api/anthropic/v1/messages?" in body["error"]["message"]


def test_an_unknown_anthropic_route_far_from_any_is_a_404_in_anthropics_shape(gw: Gateway) -> None:
    with claude(gw) as client, pytest.raises(anthropic.NotFoundError) as caught:
        client.get("/v1/organizations/me/usage_report/messages", cast_to=httpx.Response)
    body: Any = caught.value.body
    assert body["error"]["type"] == "not_found_error"
    assert "Anthropic's under /api/anthropic/v1" in body["error"]["message"]


def test_a_wrong_method_is_a_405_in_the_routes_protocol(gw: Gateway) -> None:
    with claude(gw) as client, pytest.raises(anthropic.APIStatusError) as caught:
        client.get("/v1/messages", cast_to=httpx.Response)
    assert caught.value.status_code == 405 and caught.value.response.headers["allow"] == "POST"
    body: Any = caught.value.body
    assert body["error"]["type"] == "invalid_request_error" and "takes POST" in body["error"]["message"]

    with pytest.raises(openai.APIStatusError) as wrong:
        gw.openai().delete("/models", cast_to=httpx.Response)
    assert wrong.value.status_code == 405 and wrong.value.response.headers["allow"] == "GET"
    error: Any = wrong.value.body
    assert error["code"] == "method_not_allowed"

    gemini = httpx.delete(f"{gw.url}/api/gemini/v1beta/models/gemini-2.5-flash")
    assert gemini.status_code == 405 and gemini.json()["error"]["code"] == 405  # Gemini's shape


def test_a_failed_key_on_an_anthropic_route_is_anthropics_authentication_error(gw: Gateway) -> None:
    with claude(gw, key="sk-tm-not-a-key") as client, pytest.raises(anthropic.AuthenticationError) as caught:
        client.messages.count_tokens(model=CLAUDE, messages=HELLO)  # type: ignore[arg-type]
    body: Any = caught.value.body
    assert body["error"]["type"] == "authentication_error"


def test_an_unknown_model_on_the_anthropic_models_route_is_in_anthropics_shape(gw: Gateway) -> None:
    with claude(gw) as client, pytest.raises(anthropic.NotFoundError) as caught:
        client.models.retrieve("claude-nothing-9")
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"


def test_a_path_outside_the_apis_says_where_they_are(gw: Gateway) -> None:
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={})
    assert r.status_code == 404
    assert "did you mean POST /api/v1/chat/completions?" in r.json()["error"]["message"]
    far = httpx.get(f"{gw.url}/nothing-here")
    assert far.status_code == 404 and "OpenAI's API is under /api/v1" in far.json()["error"]["message"]


async def _boom(scope: Scope, receive: Receive, send: Send) -> None:
    raise RuntimeError("a bug")


@pytest.fixture(scope="module")
def buggy(gw: Gateway) -> Iterator[str]:
    """A server whose route table has routes that fail as a bug would, counted in the real gateway's
    metrics; its URL."""
    routes = [
        Route("POST", "/api/anthropic/v1/messages", _boom),
        Route("POST", "/api/v1/chat/completions", _boom),
    ]
    table = RouteTable(routes, pages=lambda method, path: None, metrics=gw.app.parts.metrics)
    with BackgroundServer(table, lifespan="off") as server:
        yield server.url


def test_a_bug_is_a_500_in_the_routes_protocol_logged_once(
    buggy: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="tokenmux.server")
    client = anthropic.Anthropic(base_url=f"{buggy}/api/anthropic", api_key="k", max_retries=0)
    with client, pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model=CLAUDE, max_tokens=16, messages=HELLO)  # type: ignore[arg-type]
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert (
        "internal error in the gateway" in body["error"]["message"]
        and "a bug" not in body["error"]["message"]
    )
    logged = [r for r in caplog.records if r.name == "tokenmux.server"]
    assert len(logged) == 1 and logged[0].exc_info is not None

    oai = openai.OpenAI(base_url=f"{buggy}/api/v1", api_key="k", max_retries=0)
    with oai, pytest.raises(openai.InternalServerError) as failed:
        oai.chat.completions.create(model="openai/gpt-4.1-nano", messages=HELLO)  # type: ignore[arg-type]
    error: Any = failed.value.body
    assert error["type"] == "api_error"


def test_the_nearest_route_is_found_by_method_and_path(gw: Gateway) -> None:
    table = RouteTable(
        [
            Route("POST", "/api/v1/chat/completions", _boom),
            Route("GET", "/api/v1/models", _boom),
            Route("GET", "/api/v1/models/", _boom, prefix=True),
        ],
        pages=lambda method, path: None,
        metrics=gw.app.parts.metrics,
    )
    assert table.nearest("POST", "/api/v1/chat/completion") == "POST /api/v1/chat/completions"
    assert table.nearest("GET", "/api/v1/model") == "GET /api/v1/models"
    assert table.nearest("GET", "/api/v1/modelz/openai/gpt-4.1") == "GET /api/v1/models/{id}"
    assert table.nearest("GET", "/favicon.ico") is None
    assert table.nearest("POST", "/api/v1/" + "x" * 300) is None
    assert table.methods_of("/api/v1/models/openai/gpt-4.1-nano") == ["GET"]
    assert table.methods_of("/api/v1/nothing") == []
