"""Claude Code (``clients/``, installed by .ci/run) works through the gateway's Anthropic route with only
its base URL and key set: its default model, a Claude model named by Anthropic's own id, and OpenAI and
Gemini models, each with a tool round trip and thinking on.

The CLI runs with HOME in a temporary folder, telemetry, error reports and updates off, and every proxy
variable pointing at a closed loopback port (only loopback bypasses it), so nothing it does can leave the
machine; each run is bounded in time. It talks to the gateway through a small recording proxy: what it
sent is shown when a run fails, and every request it made is sent again, byte for byte, to check that the
gateway takes it as it is.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from installed_clients import client_cli

from tokenmux.catalog.lookup import find_model
from tokenmux.server.runner import BackgroundServer

CLAUDE = client_cli("claude")
RUN_TIMEOUT_S = 120
# A loopback port nothing listens on: any request that is not for loopback fails at once.
NOWHERE = "http://127.0.0.1:9"
# Asked of every model: the simulator answers a request that offers tools by calling one (here Read, the
# only tool the CLI is given), and the request carrying the tool's result with text.
PROMPT = "Read the file notes.txt and summarise it."
# Headers not passed on by the recording proxy (hop-by-hop, or set again by its client).
_NOT_FORWARDED = frozenset(
    {b"host", b"content-length", b"connection", b"accept-encoding", b"transfer-encoding"}
)

pytestmark = [
    pytest.mark.clients,
    pytest.mark.skipif(
        not CLAUDE.exists(),
        reason="Claude Code is not installed: run `npm ci` in clients/ (.ci/run does it where npm is available)",
    ),
]


class RecordingProxy:
    """An ASGI app that forwards every request to ``target`` and keeps what the client sent."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.requests: list[dict[str, Any]] = []
        self._client: httpx.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k not in _NOT_FORWARDED]
        query = scope.get("query_string", b"").decode()
        record: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "query": query,
            "headers": headers,
            "body": body,
        }
        self.requests.append(record)
        assert self._client is not None
        url = scope["path"] + (f"?{query}" if query else "")
        upstream = self._client.build_request(scope["method"], url, headers=headers, content=body)
        response = await self._client.send(upstream, stream=True)
        record["status"] = response.status_code
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": [
                    (k, v)
                    for k, v in response.headers.raw
                    if k.lower() not in (b"content-length", b"transfer-encoding", b"connection")
                ],
            }
        )
        async for chunk in response.aiter_raw():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await response.aclose()
        await send({"type": "http.response.body", "body": b""})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        """The client to the gateway lives on the server's own event loop, from start to stop."""
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._client = httpx.AsyncClient(base_url=self.target, timeout=60)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def messages_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r["body"]) for r in self.requests if r["path"].endswith("/v1/messages")]

    def summary(self) -> str:
        lines = []
        for r in self.requests:
            line = f"{r['method']} {r['path']} -> {r.get('status')}"
            if r["body"]:
                body = json.loads(r["body"])
                roles = [m.get("role") for m in body.get("messages", ())]
                line += f" model={body.get('model')!r} roles={roles} fields={sorted(body)}"
            lines.append(line)
        return "\n".join(lines)


@pytest.fixture
def proxy(gateway: Any) -> Iterator[RecordingProxy]:
    recorder = RecordingProxy(gateway.url)
    with BackgroundServer(recorder, graceful_timeout_s=1) as server:
        recorder.url = server.url  # type: ignore[attr-defined]
        yield recorder


def run_claude(
    tmp_path: Path, proxy: RecordingProxy, key: str, model: str | None, *, auth_token: bool = False
) -> dict[str, Any]:
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("The gateway routes every request to the best provider.\n")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": f"{proxy.url}/api/anthropic",  # type: ignore[attr-defined]
        ("ANTHROPIC_AUTH_TOKEN" if auth_token else "ANTHROPIC_API_KEY"): key,
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "DISABLE_BUG_COMMAND": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "HTTPS_PROXY": NOWHERE,
        "HTTP_PROXY": NOWHERE,
        "ALL_PROXY": NOWHERE,
        "NO_PROXY": "127.0.0.1,localhost",
    }
    if model is not None:
        env["ANTHROPIC_MODEL"] = model
    done = subprocess.run(
        [str(CLAUDE), "-p", PROMPT, "--output-format", "json", "--tools", "Read", "--no-session-persistence"],
        cwd=work,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON result (exit {done.returncode}): {done.stderr[-2000:]}\n{proxy.summary()}")
    return result


def check_run(result: dict[str, Any], proxy: RecordingProxy) -> list[dict[str, Any]]:
    """The run succeeded after a tool round trip with thinking on; what the CLI sent is taken as sent."""
    assert result["is_error"] is False and result["result"], f"{result}\n{proxy.summary()}"
    bodies = proxy.messages_bodies()
    assert any(_has_tool_result(b) for b in bodies), f"no tool round trip:\n{proxy.summary()}"
    assert all(b.get("thinking", {}).get("type") in ("adaptive", "enabled") for b in bodies), proxy.summary()
    assert all(r["status"] == 200 for r in proxy.requests), proxy.summary()
    return bodies


def _has_tool_result(body: dict[str, Any]) -> bool:
    last = body["messages"][-1]
    content = last.get("content")
    return (
        last["role"] == "user"
        and isinstance(content, list)
        and any(b.get("type") == "tool_result" for b in content)
    )


def replay(proxy: RecordingProxy, gateway: Any) -> None:
    """Each request the CLI made, sent again to the gateway exactly as it was: answered 200."""
    with httpx.Client(base_url=gateway.url, timeout=60) as client:
        for r in proxy.requests:
            url = r["path"] + (f"?{r['query']}" if r["query"] else "")
            response = client.request(r["method"], url, headers=r["headers"], content=r["body"])
            assert response.status_code == 200, (url, response.text[:500])


def test_claude_code_with_its_default_model(
    tmp_path: Path, gateway: Any, proxy: RecordingProxy, sim: Any
) -> None:
    result = run_claude(tmp_path, proxy, gateway.key, None)
    default = json.loads(proxy.requests[0]["body"])["model"]
    assert find_model(gateway.app.parts.catalog, default) is not None, f"Claude Code's default {default!r}"
    bodies = check_run(result, proxy)
    assert {b["model"] for b in bodies} == {default}
    received = sim.requests("anthropic")
    assert received, "the default model was not served by Anthropic"
    # Claude Code puts a system message inside messages for this model, which takes it there.
    if any(m["role"] == "system" for b in bodies for m in b["messages"]):
        assert any(m["role"] == "system" for r in received for m in r["body"]["messages"])
    replay(proxy, gateway)


@pytest.mark.parametrize("auth_token", [False, True], ids=["api-key", "auth-token"])
def test_claude_code_with_a_claude_model_by_its_native_id(
    tmp_path: Path, gateway: Any, proxy: RecordingProxy, sim: Any, auth_token: bool
) -> None:
    result = run_claude(tmp_path, proxy, gateway.key, "claude-sonnet-4-5-20250929", auth_token=auth_token)
    check_run(result, proxy)
    received = sim.requests("anthropic")
    assert received and all(r["body"]["model"] == "claude-sonnet-4-5" for r in received)
    assert all("thinking" in r["body"] for r in received)
    replay(proxy, gateway)


@pytest.mark.parametrize(
    ("model", "prefix"), [("openai/gpt-5-mini", "openai"), ("google/gemini-2.5-flash", "google")]
)
def test_claude_code_with_a_model_that_is_not_claude(
    tmp_path: Path, gateway: Any, proxy: RecordingProxy, sim: Any, model: str, prefix: str
) -> None:
    result = run_claude(tmp_path, proxy, gateway.key, model)
    check_run(result, proxy)
    received = sim.requests(prefix) or sim.requests("azure")
    assert len(received) >= 2, "no tool round trip reached the provider"
    body = received[-1]["body"]
    if prefix == "google":
        assert any("functionResponse" in p for c in body["contents"] for p in c["parts"])
    else:
        assert any(m["role"] == "tool" for m in body["messages"])
    replay(proxy, gateway)
