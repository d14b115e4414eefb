"""Bad input gets a clear error in OpenAI's shape, never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from gateway_support import HELLO, NANO

# Refused requests leave nothing in a gateway, so the module shares one (see own_gateway).
pytestmark = pytest.mark.shared_gateway


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


def test_output_above_every_endpoints_maximum_is_400_naming_the_parameter(gateway: Any) -> None:
    # gpt-4.1-nano's max output is 32,768 at both endpoints
    for name in ("max_completion_tokens", "max_tokens"):
        err = error_of(post(gateway, {"model": NANO, "messages": HELLO, name: 40_000}), 400)
        assert err["param"] == name and "32768" in err["message"].replace(",", "")


def test_unknown_route_is_404_json(gateway: Any) -> None:
    r = httpx.get(f"{gateway.url}/api/v1/nothing")
    assert r.status_code == 404 and r.json()["error"]["message"]


def test_generation_needs_an_id_and_only_shows_own(gateway: Any) -> None:
    headers = {"Authorization": f"Bearer {gateway.key}"}
    assert httpx.get(f"{gateway.url}/api/v1/generation", headers=headers).status_code == 400
    assert httpx.get(f"{gateway.url}/api/v1/generation?id=gen-nope", headers=headers).status_code == 404
    assert httpx.get(f"{gateway.url}/api/v1/generation?id=gen-nope").status_code == 401


# Fails both of NANO's endpoints: their health changes.
@pytest.mark.own_gateway
def test_upstream_secrets_never_reach_the_client(gateway: Any, sim: Any) -> None:
    sim.profile("openai", error_rate=1.0, error_status=500)
    sim.profile("azure", error_rate=1.0, error_status=500)
    r = post(gateway, {"model": NANO, "messages": HELLO})
    assert r.status_code == 502
    assert "upstream-secret" not in r.text and "sk-upstream" not in r.text


DEEP = b"[" * 1000 + b"]" * 1000


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "openai/gpt-4.1-nano", "messages": ' + DEEP + b"}",
        b"[" * 1000,  # unclosed
        b'{"model": "x", "metadata": ' + b'{"a":' * 2000 + b"1" + b"}" * 2000 + b"}",
    ],
)
def test_json_nested_too_deep_is_a_400_not_a_500(gateway: Any, body: bytes) -> None:
    err = error_of(post(gateway, body), 400)
    assert err["code"] == "invalid_json" and "levels deep" in err["message"]
    anthropic_answer = httpx.post(
        f"{gateway.url}/api/anthropic/v1/messages",
        content=body,
        headers={"x-api-key": gateway.key, "content-type": "application/json"},
        timeout=10,
    )
    assert anthropic_answer.status_code == 400
    assert anthropic_answer.json()["type"] == "error" and "levels deep" in anthropic_answer.text


@pytest.mark.parametrize(
    ("message", "param"),
    [
        ({"role": {}, "content": "x"}, "messages[0].role"),
        ({"role": "user", "content": [{"type": [], "text": "x"}]}, "messages[0].content[0]"),
        ({"role": "user", "content": [{"type": "file", "file": "x"}]}, "messages[0].content[0].file"),
        (
            {"role": "user", "content": [{"type": "input_audio", "input_audio": "x"}]},
            "messages[0].content[0].input_audio",
        ),
        ({"role": "assistant", "content": "x", "reasoning_blocks": [1]}, "messages[0].reasoning_blocks[0]"),
        (
            {"role": "assistant", "content": None, "tool_calls": [{"function": {"name": "f"}, "id": 5}]},
            "messages[0].tool_calls[0].id",
        ),
    ],
)
def test_type_confusion_in_a_message_is_a_400_naming_the_field(
    gateway: Any, message: dict[str, Any], param: str
) -> None:
    err = error_of(post(gateway, {"model": NANO, "messages": [message, *HELLO]}), 400)
    assert err["param"] == param


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ([{"type": {}, "text": "x"}], "messages[0].content[0]"),
        ([{"type": "text", "text": "x", "cache_control": "now"}], "messages[0].content[0].cache_control"),
        ([{"type": "image", "source": {"type": "base64", "media_type": 5, "data": "AA"}}], "media_type"),
        ([{"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}], "is_error"),
    ],
)
def test_type_confusion_in_an_anthropic_block_is_a_400_in_anthropics_shape(
    gateway: Any, content: list[Any], named: str
) -> None:
    r = httpx.post(
        f"{gateway.url}/api/anthropic/v1/messages",
        json={"model": NANO, "max_tokens": 5, "messages": [{"role": "user", "content": content}]},
        headers={"x-api-key": gateway.key},
        timeout=10,
    )
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert named in body["error"]["message"]
