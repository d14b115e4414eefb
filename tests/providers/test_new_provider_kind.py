"""A new provider kind is one module plus catalog data: ``brief_chat_kind`` (a module of the tests, not of
the package) registers ``brief-chat``, the configuration names it, and a request is served through it."""

from __future__ import annotations

from typing import Any

import pytest

from gateway_support import HELLO, NANO, generation, sim_config
from tokenmux.catalog import load_catalog
from tokenmux.config import ConfigError, build_settings
from tokenmux.providers.registry import provider_kinds

PREFIX = "brief"  # the simulator answers Chat Completions under any prefix


@pytest.fixture(scope="module", autouse=True)
def brief_chat_registered() -> None:
    import brief_chat_kind  # noqa: F401  (registers the kind)


def brief_config(sim_url: str, **section: Any) -> dict[str, Any]:
    config = sim_config(sim_url)
    config["providers"]["brief"] = {
        "kind": "brief-chat",
        "base_url": f"{sim_url}/{PREFIX}/v1",
        "api_key": "brief-upstream-secret",
        **section,
    }
    # The catalog data: the provider, and an endpoint of a known model there.
    config["catalog"] = {
        "providers": {
            "brief": {
                "name": "Brief",
                "kind": "brief-chat",
                "defaults": {"supported_parameters": ["max_tokens"]},
            }
        },
        "models": [
            {"id": NANO, "endpoints": [{"provider": "brief", "price": {"input": 0.05, "output": 0.2}}]}
        ],
    }
    return config


def test_a_registered_kind_serves_requests_end_to_end(gateway_factory: Any, sim: Any) -> None:
    sim.clear_requests(PREFIX)
    gateway = gateway_factory(brief_config(sim.url, tag="blue"))
    client = gateway.openai()
    only_brief = {"provider": {"only": ["brief"]}}

    answer = client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=8, extra_body=only_brief)
    streamed = list(
        client.chat.completions.create(
            model=NANO,
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=only_brief,
        )
    )

    assert answer.choices[0].message.content and answer.provider == "brief"  # type: ignore[attr-defined]
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert streamed[-1].usage is not None and streamed[-1].usage.completion_tokens > 0
    record = generation(gateway, answer.id)
    assert record["provider"] == "brief" and record["attempts"][0]["outcome"] == "success"
    received = sim.requests(PREFIX)
    assert len(received) == 2
    assert received[0]["headers"]["x-brief-tag"] == "blue"  # the kind's own setting reached the upstream
    assert received[0]["body"]["messages"] == HELLO and received[0]["body"]["max_tokens"] == 8


def test_the_kind_is_known_to_configuration_and_catalog(sim: Any) -> None:
    assert "brief-chat" in provider_kinds()
    config = brief_config(sim.url)
    catalog = load_catalog(config["catalog"], kinds=provider_kinds())
    assert catalog.providers["brief"].kind == "brief-chat"
    settings = build_settings(config, catalog, env={})
    assert settings.providers["brief"].kind == "brief-chat"
    # Its settings are its own: an OpenAI setting is refused there, and its own is refused elsewhere.
    with pytest.raises(ConfigError, match=r"unknown setting providers\.brief\.deployments; known: .*tag"):
        build_settings(brief_config(sim.url, deployments={"a": "b"}), catalog, env={})
    elsewhere = brief_config(sim.url)
    elsewhere["providers"]["openai"]["tag"] = "blue"
    with pytest.raises(ConfigError, match=r"unknown setting providers\.openai\.tag"):
        build_settings(elsewhere, catalog, env={})
