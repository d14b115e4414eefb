"""Where the store and the shared Redis are: the one resolver that ``serve``, ``demo`` and ``keys`` share.

Each URL is the first of these that is set:

    1. the command-line flag           --database URL            --redis URL
    2. the environment                 TOKENMUX_DATABASE_URL     TOKENMUX_REDIS_URL
    3. the configuration file          database: URL             redis: URL
    4. the default                     sqlite:///tokenmux.db     none (limits and health kept in process)

``tokenmux demo`` has its own default database, ``sqlite:///tokenmux-demo.db``.
"""

from __future__ import annotations

from collections.abc import Mapping

from tokenmux.config.document import ConfigDocument
from tokenmux.config.problems import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///tokenmux.db"
DATABASE_URL_ENV = "TOKENMUX_DATABASE_URL"
REDIS_URL_ENV = "TOKENMUX_REDIS_URL"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
# The command line's help for the flags, in the resolver's order.
DATABASE_URL_HELP = (
    f"database URL; else {DATABASE_URL_ENV}, the config file's database:, {DEFAULT_DATABASE_URL}"
)
REDIS_URL_HELP = (
    f"Redis URL that replicas share limits and health through; else {REDIS_URL_ENV}, the config file's"
    " redis:, none"
)


def database_url(
    flag: str | None,
    document: ConfigDocument | None,
    env: Mapping[str, str],
    *,
    default: str = DEFAULT_DATABASE_URL,
) -> str:
    """The store's URL (checked when the store is opened, ``store/url.py``)."""
    return flag or env.get(DATABASE_URL_ENV) or (document.database if document else None) or default


def redis_url(flag: str | None, document: ConfigDocument | None, env: Mapping[str, str]) -> str | None:
    """The Redis URL replicas share limits and health through, or None: each process keeps its own."""
    url = flag or env.get(REDIS_URL_ENV) or (document.redis if document else None) or None
    if url is not None and not url.startswith(_REDIS_SCHEMES):
        # Only what comes before the first colon is shown: the rest may hold a password.
        shown = url.partition(":")[0][:20]
        raise ConfigError(f"the Redis URL must start with redis://, rediss:// or unix://, not {shown!r}")
    return url
