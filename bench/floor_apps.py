"""The floor: the least a Python gateway can do per request on this machine, served as tokenmux serves.

Three ASGI apps, each run in a process of its own by ``run.py`` (``stack.py`` starts them) beside the
gateway, so that the gateway's figures can be divided by theirs:

- ``server``: answers every request with a fixed chat completion (or, when the body asks for a stream, a
  fixed stream of the simulator's shape) without any upstream: what the HTTP server itself costs;
- ``proxy``: forwards the request body to the upstream over tokenmux's own HTTP/1.1 client
  (``providers/http1.py``) and relays the answer, whole or chunk by chunk as it arrives: the bare proxy,
  the floor a gateway that proxies cannot go below;
- ``proxy-aiohttp``: the same over tokenmux's aiohttp transport (``providers/aiohttp_transport.py``), the
  only difference being the client: whether the own client still earns its keep.

Each is served like ``tokenmux serve`` serves the gateway: ``runner.uvicorn_config`` (uvloop, httptools,
no access log, no Server header) with the gateway's default connection limits, so that uvicorn runs the
same protocol class (``GuardedHttpTools``) for them as for the gateway. These are benchmark apps, not
product code: they check nothing, route nothing, record nothing.

    .venv/bin/python bench/floor_apps.py {server,proxy,proxy-aiohttp} --port N [--upstream URL]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import msgspec

from tokenmux.asgi import Receive, Scope, Send
from tokenmux.providers.aiohttp_transport import AiohttpTransport
from tokenmux.providers.http1 import Http1Transport
from tokenmux.providers.transport import HttpRequest, Transport
from tokenmux.server.connections import ConnectionLimits
from tokenmux.server.runner import DrainingServer, uvicorn_config

KINDS = ("server", "proxy", "proxy-aiohttp")
# The path every floor app answers on (any other path gets the same answer: nothing is routed).
PATH = "/v1/chat/completions"
UPSTREAM_TIMEOUT_S = 60.0
# How a body asks for a stream, as msgspec (the benchmark's load generator) encodes it. The server floor
# looks for these bytes instead of decoding the JSON: deciding is all it needs to do.
STREAM_MARKER = b'"stream":true'
# The fixed answers' text: 24 words, as many tokens as the simulator's default answer has, about as long.
WORDS = [f"word{i}" for i in range(24)]


def _usage() -> dict[str, Any]:
    return {
        "prompt_tokens": 14,
        "completion_tokens": len(WORDS),
        "total_tokens": 14 + len(WORDS),
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def fixed_completion() -> bytes:
    """A chat completion of the simulator's shape and size (about 700 bytes)."""
    return msgspec.json.encode(
        {
            "id": "chatcmpl-floor",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "gpt-4.1-nano",
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": " ".join(WORDS),
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(),
            "system_fingerprint": "fp_floor",
            "service_tier": "default",
        }
    )


def fixed_stream() -> bytes:
    """A chat-completion stream of the simulator's shape: a role chunk, one chunk per word, the finish
    chunk, the usage chunk and ``[DONE]`` (28 events, about 8 KB), all at once as the simulator's default
    profile sends them."""
    base = {
        "id": "chatcmpl-floor",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "gpt-4.1-nano",
        "service_tier": "default",
        "system_fingerprint": "fp_floor",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], "usage": None}

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": word if i == 0 else " " + word}) for i, word in enumerate(WORDS)]
    events.append(chunk({}, "stop"))
    events.append({**base, "choices": [], "usage": _usage()})
    data = [b"data: " + msgspec.json.encode(e) + b"\n\n" for e in events]
    return b"".join(data) + b"data: [DONE]\n\n"


async def _read_body(receive: Receive) -> bytes:
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    parts = [body]
    while message.get("more_body"):
        message = await receive()
        parts.append(message.get("body", b""))
    return b"".join(parts)


async def _lifespan(receive: Receive, send: Send, transport: Transport | None = None) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if transport is not None:
                await transport.aclose()
            await send({"type": "lifespan.shutdown.complete"})
            return


class _Served:
    @property
    def connection_limits(self) -> ConnectionLimits:
        """The gateway's default limits: ``uvicorn_config`` then serves this app with the gateway's own
        protocol class and keep-alive, as ``tokenmux serve`` does."""
        return ConnectionLimits()


_JSON_HEAD = [(b"content-type", b"application/json")]
_STREAM_HEAD = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


class FixedAnswer(_Served):
    """The server floor: reads the body and answers a prepared completion or stream; no upstream."""

    def __init__(self) -> None:
        plain, stream = fixed_completion(), fixed_stream()
        self._plain_start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [*_JSON_HEAD, (b"content-length", b"%d" % len(plain))],
        }
        self._plain_body = {"type": "http.response.body", "body": plain}
        self._stream_start = {"type": "http.response.start", "status": 200, "headers": _STREAM_HEAD}
        self._stream_body = {"type": "http.response.body", "body": stream}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if STREAM_MARKER in body:
            await send(self._stream_start)
            await send(self._stream_body)
        else:
            await send(self._plain_start)
            await send(self._plain_body)


class BareProxy(_Served):
    """The proxy floor: the request body forwarded as it came to one upstream URL, the answer relayed with
    its status: read whole and sent with its length, or, for an event stream, each piece the client
    hands over sent on at once."""

    def __init__(self, transport: Transport, upstream_url: str, api_key: str = "sk-bench") -> None:
        self._transport = transport
        self._url = upstream_url
        self._headers = [("Authorization", f"Bearer {api_key}"), ("Content-Type", "application/json")]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send, self._transport)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        request = HttpRequest("POST", self._url, self._headers, body, UPSTREAM_TIMEOUT_S)
        response = await self._transport.send(request)
        try:
            content_type = response.header("content-type") or "application/json"
            if content_type.startswith("text/event-stream"):
                await send(
                    {"type": "http.response.start", "status": response.status, "headers": _STREAM_HEAD}
                )
                async for chunk in response.aiter_bytes():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
            else:
                answer = await response.read()
                headers = [(b"content-type", content_type.encode()), (b"content-length", b"%d" % len(answer))]
                await send({"type": "http.response.start", "status": response.status, "headers": headers})
                await send({"type": "http.response.body", "body": answer})
        finally:
            await response.aclose()


def build_app(kind: str, upstream_url: str | None) -> FixedAnswer | BareProxy:
    if kind == "server":
        return FixedAnswer()
    if upstream_url is None:
        raise ValueError(f"the {kind} floor needs --upstream")
    if kind == "proxy":
        return BareProxy(Http1Transport(), upstream_url)
    if kind == "proxy-aiohttp":
        return BareProxy(AiohttpTransport(), upstream_url)
    raise ValueError(f"unknown floor app {kind!r}; choose among {', '.join(KINDS)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", metavar="URL", help="the chat-completions URL the proxies forward to")
    args = p.parse_args(argv)
    if args.kind != "server" and not args.upstream:
        p.error(f"the {args.kind} floor needs --upstream")
    app = build_app(args.kind, args.upstream)
    print(f"floor app {args.kind} on http://{args.host}:{args.port}", file=sys.stderr)
    DrainingServer(uvicorn_config(app, args.host, args.port)).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
