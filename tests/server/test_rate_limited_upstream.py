"""When every attempt was rate-limited upstream the client gets 429 with the shortest Retry-After any
provider gave (or the cooldown the gateway put the endpoint in), in its own protocol; one provider that
failed otherwise keeps it a 502."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from gateway_support import NANO, generation, make_key, sim_config
from tokenmux.providers.transport import MockResponse, MockTransport
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer

HELLO: Any = [{"role": "user", "content": "Hello"}]


def test_every_provider_rate_limited_is_429_with_the_shortest_retry_after(gateway: Any, sim: Any) -> None:
    sim.profile("openai", rate_limit_rate=1.0, retry_after_s=7)
    sim.profile("azure", rate_limit_rate=1.0, retry_after_s=3)
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.openai().chat.completions.create(model=NANO, messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "3"
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "upstream_rate_limited"
    assert sorted(a["status"] for a in body["metadata"]["attempts"]) == [429, 429]
    gen_id = caught.value.response.headers["x-generation-id"]
    assert generation(gateway, gen_id)["status"] == "error"


def test_on_the_anthropic_route_it_is_anthropics_rate_limit_error(gateway: Any, sim: Any) -> None:
    sim.profile("anthropic", rate_limit_rate=1.0, retry_after_s=5)
    url = f"{gateway.url}/api/anthropic"
    with (
        anthropic.Anthropic(base_url=url, api_key=gateway.key, max_retries=0) as claude,
        pytest.raises(anthropic.RateLimitError) as caught,
    ):
        claude.messages.create(
            model="anthropic/claude-haiku-4.5",
            max_tokens=32,
            messages=HELLO,
            extra_body={"provider": {"only": ["anthropic"]}},
        )
    assert caught.value.response.headers["retry-after"] == "5"
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def test_without_retry_after_the_wait_is_the_endpoints_cooldown(tmp_path: Path) -> None:
    # Providers that say 429 and nothing more: the gateway's own cooldown is the wait.
    def rate_limited(request: Any) -> MockResponse:
        return MockResponse.json({"error": {"message": "slow down", "type": "requests"}}, status=429)

    url = f"sqlite:///{tmp_path}/gw.db"
    key = make_key(url)
    app = build_gateway(
        sim_config("http://127.0.0.1:9", cooldown_s=4),
        database_url=url,
        transport=MockTransport(rate_limited),
        env={},
    )
    with BackgroundServer(app, graceful_timeout_s=1) as server:
        client = openai.OpenAI(base_url=f"{server.url}/api/v1", api_key=key, max_retries=0)
        with client, pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model=NANO, messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "4"


def test_a_rate_limit_and_a_server_error_stay_a_502(gateway: Any, sim: Any) -> None:
    sim.profile("openai", rate_limit_rate=1.0, retry_after_s=7)
    sim.profile("azure", error_rate=1.0)
    with pytest.raises(openai.APIStatusError) as caught:
        gateway.openai().chat.completions.create(model=NANO, messages=HELLO)
    assert caught.value.status_code == 502
