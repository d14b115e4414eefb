"""``gateway.preload_tokenizers``: the vocabularies a configured provider's models can need are loaded
before the server takes a connection, so no request waits while one loads; without it none is loaded
until a prompt needs counting."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from fresh_process import run_fresh
from tokenmux.routing.tokens import CL100K, O200K, encodings_of
from tokenmux.server import lifecycle
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer


def loaded_after_start(tmp_path: Path, providers: dict[str, object], preload: bool) -> list[str]:
    # A process of its own: this one may have loaded vocabularies for other tests.
    config = {"providers": providers, "gateway": {"preload_tokenizers": preload}}
    code = (
        "from tokenmux.routing.tokens import loaded_encodings\n"
        "from tokenmux.server.build import build_gateway\n"
        "from tokenmux.server.runner import BackgroundServer\n"
        f"g = build_gateway({config!r}, database_url='sqlite:///{tmp_path / 'db.sqlite'}')\n"
        "with BackgroundServer(g, graceful_timeout_s=1):\n"
        "    print(','.join(loaded_encodings()) or '-')\n"
    )
    return run_fresh(code, tmp_path).split()[-1].split(",")


def test_a_preloading_gateway_holds_its_providers_vocabularies_once_started(tmp_path: Path) -> None:
    # Claude's family is counted with cl100k_base (scaled): an Anthropic-only gateway needs no o200k_base.
    assert loaded_after_start(tmp_path, {"anthropic": {"api_key": "k"}}, preload=True) == [CL100K]


def test_without_preloading_no_vocabulary_is_loaded_at_start(tmp_path: Path) -> None:
    assert loaded_after_start(tmp_path, {"openai": {"api_key": "k"}}, preload=False) == ["-"]


def test_the_encodings_of_families() -> None:
    assert encodings_of(["o200k", "claude", "gemini"]) == [CL100K, O200K]
    assert encodings_of(["a-family-nobody-knows"]) == [CL100K]  # the cautious stand-in
    assert encodings_of([]) == []


def test_a_gateway_whose_preload_fails_serves_anyway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(encodings: object) -> None:
        raise OSError("vocabulary unreadable")

    monkeypatch.setattr(lifecycle, "warm_up", broken)
    config = {"providers": {"anthropic": {"api_key": "k"}}, "gateway": {"preload_tokenizers": True}}
    gateway = build_gateway(config, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    with BackgroundServer(gateway, graceful_timeout_s=1) as server:
        assert httpx.get(f"{server.url}/ready", timeout=10).json()["status"] == "ready"
    assert "could not load the tokenizer vocabularies cl100k_base" in caplog.text
