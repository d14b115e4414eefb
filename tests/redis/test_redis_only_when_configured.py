"""The Redis modules are part of a gateway only when it is given Redis: a single gateway does not load them."""

from __future__ import annotations

from pathlib import Path

from fresh_process import run_fresh


def _built(tmp_path: Path, redis_url: str | None) -> list[str]:
    # A process of its own: this one has imported the Redis modules for other tests already.
    code = (
        "import sys\n"
        "from tokenmux.server.build import build_gateway\n"
        "import tokenmux.server.runner\n"
        "g = build_gateway({'providers': {'openai': {'api_key': 'k'}}},"
        f" database_url='sqlite:///{tmp_path / 'db.sqlite'}', redis_url={redis_url!r})\n"
        "p = g.parts\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('tokenmux.redis') or m == 'hiredis')\n"
        "print(type(p.ledger).__name__, p.redis_link is not None, p.shared_health is not None,\n"
        "      p.metrics.shared is not None, ','.join(loaded) or '-')\n"
    )
    return run_fresh(code, tmp_path).split()


def test_a_gateway_without_redis_loads_none_of_its_modules(tmp_path: Path) -> None:
    assert _built(tmp_path, None) == ["LocalLedger", "False", "False", "False", "-"]


def test_a_gateway_given_redis_shares_its_ledger_and_health_through_it(tmp_path: Path) -> None:
    # Built only: nothing connects until the gateway starts, so no Redis needs to answer at this address.
    ledger, link, health, gauges, loaded = _built(tmp_path, "redis://127.0.0.1:1/0")
    assert (ledger, link, health, gauges) == ("RedisLedger", "True", "True", "True")
    assert "hiredis" in loaded.split(",") and "tokenmux.redis.link" in loaded.split(",")
