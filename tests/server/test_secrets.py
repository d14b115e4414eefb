"""Provider keys never reach a client, the request log or a log line, even from an upstream that answers 200
with something that is not the expected JSON and echoes the request's headers (a wrong ``base_url``, a
proxy's or a WAF's page): for every provider kind, streamed and not, whatever the echo's shape and case."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway_support import HELLO, generation
from tokenmux.server.runner import BackgroundServer

# Random-looking, as real keys are (a key holding a word would match that word elsewhere).
SECRETS = {
    "openai": "sk-q7RkV2xW9pLmT4nB8cYd3FhJ",
    "azure": "c41e9a07Bd2f4c8e9A1b6d3f0e7a5c29",
    "groq": "gsk_Wv8Qz3Lp6Tn1Xr5Km9Hd2Bj7",  # openai-compatible
    "anthropic": "sk-ant-api03-Zp4Ng7Qw2Rv9Lx6Tk1Mh8Yb3",
    "google": "AIzaSyD7kQ2mX9vL4pR8tN1wB6cJ3hF5gZ0",
}
PROXY_TOKEN = "pxt-Hq5Vm8Rk2Wn7Lc4Zs9Td"  # a credential header configured for the groq provider
# provider slug -> a model served there
MODELS = {
    "openai": "openai/gpt-4.1-nano",
    "azure": "openai/gpt-4.1-nano",
    "groq": "openai/gpt-oss-20b",
    "anthropic": "anthropic/claude-haiku-4.5",
    "google": "google/gemini-2.5-flash",
}
SHAPES = ("page", "upper", "cut", "json")


class EchoUpstream:
    """Answers every POST with 200 and a body that echoes the request headers, in the shape ``shape``:
    an HTML page, the same upper-cased, a page whose 300th character falls inside the key, or JSON of an
    unexpected shape. A streamed request gets the echo as SSE events (one not JSON, one JSON)."""

    def __init__(self) -> None:
        self.shape = "page"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        streamed = b'"stream":true' in body.replace(b" ", b"") or "streamGenerate" in scope["path"]
        lines = "\n".join(f"{k}: {v}" for k, v in headers.items())
        if self.shape == "json":
            text = json.dumps({"echo": {"headers": headers, "path": scope["path"]}})
        elif self.shape == "cut":
            # Snippets of answers stop at 300 characters, of stream events at 200.
            limit = 200 if streamed else 300
            secret = next(
                v
                for k, v in headers.items()
                if k in ("authorization", "api-key", "x-api-key", "x-goog-api-key")
            )
            text = "x" * (limit - len(secret) // 2 - 1) + secret + " and the rest of the page"
        else:
            text = f"<html><body><h1>Request blocked</h1><pre>{lines}</pre></body></html>"
            if self.shape == "upper":
                text = text.upper()
        if streamed:
            line = text.replace("\n", " | ")  # an SSE event's data is one line
            payload = f"data: {line}\n\ndata: {json.dumps({'echo': text})}\n\n".encode()
            content_type = b"text/event-stream"
        else:
            payload = text.encode()
            content_type = b"application/json" if self.shape == "json" else b"text/html"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type), (b"content-length", b"%d" % len(payload))],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@pytest.fixture(scope="module")
def echo() -> Iterator[tuple[EchoUpstream, str]]:
    app = EchoUpstream()
    with BackgroundServer(app, lifespan="off") as server:
        yield app, server.url


def echo_config(url: str) -> dict[str, Any]:
    return {
        "providers": {
            "openai": {"base_url": f"{url}/openai/v1", "api_key": SECRETS["openai"]},
            "azure": {"base_url": f"{url}/azure", "api_key": SECRETS["azure"], "api_version": "2024-10-21"},
            "groq": {
                "base_url": f"{url}/groq/v1",
                "api_key": SECRETS["groq"],
                "headers": {"X-Proxy-Token": PROXY_TOKEN},
            },
            "anthropic": {"base_url": f"{url}/anthropic", "api_key": SECRETS["anthropic"]},
            "google": {"base_url": f"{url}/google", "api_key": SECRETS["google"]},
        },
        "gateway": {"attempt_timeout_s": 2.0, "request_timeout_s": 5.0},
    }


def leaked(text: str) -> list[str]:
    """The credentials, or pieces of them of 12 characters or more, found in ``text`` whatever the case."""
    low = text.lower()
    found = []
    for secret in [*SECRETS.values(), PROXY_TOKEN]:
        s = secret.lower()
        if any(s[i : i + 12] in low for i in range(len(s) - 11)):
            found.append(secret)
    return found


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("shape", SHAPES)
def test_an_echoing_upstream_never_leaks_a_provider_key(
    gateway_factory: Any, echo: tuple[EchoUpstream, str], shape: str, stream: bool, caplog: Any
) -> None:
    upstream, url = echo
    upstream.shape = shape
    gw = gateway_factory(echo_config(url))
    caplog.set_level(logging.DEBUG)
    scrubbed = 0
    for slug, model in MODELS.items():
        body = {
            "model": model,
            "messages": HELLO,
            "max_tokens": 5,
            "stream": stream,
            "provider": {"only": [slug]},
        }
        r = httpx.post(
            f"{gw.url}/api/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {gw.key}"},
            timeout=10,
        )
        answer = r.text
        assert r.status_code in (200, 502), (slug, r.status_code, answer[:300])
        if stream and r.status_code == 200:
            assert "error" in answer  # told in the stream: the echo is no answer
        assert leaked(answer) == [], (slug, answer[:500])
        record = generation(gw, r.headers["x-generation-id"])
        assert record["attempts"][0]["provider"] == slug
        assert leaked(json.dumps(record)) == [], (slug, record)
        scrubbed += "***" in answer
    assert leaked(caplog.text) == []
    if shape != "json":
        assert scrubbed > 0  # the echo reached the error text, scrubbed: this test can fail


def test_a_provider_error_object_echoing_the_key_is_scrubbed_for_the_anthropic_client(
    gateway_factory: Any, echo: tuple[EchoUpstream, str]
) -> None:
    upstream, url = echo
    upstream.shape = "upper"
    gw = gateway_factory(echo_config(url))
    for slug, model in MODELS.items():
        r = httpx.post(
            f"{gw.url}/api/anthropic/v1/messages",
            json={"model": model, "max_tokens": 5, "messages": HELLO, "provider": {"only": [slug]}},
            headers={"x-api-key": gw.key, "anthropic-version": "2023-06-01"},
            timeout=10,
        )
        assert r.status_code == 502 and r.json()["type"] == "error", r.text[:300]
        assert leaked(r.text) == []
