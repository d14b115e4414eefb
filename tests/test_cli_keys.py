"""``tokenmux keys`` with limits: the interface of the issue, exactly, run as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TOKENMUX = [sys.executable, "-m", "tokenmux.cli"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TOKENMUX, *args], capture_output=True, text=True, timeout=60, env=env)


def test_create_with_every_limit_then_show_update_and_clear(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    out = run(
        "keys", "create", "--name", "team-a", "--credit", "25", "--budget", "5", "--period", "week",
        "--rpm", "60", "--tpm", "100000", "--models", "openai/gpt-4.1-nano,anthropic/*",
        "--expires", "2027-01-31", "--database", db,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-tm-")
    shown = json.loads(run("keys", "show", "team-a", "--database", db).stdout)
    assert shown["limits"] == {
        "credit": 25.0,
        "budget": 5.0,
        "budget_period": "week",
        "rpm": 60,
        "tpm": 100000,
        "concurrency": None,
        "models": ["openai/gpt-4.1-nano", "anthropic/*"],
        "providers": None,
        "data_policy": None,
    }
    assert shown["expires_at"] == "2027-01-31T00:00:00.000Z"
    assert key not in json.dumps(shown)
    updated = run("keys", "update", "team-a", "--rpm", "120", "--clear", "models", "--database", db)
    assert updated.returncode == 0, updated.stderr
    limits = json.loads(updated.stdout)["limits"]
    assert limits["rpm"] == 120 and limits["models"] is None and limits["credit"] == 25.0
    listed = run("keys", "list", "--database", db).stdout
    assert "rpm=120" in listed and key not in listed


def test_admin_keys_and_bad_limits(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    admin = run("keys", "create", "--name", "ops", "--admin", "--database", db)
    assert admin.returncode == 0 and "admin" in admin.stderr
    bad = run("keys", "create", "--name", "x", "--credit", "lots", "--database", db)
    assert bad.returncode == 2 and "'credit' must be a number" in bad.stderr
    bad = run("keys", "create", "--name", "x", "--expires", "next week", "--database", db)
    assert bad.returncode == 2 and "ISO date" in bad.stderr
    assert run("keys", "update", "nobody", "--rpm", "1", "--database", db).returncode == 1


def test_usage_by_key_and_by_model(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/k.db"
    assert run("keys", "create", "--name", "a", "--database", db).returncode == 0
    out = run("keys", "usage", "--by", "model", "--database", db)
    assert out.returncode == 0 and "MODEL" in out.stdout


def test_keys_find_the_database_as_serve_does(tmp_path: Path) -> None:
    """--database, else TOKENMUX_DATABASE_URL, else the --config file's database:, else ./tokenmux.db."""
    from_file, from_env = f"sqlite:///{tmp_path}/file.db", f"sqlite:///{tmp_path}/env.db"
    config = tmp_path / "tokenmux.yaml"
    config.write_text(f"database: {from_file}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENMUX_")}

    assert run("keys", "create", "--name", "in-file", "--config", str(config), env=env).returncode == 0
    env_first = {**env, "TOKENMUX_DATABASE_URL": from_env}
    assert run("keys", "create", "--name", "in-env", "--config", str(config), env=env_first).returncode == 0

    assert "in-file" in run("keys", "list", "--database", from_file, env=env).stdout
    listed = run("keys", "list", "--config", str(config), "--database", from_env, env=env).stdout
    assert "in-env" in listed and "in-file" not in listed


def test_list_escapes_control_characters_in_names(tmp_path: Path) -> None:
    """A name made before names had to be printable (or written to the database directly) cannot drive
    the operator's terminal: escape sequences and bidi overrides are listed as escapes."""
    import asyncio

    from tokenmux.store.keys import new_key
    from tokenmux.store.url import open_store

    db = f"sqlite:///{tmp_path}/k.db"
    hostile = "ok\x1b[2J\x1b]0;pwned\x07\u202eevil\r"

    async def plant() -> None:
        async with open_store(db) as store:
            await store.create_key(new_key(hostile)[1])

    asyncio.run(plant())
    listed = run("keys", "list", "--database", db)
    assert listed.returncode == 0, listed.stderr
    assert "\x1b" not in listed.stdout and "\u202e" not in listed.stdout and "\r" not in listed.stdout
    assert "ok\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil\\r" in listed.stdout
    refused = run("keys", "create", "--name", "a\x1bb", "--database", db)
    assert refused.returncode == 2 and "control characters" in refused.stderr
