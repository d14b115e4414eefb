"""Clients name models the way their provider does: native ids, dated snapshots, configured aliases; and
``GET /models/{id}`` on both APIs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from gateway_support import HELLO, sim_config

# Each test names its one provider or reaches none, so the module shares a gateway.
pytestmark = pytest.mark.shared_gateway

SONNET = "anthropic/claude-sonnet-4.5"


@pytest.fixture
def claude(gateway: Any) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=f"{gateway.url}/api/anthropic", api_key=gateway.key, max_retries=0
    ) as c:
        yield c


@pytest.mark.parametrize(
    ("name", "model_id", "prefix", "upstream"),
    [
        ("claude-sonnet-4-5", SONNET, "anthropic", "claude-sonnet-4-5"),
        ("claude-sonnet-4-5-20250929", SONNET, "anthropic", "claude-sonnet-4-5"),
        ("gpt-4o-2024-08-06", "openai/gpt-4o", "openai", "gpt-4o"),
        ("models/gemini-2.5-flash", "google/gemini-2.5-flash", "google", "gemini-2.5-flash"),
    ],
)
def test_a_native_name_is_served_and_answered_with_the_catalog_id(
    gateway: Any, sim: Any, name: str, model_id: str, prefix: str, upstream: str
) -> None:
    completion = gateway.openai().chat.completions.create(
        model=name, messages=HELLO, extra_body={"provider": {"only": [prefix]}}
    )
    assert completion.model == model_id  # records and answers stay comparable whatever name was sent
    (received,) = sim.requests(prefix)
    assert upstream in received["path"] or received["body"].get("model") == upstream


def test_claude_code_style_names_through_the_anthropic_sdk(claude: anthropic.Anthropic, sim: Any) -> None:
    message = claude.messages.create(
        model="claude-haiku-4-5-20251001",
        max_tokens=64,
        messages=[{"role": "user", "content": "Hello"}],
        extra_body={"provider": {"only": ["anthropic"]}},
    )
    assert message.model == "anthropic/claude-haiku-4.5"
    assert sim.requests("anthropic")[0]["body"]["model"] == "claude-haiku-4-5"


def test_aliases_from_the_configuration(gateway_factory: Any, sim: Any) -> None:
    gateway = gateway_factory({**sim_config(sim.url), "aliases": {"sonnet": SONNET, "cheap": "gpt-4.1-nano"}})
    client = gateway.openai()
    assert client.chat.completions.create(model="sonnet", messages=HELLO).model == SONNET
    assert client.chat.completions.create(model="cheap:floor", messages=HELLO).model == "openai/gpt-4.1-nano"
    assert client.models.retrieve("sonnet").id == SONNET


def test_an_ambiguous_name_is_refused_naming_the_choices(gateway_factory: Any, sim: Any) -> None:
    clone = {
        "id": "someone/sonnet-clone",
        "context_length": 1000,
        "max_output": 100,
        "endpoints": [
            {
                "provider": "together",
                "upstream_model": "claude-sonnet-4-5",
                "price": {"input": 1, "output": 1},
            }
        ],
    }
    gateway = gateway_factory({**sim_config(sim.url), "catalog": {"models": [clone]}})
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model="claude-sonnet-4-5", messages=HELLO)
    error = info.value.body
    assert isinstance(error, dict) and error["code"] == "ambiguous_model" and error["param"] == "model"
    assert f"{SONNET}, someone/sonnet-clone" in error["message"]


def test_get_one_model_in_openai_shape(gateway: Any) -> None:
    client = gateway.openai()
    for name in (SONNET, "claude-sonnet-4-5-20250929", "Anthropic/Claude-Sonnet-4.5"):
        model = client.models.retrieve(name)
        assert (model.id, model.object, model.owned_by) == (SONNET, "model", "anthropic")
        extra = model.model_extra or {}
        assert extra["context_length"] == 200_000 and extra["pricing"]["prompt"] == "0.000003"
    # The id holds a slash; written as a path it reaches the same route.
    r = httpx.get(f"{gateway.url}/api/v1/models/{SONNET}", timeout=10)
    assert r.status_code == 200 and r.json()["id"] == SONNET
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("anthropic/claude-sonet-4.5")
    assert SONNET in str(info.value)  # did you mean


def test_the_endpoints_route_takes_native_names_too(gateway: Any) -> None:
    r = httpx.get(f"{gateway.url}/api/v1/models/claude-sonnet-4-5/endpoints", timeout=10)
    assert r.status_code == 200 and r.json()["data"]["id"] == SONNET


def test_get_one_model_in_anthropic_shape(claude: anthropic.Anthropic, gateway: Any) -> None:
    for name in ("claude-sonnet-4-5", SONNET):
        model = claude.models.retrieve(name)
        assert (model.id, model.type, model.display_name) == (SONNET, "model", "Anthropic: Claude Sonnet 4.5")
        assert model.created_at.year == 2025
    with pytest.raises(anthropic.NotFoundError) as info:
        claude.models.retrieve("claude-sonet-4-5")
    body = info.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "not_found_error" and SONNET in body["error"]["message"]
    r = httpx.get(f"{gateway.url}/api/anthropic/v1/models/nobody/nothing", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_a_chat_request_to_an_embedding_model_is_refused(gateway: Any) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        gateway.openai().chat.completions.create(model="text-embedding-3-small", messages=HELLO)
    body = info.value.body
    assert isinstance(body, dict) and body["param"] == "model"
    assert "openai/text-embedding-3-small is an embedding model" in body["message"].replace("'", "")


def test_the_anthropic_model_list_holds_chat_models_only(claude: anthropic.Anthropic) -> None:
    ids = {m.id for m in claude.models.list()}
    assert {SONNET, "anthropic/claude-opus-4.8", "openai/gpt-5.4"} <= ids
    assert "openai/text-embedding-3-small" not in ids
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("text-embedding-3-small")
