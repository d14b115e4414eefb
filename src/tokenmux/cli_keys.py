"""``tokenmux keys``: create, list, show, update and revoke API keys, and read usage, on the database.

What the management API does over HTTP, for whoever holds the database URL. Limits are checked by the
same function as the API's (``limits.key_limits.limit_changes``), so both accept and refuse alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tokenmux.config.urls import DATABASE_URL_HELP

# CLI flag -> field of limit_changes
_LIMIT_FLAGS = {
    "credit": "credit",
    "budget": "budget",
    "period": "period",
    "rpm": "rpm",
    "tpm": "tpm",
    "models": "models",
    "providers": "providers",
    "concurrency": "concurrency",
    "data_policy": "data_policy",
    "expires": "expires",
    "retain_prompts_days": "prompt_retention_days",
}


def add_parser(sub: Any) -> None:
    keys = sub.add_parser("keys", help="create, list, show, update and revoke API keys; read usage")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it once, alone on the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="a key for the management API")
    _limit_flags(create)
    lst = keys_sub.add_parser("list", help="list keys (never their secrets)")
    lst.add_argument("--json", action="store_true")
    show = keys_sub.add_parser("show", help="one key's limits, as JSON")
    show.add_argument("key", help="id or name")
    update = keys_sub.add_parser("update", help="change a key's name or limits")
    update.add_argument("key", help="id or name")
    update.add_argument("--name", help="a new name")
    _limit_flags(update)
    update.add_argument(
        "--clear",
        action="append",
        default=[],
        metavar="LIMIT",
        help=f"remove a limit ({', '.join(_LIMIT_FLAGS)}); repeat for several",
    )
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id or name")
    revoke.add_argument("key")
    usage = keys_sub.add_parser("usage", help="requests, tokens and cost per key or per model")
    usage.add_argument("--by", choices=("key", "model"), default="key")
    usage.add_argument("--since", help="first UTC day, YYYY-MM-DD (default: 30 days ago)")
    for sp in (create, lst, show, update, revoke, usage):
        sp.add_argument("--database", help=DATABASE_URL_HELP)
        sp.add_argument(
            "--config", help="the gateway's YAML configuration file, for its database:; else TOKENMUX_CONFIG"
        )
    keys.set_defaults(func=cmd_keys)


def _limit_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--credit", metavar="USD", help="lifetime spend limit in USD")
    p.add_argument("--budget", metavar="USD", help="spend limit per --period")
    p.add_argument("--period", choices=("day", "week", "month"), help="budget period (default month)")
    p.add_argument("--rpm", help="requests per minute")
    p.add_argument("--tpm", help="tokens per minute")
    p.add_argument("--models", metavar="A/B,C/D", help="allowed models: ids or patterns such as openai/*")
    p.add_argument("--providers", metavar="P,Q", help="allowed provider slugs")
    p.add_argument("--concurrency", help="requests in flight at once")
    p.add_argument("--data-policy", choices=("zdr", "no_training"), help="only endpoints with this policy")
    p.add_argument("--expires", metavar="ISO-DATE", help="expiry, e.g. 2027-01-31 or 2027-01-31T12:00:00Z")
    p.add_argument("--retain-prompts-days", metavar="N", help="opt in: keep prompts and answers N days")


def _limits_of(args: argparse.Namespace) -> dict[str, Any]:
    raw = {
        field: getattr(args, flag) for flag, field in _LIMIT_FLAGS.items() if getattr(args, flag) is not None
    }
    for name in getattr(args, "clear", []):
        field = _LIMIT_FLAGS.get(name.replace("-", "_"))
        if field is None:
            raise ValueError(f"--clear takes one of {', '.join(_LIMIT_FLAGS)}, not {name!r}")
        raw[field] = None
        if field == "budget":
            raw["period"] = None
    return raw


def cmd_keys(args: argparse.Namespace) -> int:
    return asyncio.run(_keys(args))


async def _keys(args: argparse.Namespace) -> int:
    from tokenmux.config import database_url, decode_document, read_config
    from tokenmux.errors import InvalidRequest, StoreError
    from tokenmux.store.url import open_store

    document = decode_document(read_config(args.config))
    store = open_store(database_url(args.database, document, os.environ))
    try:
        async with store:
            return await _run(store, args)
    except InvalidRequest as e:
        print(f"error: {e.message}", file=sys.stderr)
        return 2
    except StoreError as e:
        print(f"error: the database is not usable: {e}", file=sys.stderr)
        return 1


async def _run(store: Any, args: argparse.Namespace) -> int:
    from tokenmux.errors import KeyNameTaken
    from tokenmux.limits.key_limits import limit_changes
    from tokenmux.server.key_api import key_json
    from tokenmux.store.keys import new_key

    command = args.keys_command
    if command == "create":
        changes = limit_changes({"name": args.name, **_limits_of(args)})
        secret, record = new_key(changes.pop("name"), is_admin=args.admin)
        for column, value in changes.items():
            setattr(record, column, value)
        try:
            await store.create_key(record)
        except KeyNameTaken:
            print(
                f"error: a key named {args.name!r} exists; revoke it or choose another name", file=sys.stderr
            )
            return 1
        print(
            f"created key {record.id} ({printable(record.name)})"
            f"{' with admin rights' if record.is_admin else ''}; "
            "it is shown once, store it now:",
            file=sys.stderr,
        )
        print(secret)
        return 0
    if command == "list":
        keys = await store.list_keys()
        if args.json:
            print(json.dumps([key_json(k) for k in keys], indent=2))
            return 0
        rows = [("ID", "NAME", "KEY", "ADMIN", "LIMITS", "CREATED", "STATE")]
        for k in keys:
            limits = {n: v for n, v in key_json(k)["limits"].items() if v is not None}
            rows.append(
                (
                    k.id,
                    k.name,
                    k.display,
                    "yes" if k.is_admin else "",
                    " ".join(f"{n}={_short(v)}" for n, v in limits.items()),
                    _date(k.created_at),
                    "revoked " + _date(k.revoked_at) if k.revoked_at else "active",
                )
            )
        print(_table(rows))
        return 0
    if command == "show":
        key = await store.get_key(args.key)
        if key is None:
            return _no_key(args.key)
        print(json.dumps(key_json(key), indent=2))
        return 0
    if command == "update":
        raw = _limits_of(args)
        if args.name is not None:
            raw["name"] = args.name
        if not raw:
            print("error: nothing to change: give a limit flag, --name or --clear", file=sys.stderr)
            return 2
        try:
            key = await store.update_key(args.key, limit_changes(raw))
        except KeyNameTaken:
            print(f"error: a key named {args.name!r} exists", file=sys.stderr)
            return 1
        if key is None:
            return _no_key(args.key)
        print(json.dumps(key_json(key), indent=2))
        return 0
    if command == "revoke":
        if await store.revoke_key(args.key):
            print(f"revoked {args.key}")
            return 0
        return _no_key(args.key)
    if command == "usage":
        return await _usage(store, args)
    return 2


async def _usage(store: Any, args: argparse.Namespace) -> int:
    from tokenmux.server.key_api import usage_rows

    since = args.since or (datetime.now(UTC) - timedelta(days=30)).date().isoformat()
    days = await store.all_key_days(since)
    names = {k.id: k.name for k in await store.list_keys()}
    header = ("KEY", "NAME") if args.by == "key" else ("MODEL", "")
    rows = [(*header, "REQUESTS", "PROMPT", "COMPLETION", "COST USD")]
    for row in usage_rows(days, args.by, names):
        rows.append(
            (
                row[args.by],
                row.get("name") or "",
                str(row["requests"]),
                str(row["prompt_tokens"]),
                str(row["completion_tokens"]),
                f"{row['cost']:.6f}",
            )
        )
    print(_table(rows))
    print(f"since {since}", file=sys.stderr)
    return 0


def _no_key(ident: str) -> int:
    print(f"error: no active key with id or name {ident!r}", file=sys.stderr)
    return 1


def _short(value: Any) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def _date(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) if ts else ""


def printable(text: str) -> str:
    """``text`` with every character a terminal would not print as itself (control characters, escape
    sequences, bidi overrides) written as its escape, ``\\x1b``: a key's name comes from whoever made the
    key, and must not move the cursor, recolour or rewrite what the operator sees."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _table(rows: Sequence[Sequence[str]]) -> str:
    rows = [[printable(cell) for cell in row] for row in rows]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)
