"""Test helpers for driving the gateway and the simulator (fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tokenmux.limits.key_limits import limit_changes
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer
from tokenmux.store.keys import new_key
from tokenmux.store.url import open_store

NANO = "openai/gpt-4.1-nano"
# Prefixes the simulator serves for the test gateway; the OpenAI-compatible ones follow "azure".
OPENAI_COMPATIBLE = ("groq", "together", "fireworks", "deepseek", "mistral")
SIM_PREFIXES = ("openai", "azure", *OPENAI_COMPATIBLE, "anthropic", "google")
HELLO = [{"role": "user", "content": "Hello there"}]


# Where a test gateway's journal goes when its test names no ``spool_dir``: a folder of its own under this
# (the session's temporary folder, set by conftest), never the working directory. Gateways sharing a spool
# would recover each other's journals at start.
spool_root: Path | None = None


def sim_config(sim_url: str, **gateway: Any) -> dict[str, Any]:
    providers: dict[str, Any] = {
        "openai": {"base_url": f"{sim_url}/openai/v1", "api_key": "sk-upstream-openai-secret"},
        "azure": {
            "base_url": f"{sim_url}/azure",
            "api_key": "azure-upstream-secret",
            "api_version": "2024-10-21",
        },
    }
    for slug in OPENAI_COMPATIBLE:
        providers[slug] = {"base_url": f"{sim_url}/{slug}/v1", "api_key": f"{slug}-upstream-secret"}
    providers["anthropic"] = {"base_url": f"{sim_url}/anthropic", "api_key": "anthropic-upstream-secret"}
    providers["google"] = {"base_url": f"{sim_url}/google", "api_key": "google-upstream-secret"}
    settings = {"attempt_timeout_s": 1.0, "request_timeout_s": 8.0, "stream_keepalive_s": 0.3, **gateway}
    if "spool_dir" not in settings:
        settings["spool_dir"] = tempfile.mkdtemp(prefix="spool-", dir=spool_root)
    return {"providers": providers, "gateway": settings}


class Gateway:
    def __init__(self, server: BackgroundServer, key: str, app: Any) -> None:
        self.server = server
        self.url = server.url
        self.key = key
        self.app = app
        self.clients: list[Any] = []

    def openai(self, key: str | None = None, **kw: Any) -> Any:
        """An OpenAI SDK client on this gateway, closed when the test ends."""
        import openai

        client = openai.OpenAI(base_url=f"{self.url}/api/v1", api_key=key or self.key, max_retries=0, **kw)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()

    def new_key(self, name: str, **limits: Any) -> str:
        """Another key in this gateway's database (see ``make_key``)."""
        return make_key(self.app.parts.settings.database_url, name, **limits)


@contextlib.contextmanager
def open_gateway(sim_url: str, folder: Path) -> Iterator[Gateway]:
    """A gateway on the simulator at its defaults, with its SQLite database and spool in ``folder``: for a
    module's tests to share (conftest's ``module_gateway`` opens it)."""
    url = f"sqlite:///{folder / 'gw.db'}"
    key = make_key(url)
    # The spool too: its default is relative to the working directory, which other runs share.
    app = build_gateway(sim_config(sim_url, spool_dir=str(folder / "spool")), database_url=url, env={})
    with BackgroundServer(app, graceful_timeout_s=2) as server:
        gateway = Gateway(server, key, app)
        try:
            yield gateway
        finally:
            gateway.close_clients()


def make_key(database_url: str, name: str = "test", **limits: Any) -> str:
    """A new key in the database; ``limits`` as the management API takes them (credit=1.5, rpm=3, ...)."""

    async def create() -> str:
        secret, record = new_key(name)
        for column, value in limit_changes(limits).items():
            setattr(record, column, value)
        async with open_store(database_url) as store:
            await store.create_key(record)
        return secret

    return asyncio.run(create())


def raw_exchange(url: str, request: bytes) -> bytes:
    """Send raw bytes to a server at ``http://host:port`` and read its whole answer: for requests no
    HTTP client would build (broken headers)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def raw_get(gateway: Any, path: str) -> httpx.Response:
    return httpx.get(f"{gateway.url}{path}", headers={"Authorization": f"Bearer {gateway.key}"}, timeout=10)


def generation(gateway: Any, gen_id: str) -> dict[str, Any]:
    r = raw_get(gateway, f"/api/v1/generation?id={gen_id}")
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a gateway's /metrics, read with prometheus_client's own parser:
    (sample name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(f"{url}/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples
