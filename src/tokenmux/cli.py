"""The ``tokenmux`` command: serve, demo, simulate, keys, models, catalog import."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from tokenmux import __version__
from tokenmux.cli_catalog import add_parser as add_catalog_parser
from tokenmux.cli_keys import add_parser as add_keys_parser
from tokenmux.config import database_url, read_config, read_config_file
from tokenmux.config.urls import DATABASE_URL_HELP, REDIS_URL_HELP
from tokenmux.errors import ConfigError

DEMO_DATABASE_URL = "sqlite:///tokenmux-demo.db"
CONFIG_HELP = (
    "YAML configuration file (providers, catalog, gateway settings, database, redis); else TOKENMUX_CONFIG"
)


# -- serve ---------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from tokenmux.server.build import build_gateway
    from tokenmux.server.runner import DrainingServer, uvicorn_config

    # A wildcard address is no URL a client can use; then the pages show a placeholder unless configured.
    listen_url = None if args.host in ("0.0.0.0", "::", "") else f"http://{args.host}:{args.port}"
    gateway = build_gateway(
        read_config(args.config), database_url=args.database, redis_url=args.redis, listen_url=listen_url
    )
    parts = gateway.parts
    if not parts.providers:
        print(
            "warning: no provider is configured, so no model can be served. Add a 'providers:' section to the "
            "--config file or set a provider key such as OPENAI_API_KEY.",
            file=sys.stderr,
        )
    print(
        f"tokenmux {__version__} serving {len(parts.catalog.models)} models from "
        f"{len(parts.providers)} providers ({', '.join(sorted(parts.providers)) or 'none'}) "
        f"on http://{args.host}:{args.port}",
        file=sys.stderr,
    )
    # uvicorn gives running requests a little longer than the drain, which ends them itself, telling clients.
    drain_s = gateway.parts.settings.gateway.drain_s
    DrainingServer(
        uvicorn_config(
            gateway, args.host, args.port, log_level=args.log_level, graceful_timeout_s=drain_s + 5
        )
    ).run()
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
        database_url=database_url(args.database, None, os.environ, default=DEMO_DATABASE_URL),
        traffic_rps=0.0 if args.no_traffic else args.traffic_rps,
        duration_s=args.duration,
    )


# -- models --------------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from tokenmux.catalog.loader import load_catalog
    from tokenmux.catalog.table import format_models_table
    from tokenmux.config import decode_document

    document = decode_document(read_config(args.config))
    catalog = load_catalog(document.catalog or None, document.aliases or None)
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
    serve.add_argument("--config", help=CONFIG_HELP)
    serve.add_argument("--database", help=DATABASE_URL_HELP)
    serve.add_argument("--redis", help=REDIS_URL_HELP)
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="gateway + simulated providers + a little traffic, no keys needed")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument(
        "--database", help=f"database URL; else TOKENMUX_DATABASE_URL, {DEMO_DATABASE_URL} (a demo's own)"
    )
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

    add_keys_parser(sub)
    add_catalog_parser(sub)

    models = sub.add_parser("models", help="print the catalog")
    models.add_argument("--provider", help="only models this provider serves")
    models.add_argument("--config", help=CONFIG_HELP)
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
