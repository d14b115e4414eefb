"""The ``tokenmux`` command: serve, demo, simulate, keys, models."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from tokenmux import __version__
from tokenmux.config import DEFAULT_DATABASE_URL, ConfigError, read_config_file

if TYPE_CHECKING:
    from tokenmux.store.base import Store


def _database_url(args: argparse.Namespace) -> str:
    return args.database or os.environ.get("TOKENMUX_DATABASE_URL") or DEFAULT_DATABASE_URL


def _config(args: argparse.Namespace) -> dict[str, Any]:
    path = args.config or os.environ.get("TOKENMUX_CONFIG")
    return read_config_file(path) if path else {}


# -- serve ---------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from tokenmux.server.build import build_gateway
    from tokenmux.server.runner import uvicorn_config

    gateway = build_gateway(_config(args), database_url=args.database)
    if not gateway.providers:
        print(
            "warning: no provider is configured, so no model can be served. Add a 'providers:' section to the "
            "--config file or set a provider key such as OPENAI_API_KEY.",
            file=sys.stderr,
        )
    print(
        f"tokenmux {__version__} serving {len(gateway.catalog.models)} models from "
        f"{len(gateway.providers)} providers ({', '.join(sorted(gateway.providers)) or 'none'}) "
        f"on http://{args.host}:{args.port}",
        file=sys.stderr,
    )
    uvicorn.Server(uvicorn_config(gateway, args.host, args.port, log_level=args.log_level)).run()
    return 0


# -- simulate ------------------------------------------------------------------------------------


def cmd_simulate(args: argparse.Namespace) -> int:
    from tokenmux.simulator.server import run

    profiles = None
    if args.profiles:
        profiles = read_config_file(args.profiles)
    print(
        f"tokenmux simulator on http://{args.host}:{args.port} (seed {args.seed}); "
        f"OpenAI format at /openai/v1, Azure at /azure, control at /_control/{{prefix}}",
        file=sys.stderr,
    )
    run(args.host, args.port, seed=args.seed, profiles=profiles)
    return 0


# -- demo ----------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> int:
    from tokenmux.demo import run_demo

    return run_demo(
        host=args.host,
        port=args.port,
        database_url=args.database or "sqlite:///tokenmux-demo.db",
        traffic_rps=0.0 if args.no_traffic else args.traffic_rps,
        duration_s=args.duration,
    )


# -- keys ----------------------------------------------------------------------------------------


def cmd_keys(args: argparse.Namespace) -> int:
    return asyncio.run(_keys(args))


async def _keys(args: argparse.Namespace) -> int:
    from tokenmux.store.base import StoreError
    from tokenmux.store.url import open_store

    store = open_store(_database_url(args))
    try:
        return await _keys_on(store, args)
    except StoreError as e:
        print(f"error: the database is not usable: {e}", file=sys.stderr)
        return 1


async def _keys_on(store: Store, args: argparse.Namespace) -> int:
    from tokenmux.store.base import KeyNameTaken
    from tokenmux.store.keys import new_key

    async with store:
        if args.keys_command == "create":
            secret, record = new_key(args.name, is_admin=args.admin)
            try:
                await store.create_key(record)
            except KeyNameTaken:
                print(
                    f"error: a key named {args.name!r} exists; revoke it or choose another name",
                    file=sys.stderr,
                )
                return 1
            print(
                f"created key {record.id} ({record.name}){' with admin rights' if record.is_admin else ''}; "
                "it is shown once, store it now:",
                file=sys.stderr,
            )
            print(secret)
            return 0
        if args.keys_command == "list":
            keys = await store.list_keys()
            if args.json:
                print(
                    json.dumps(
                        [
                            {
                                "id": k.id,
                                "name": k.name,
                                "key": k.display,
                                "admin": k.is_admin,
                                "created_at": k.created_at,
                                "revoked_at": k.revoked_at,
                            }
                            for k in keys
                        ],
                        indent=2,
                    )
                )
                return 0
            rows = [("ID", "NAME", "KEY", "ADMIN", "CREATED", "STATE")]
            for k in keys:
                rows.append(
                    (
                        k.id,
                        k.name,
                        k.display,
                        "yes" if k.is_admin else "",
                        _date(k.created_at),
                        "revoked " + _date(k.revoked_at) if k.revoked_at else "active",
                    )
                )
            print(_table(rows))
            return 0
        if args.keys_command == "revoke":
            if await store.revoke_key(args.key):
                print(f"revoked {args.key}")
                return 0
            print(f"error: no active key with id or name {args.key!r}", file=sys.stderr)
            return 1
    return 2


def _date(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) if ts else ""


def _table(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows)


# -- models --------------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from tokenmux.catalog.loader import load_catalog
    from tokenmux.catalog.table import format_models_table

    catalog = load_catalog(_config(args).get("catalog") or None)
    print(format_models_table(catalog, provider=args.provider))
    print(f"\n{len(catalog.models)} models; prices as of {catalog.prices_as_of}", file=sys.stderr)
    return 0


# -- entry ---------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tokenmux", description="Self-hosted LLM gateway and model router.")
    p.add_argument("--version", action="version", version=f"tokenmux {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--config", help="YAML configuration file (providers, catalog, gateway settings)")
    serve.add_argument(
        "--database", help=f"database URL (default {DEFAULT_DATABASE_URL}; env TOKENMUX_DATABASE_URL)"
    )
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="gateway + simulated providers + a little traffic, no keys needed")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--database", help="database URL (default sqlite:///tokenmux-demo.db)")
    demo.add_argument("--traffic-rps", type=float, default=2.0, help="background requests per second")
    demo.add_argument("--no-traffic", action="store_true", help="send no background traffic")
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    demo.set_defaults(func=cmd_demo)

    sim = sub.add_parser("simulate", help="run the provider simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=9100)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--profiles", help="YAML/JSON file: {prefix: profile} to start with")
    sim.set_defaults(func=cmd_simulate)

    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it once, alone on the last line")
    create.add_argument("--name", required=True)
    create.add_argument("--admin", action="store_true", help="a key for the management API")
    lst = keys_sub.add_parser("list", help="list keys (never their secrets)")
    lst.add_argument("--json", action="store_true")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id or name")
    revoke.add_argument("key")
    for sp in (create, lst, revoke):
        sp.add_argument("--database", help=f"database URL (default {DEFAULT_DATABASE_URL})")
    keys.set_defaults(func=cmd_keys)

    models = sub.add_parser("models", help="print the catalog")
    models.add_argument("--provider", help="only models this provider serves")
    models.add_argument("--config", help="YAML configuration file with catalog additions")
    models.set_defaults(func=cmd_models)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        code: int = args.func(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
