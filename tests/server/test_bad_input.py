"""Bad input gets a clear error in OpenAI's shape, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from gateway_support import HELLO, NANO


def post(
    gateway: Any, body: bytes | dict[str, Any], *, key: str | None = "default", **headers: str
) -> httpx.Response:
    hdrs = dict(headers)
    if key is not None:
        hdrs["Authorization"] = f"Bearer {gateway.key if key == 'default' else key}"
    url = f"{gateway.url}/api/v1/chat/completions"
    if isinstance(body, bytes):
        return httpx.post(url, content=body, headers={"Content-Type": "application/json", **hdrs}, timeout=10)
    return httpx.post(url, json=body, headers=hdrs, timeout=10)


def error_of(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert {"message", "type", "code", "param", "metadata"} <= set(err)
    assert isinstance(err["message"], str) and len(err["message"]) > 20
    return err  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        ({"messages": HELLO}, "model"),
        ({"model": NANO}, "messages"),
        ({"model": NANO, "messages": []}, "messages"),
        ({"model": NANO, "messages": "hi"}, "messages"),
        ({"model": NANO, "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": NANO, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {
                "model": NANO,
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}
                ],
            },
            "messages[0].content[0].image_url.url",
        ),
        ({"model": NANO, "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"model": NANO, "messages": HELLO, "temperature": "hot"}, "temperature"),
        ({"model": NANO, "messages": HELLO, "temperature": 5}, "temperature"),
        ({"model": NANO, "messages": HELLO, "top_p": -1}, "top_p"),
        ({"model": NANO, "messages": HELLO, "max_completion_tokens": 0}, "max_completion_tokens"),
        ({"model": NANO, "messages": HELLO, "max_tokens": 1.5}, "max_tokens"),
        ({"model": NANO, "messages": HELLO, "logprobs": "yes"}, "logprobs"),
        ({"model": NANO, "messages": HELLO, "top_logprobs": 50}, "top_logprobs"),
        ({"model": NANO, "messages": HELLO, "logit_bias": {"abc": 1}}, "logit_bias"),
        ({"model": NANO, "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": NANO, "messages": HELLO, "response_format": {"type": "xml"}}, "response_format"),
        (
            {"model": NANO, "messages": HELLO, "tools": [{"type": "function", "function": {}}]},
            "tools[0].function.name",
        ),
        ({"model": NANO, "messages": HELLO, "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": NANO, "messages": HELLO, "stream": "yes"}, "stream"),
        ({"model": NANO, "messages": HELLO, "provider": {"sort": "random"}}, "provider.sort"),
        ({"model": NANO, "messages": HELLO, "provider": {"order": "openai"}}, "provider.order"),
        ({"model": NANO, "messages": HELLO, "provider": {"colour": "blue"}}, "provider.colour"),
        ({"model": NANO, "messages": HELLO, "models": "openai/gpt-4o"}, "models"),
        ({"model": NANO, "messages": HELLO, "api_base": "http://evil.example"}, "api_base"),
        ({"model": NANO, "messages": HELLO, "api_key": "sk-other"}, "api_key"),
    ],
)
def test_invalid_requests_are_400_naming_the_parameter(gateway: Any, body: Any, param: str | None) -> None:
    err = error_of(post(gateway, body), 400)
    assert err["type"] == "invalid_request_error"
    assert err["param"] == param


def test_missing_and_unknown_keys_are_401(gateway: Any) -> None:
    err = error_of(post(gateway, {"model": NANO, "messages": HELLO}, key=None), 401)
    assert "Authorization: Bearer" in err["message"]
    error_of(post(gateway, {"model": NANO, "messages": HELLO}, key="sk-tm-wrong"), 401)
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            base_url=f"{gateway.url}/api/v1", api_key="nope", max_retries=0
        ).chat.completions.create(model=NANO, messages=HELLO)


def test_unknown_model_is_404_with_close_matches(gateway: Any) -> None:
    err = error_of(post(gateway, {"model": "openai/gpt-4.1-nanoo", "messages": HELLO}), 404)
    assert "openai/gpt-4.1-nano" in err["message"]
    with pytest.raises(openai.NotFoundError):
        gateway.openai().chat.completions.create(model="nobody/nothing", messages=HELLO)


def test_body_over_the_limit_is_413(gateway_factory: Any) -> None:
    gw = gateway_factory(max_body_bytes=2000)
    err = error_of(post(gw, {"model": NANO, "messages": [{"role": "user", "content": "x" * 5000}]}), 413)
    assert "2000" in err["message"]


def test_prompt_larger_than_every_context_is_413(gateway: Any) -> None:
    # gpt-4.1-nano's max output is 32,768 at both endpoints
    err = error_of(post(gateway, {"model": NANO, "messages": HELLO, "max_completion_tokens": 40_000}), 413)
    assert "32768" in err["message"].replace(",", "")


def test_unknown_route_is_404_json(gateway: Any) -> None:
    r = httpx.get(f"{gateway.url}/api/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["message"]


def test_generation_needs_an_id_and_only_shows_own(gateway: Any) -> None:
    headers = {"Authorization": f"Bearer {gateway.key}"}
    assert httpx.get(f"{gateway.url}/api/v1/generation", headers=headers).status_code == 400
    assert httpx.get(f"{gateway.url}/api/v1/generation?id=gen-nope", headers=headers).status_code == 404
    assert httpx.get(f"{gateway.url}/api/v1/generation?id=gen-nope").status_code == 401


def test_upstream_secrets_never_reach_the_client(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0, error_status=500)
    sim.profile("azure", error_rate=1.0, error_status=500)
    r = post(gateway, {"model": NANO, "messages": HELLO})
    assert r.status_code == 502
    assert "upstream-secret" not in r.text and "sk-upstream" not in r.text
