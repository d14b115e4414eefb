"""Bad and hostile input at the edge: header values with line breaks, cross-origin access, upstream
steering, forwarded credentials."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway_support import HELLO, NANO, raw_exchange, sim_config
from tokenmux.config import ConfigError
from tokenmux.server.cors import CorsPolicy

# Refused requests and requests to a named provider share a gateway (see own_gateway).
pytestmark = pytest.mark.shared_gateway


@pytest.mark.parametrize(
    "header",
    [
        b"X-Title: a\rInjected: b",  # a bare CR inside a value
        b"X-Title: a\r\n Injected: b",  # an obs-fold continuation line
        b"X-Title: a\x00b",  # NUL
    ],
)
def test_header_values_with_line_breaks_are_refused(gateway: Any, sim: Any, header: bytes) -> None:
    body = b'{"model":"openai/gpt-4.1-nano","messages":[{"role":"user","content":"hi"}]}'
    request = (
        b"POST /api/v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
        + f"Authorization: Bearer {gateway.key}\r\n".encode()
        + header
        + b"\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    answer = raw_exchange(gateway.url, request)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert sim.requests("openai") == [] and sim.requests("azure") == []


def test_cors_is_off_unless_configured(gateway: Any) -> None:
    r = httpx.get(f"{gateway.url}/api/v1/models", headers={"Origin": "https://evil.example"})
    assert not any(h.startswith("access-control") for h in r.headers)
    pre = httpx.options(
        f"{gateway.url}/api/v1/chat/completions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert not any(h.startswith("access-control") for h in pre.headers)


def test_configured_cors_echoes_allowed_origins_only(gateway_factory: Any, sim: Any) -> None:
    gw = gateway_factory(
        sim_config(sim.url, cors={"allow_origins": ["https://app.example"], "allow_credentials": True})
    )
    ok = httpx.options(
        f"{gw.url}/api/v1/chat/completions",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    assert ok.headers["access-control-allow-credentials"] == "true"
    assert "authorization" in ok.headers["access-control-allow-headers"]
    bad = httpx.options(
        f"{gw.url}/api/v1/chat/completions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert bad.status_code == 403 and "access-control-allow-origin" not in bad.headers
    with gw.openai(default_headers={"Origin": "https://app.example"}) as client:
        raw = client.chat.completions.with_raw_response.create(model=NANO, messages=HELLO, max_tokens=5)
    assert raw.headers["access-control-allow-origin"] == "https://app.example"
    assert raw.headers["vary"] == "Origin"
    stream = httpx.post(
        f"{gw.url}/api/v1/chat/completions",
        json={"model": NANO, "messages": HELLO, "stream": True},
        headers={"Origin": "https://app.example", "Authorization": f"Bearer {gw.key}"},
        timeout=10,
    )
    assert stream.headers["access-control-allow-origin"] == "https://app.example"
    assert stream.text.rstrip().endswith("data: [DONE]")


def test_wildcard_origin_with_credentials_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="cannot go with allow_credentials"):
        CorsPolicy.from_settings({"allow_origins": ["*"], "allow_credentials": True})
    policy = CorsPolicy.from_settings({"allow_origins": "*"})
    assert policy is not None and policy.allow_any_origin


def test_client_credentials_and_cookies_never_reach_the_provider(gateway: Any, sim: Any) -> None:
    httpx.post(
        f"{gateway.url}/api/v1/chat/completions",
        json={"model": NANO, "messages": HELLO, "max_tokens": 5, "provider": {"order": ["openai"]}},
        headers={
            "Authorization": f"Bearer {gateway.key}",
            "Cookie": "session=secret-cookie",
            "X-Custom-Thing": "private",
        },
        timeout=10,
    ).raise_for_status()
    seen = str(sim.requests("openai"))
    for private in (gateway.key, "secret-cookie", "private"):
        assert private not in seen


# Counts the keys the gateway has cached, and nears the refused-key limit per address.
@pytest.mark.own_gateway
def test_long_fake_keys_cost_the_key_cache_nothing(gateway: Any) -> None:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        for n in range(25):  # under the 30 a minute after which this address would get 429
            r = client.get("/api/v1/key", headers={"Authorization": f"Bearer {n:08d}" + "k" * 8000})
            assert r.status_code == 401 and "longer than any key" in r.json()["error"]["message"]
        huge = client.get("/api/v1/key", headers={"Authorization": "Bearer " + "k" * 1_000_000})
        assert huge.status_code == 431
        r = client.post(
            "/api/anthropic/v1/messages",
            headers={"x-api-key": "k" * 40_000},
            json={"model": NANO, "max_tokens": 5, "messages": HELLO},
        )
        assert r.status_code == 431 and r.json()["type"] == "error"
    assert len(gateway.app.parts.keys.cache) == 0


def test_the_model_pages_sample_code_never_takes_its_url_from_the_host_header(
    gateway_factory: Any, sim: Any
) -> None:
    plain = gateway_factory()
    page = httpx.get(f"{plain.url}/{NANO}", headers={"Host": "evil.example"}, timeout=10).text
    assert "evil.example" not in page
    assert "https://your-gateway.example/api/v1" in page  # a placeholder, plainly one
    configured = gateway_factory(sim_config(sim.url, public_url="https://llm.example.com"))
    page = httpx.get(f"{configured.url}/{NANO}", headers={"Host": "evil.example"}, timeout=10).text
    assert "evil.example" not in page and "https://llm.example.com/api/anthropic" in page


@pytest.mark.parametrize("url", ["HTTP://example.com/cat.png", "Https://example.com/cat.png"])
def test_an_image_url_with_an_upper_case_scheme_is_accepted(gateway: Any, sim: Any, url: str) -> None:
    content = [{"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": {"url": url}}]
    client = gateway.openai()
    client.chat.completions.create(
        model=NANO,
        messages=[{"role": "user", "content": content}],
        max_tokens=5,
        extra_body={"provider": {"only": ["openai"]}},
    )
    sent = sim.requests("openai")[-1]["body"]["messages"][0]["content"][1]["image_url"]["url"]
    assert sent == url.replace("HTTP://", "http://").replace("Https://", "https://")
    r = httpx.post(
        f"{gateway.url}/api/anthropic/v1/messages",
        headers={"x-api-key": gateway.key},
        json={
            "model": NANO,
            "max_tokens": 5,
            "messages": [
                {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": url}}]}
            ],
        },
        timeout=10,
    )
    assert r.status_code == 200, r.text
