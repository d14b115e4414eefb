"""The configuration file's shape: msgspec Structs that refuse unknown keys and values of the wrong type.

Numbers and true/false may also be written as text (``cooldown_s: "10"``), as ``${VAR}`` gives them.
Each section of ``providers:`` is checked as its kind's settings (``ProviderSettings`` in
``providers/base.py``, or the kind's subclass of it), the ``catalog:`` section by the catalog loader and
``gateway.cors`` by the CORS policy, each naming the setting the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from tokenmux.config.problems import ConfigError, decode_problem
from tokenmux.providers.base import ProviderSettings

Seconds = Annotated[float, msgspec.Meta(gt=0)]
T = TypeVar("T")


class GatewaySettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``gateway:``: how the gateway serves, whatever the providers."""

    request_timeout_s: Seconds = 300.0  # one deadline for all attempts of a request
    attempt_timeout_s: Seconds = 120.0  # per attempt, to the first byte of the answer (provider may lower it)
    # One request body (413 over it; README "Bodies" says why 32 MiB), and all the bodies of requests in
    # flight together: a request they have no room for waits up to body_wait_s, then gets 503
    # (server/body_budget.py). The budget is raised to max_body_bytes if set below it.
    max_body_bytes: Annotated[int, msgspec.Meta(gt=0)] = 32 * 1024 * 1024
    body_budget_bytes: Annotated[int, msgspec.Meta(gt=0)] = 96 * 1024 * 1024
    body_wait_s: Annotated[float, msgspec.Meta(ge=0)] = 2.0
    # all header names and values of a request together, and the number of headers; over either: 431
    max_header_bytes: Annotated[int, msgspec.Meta(gt=0)] = 32 * 1024
    max_headers: Annotated[int, msgspec.Meta(gt=0)] = 100
    # Client connections (server/connections.py): the head of a request must arrive within
    # header_timeout_s (of the connection's opening, for its first request), its body within body_timeout_s
    # of the head; a connection idle between requests closes after idle_timeout_s (behind a load balancer,
    # set it above the balancer's own idle timeout); at most max_connections are open (fewer when the
    # process may open fewer files), the stalest idle one closed to make room for a new one.
    header_timeout_s: Seconds = 10.0
    body_timeout_s: Seconds = 30.0
    idle_timeout_s: Seconds = 20.0
    max_connections: Annotated[int, msgspec.Meta(gt=0)] = 10_000
    # A client address that sends more wrong API keys than this within a minute gets 429 for
    # auth_block_s; 0 turns it off (behind a load balancer every client has the balancer's address).
    auth_failure_limit: Annotated[int, msgspec.Meta(ge=0)] = 30
    auth_block_s: Seconds = 60.0
    stream_keepalive_s: Seconds = 1.0  # comment lines while a stream waits for its first token
    cooldown_s: Annotated[float, msgspec.Meta(ge=0)] = 10.0  # after a 429 that gave no Retry-After
    circuit_failures: Annotated[int, msgspec.Meta(ge=1)] = 5  # consecutive failures that open a circuit
    circuit_open_s: Seconds = 2.0  # how long an open circuit puts its endpoint last before a probe
    # A conversation's next turn goes to the endpoint that served it (its prompt cache is there) until
    # it has been idle this long; 0 turns it off (routing/affinity.py).
    cache_affinity_s: Annotated[float, msgspec.Meta(ge=0)] = 300.0
    # Upstream HTTP client: "http1" (our keep-alive HTTP/1.1 client on httptools, ~2x less CPU per call) or
    # "aiohttp" (for what http1 does not do: proxies, HTTP/2 servers that refuse HTTP/1.1).
    http_client: Literal["http1", "aiohttp"] = "http1"
    # Load the tokenizer vocabularies the configured providers' models can need before the gateway is
    # ready, not when a prompt first needs counting: up to about 0.5 s more at start and 51 MB held from
    # it, so that no request ever waits while a vocabulary loads (the extension holds the interpreter for
    # about 0.1 s per vocabulary as it decodes one, and the event loop with it).
    preload_tokenizers: bool = False
    # A key with admin rights that is never stored (compared by digest in constant time); also
    # TOKENMUX_ADMIN_KEY. Empty: only keys made with `tokenmux keys create --admin` are admins.
    admin_key: str = ""
    # Redis calls (rate limits, reservations, shared cooldowns) give up after this long; see README "Faults".
    redis_timeout_s: Seconds = 0.25
    # A replica's holds in Redis are leases it renews every quarter of this; a dead replica's lapse after it.
    redis_lease_s: Seconds = 20.0
    # The request log's journal (every record before its response ends) and the records the database has
    # not taken; written to it at the next start (see README "What a crash loses").
    spool_dir: str = "tokenmux-spool"
    # After SIGTERM: no new connections; requests running have this long to end, then streams still running
    # end with the protocol's error event (and [DONE]), other requests with 503, recorded as "ended by
    # shutdown".
    drain_s: Seconds = 30.0
    # Where clients reach the gateway (https://llm.example.com), for the sample code on the model pages;
    # never taken from a request's Host header, which the client chooses. Default: the address `serve`
    # listens on, when it is not a wildcard.
    public_url: str = ""
    # Cross-origin access for browser clients, off when empty: {allow_origins: [...], allow_credentials: ...}
    # (checked by server/cors.py, which knows what an origin is).
    cors: dict[str, Any] = {}


class ConfigDocument(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The whole file. Sections left empty (``gateway:`` with nothing under it) count as absent."""

    providers: dict[str, Any] | None = None  # each section is checked as its kind's settings
    catalog: dict[str, Any] | None = None  # additions and overrides, see catalog/loader.py
    aliases: dict[str, str] | None = None  # more names for catalog models, see catalog/lookup.py
    gateway: GatewaySettings | None = None
    database: str | None = None  # the store's URL, see config/urls.py
    redis: str | None = None  # the URL replicas share limits and health through


def decode_document(raw: Mapping[str, Any] | ConfigDocument) -> ConfigDocument:
    """The file's parsed YAML (after ``${VAR}`` expansion) as a ConfigDocument, or ConfigError."""
    if isinstance(raw, ConfigDocument):
        return raw
    return decode(raw, ConfigDocument, "")


def decode(raw: Any, schema: type[T], where: str) -> T:
    """``raw`` converted to ``schema``; ``where`` is its path in the file, for the message."""
    try:
        return msgspec.convert(raw, schema, strict=False)
    except msgspec.ValidationError as e:
        raise decode_problem(e, schema, where) from None


__all__ = ["ConfigDocument", "ConfigError", "GatewaySettings", "ProviderSettings", "decode_document"]
