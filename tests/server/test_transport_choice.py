"""The upstream client the configuration asks for, and only its library loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from fresh_process import run_fresh
from tokenmux.providers.http1 import Http1Transport
from tokenmux.server.build import build_gateway


def _serve_imports(tmp_path: Path, http_client: str | None) -> list[str]:
    # A process of its own: this one has imported aiohttp for other tests already.
    gateway = {"http_client": http_client} if http_client else {}
    code = (
        "import sys\n"
        "from tokenmux.server.build import build_gateway\n"
        "import tokenmux.server.runner\n"
        f"g = build_gateway({{'gateway': {gateway!r}, 'providers': {{'openai': {{'api_key': 'k'}}}}}},"
        f" database_url='sqlite:///{tmp_path / 'db.sqlite'}')\n"
        "print(type(g.parts.transport).__name__, 'aiohttp' in sys.modules)\n"
    )
    return run_fresh(code, tmp_path).split()


def test_the_default_client_leaves_aiohttp_unloaded(tmp_path: Path) -> None:
    assert _serve_imports(tmp_path, None) == ["Http1Transport", "False"]


def test_the_aiohttp_client_is_there_when_configured(tmp_path: Path) -> None:
    assert _serve_imports(tmp_path, "aiohttp") == ["AiohttpTransport", "True"]


@pytest.mark.parametrize("http_client", ["http1", None])
def test_the_own_client_serves_by_default(http_client: str | None) -> None:
    gateway = {"http_client": http_client} if http_client else {}
    g = build_gateway({"gateway": gateway}, database_url="sqlite:///:memory:")
    assert isinstance(g.parts.transport, Http1Transport)
