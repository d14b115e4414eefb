"""Cache affinity: the next turn of a conversation goes to the endpoint that served the last one.

A provider keeps the prefix of a recent prompt in its prompt cache for a few minutes and bills it at its
cache-read price the next time; another provider has to read it all again at full price. So when a
request continues a conversation (the same key and model, and the same opening: the first system or
developer message and the first message after it, or the same explicit ``prompt_cache_key``), the
endpoint that last served that conversation goes first, as long as

- the client set no ``provider.order`` and no sort (``provider.sort``, ``:nitro``, ``:floor``): an
  explicit order wins;
- that endpoint is in the plan of the request's first model, free (no cooldown, no open circuit), and
  its cache-read price is lower than its input price (else sticking saves nothing).

The rest of the plan keeps its order, so fallback is unchanged: a failure moves on to the next endpoint,
which then serves the conversation and is remembered instead.

A conversation is remembered after a success that used or could fill a prompt cache (cached or written
tokens, a prompt of at least 1,024 tokens, or a ``prompt_cache_key``), and forgotten after ``idle_s``
without a request (300 s: providers keep a cache five to ten minutes after its last use) or when the
table is full (least recently used first). The table is per process: each replica keeps its own, and a
conversation whose turns reach different replicas sticks on each one separately.

The digest costs one hash over the conversation's opening, and only requests whose first model has
several endpoints, one of them with a cheaper cache read, compute it.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import msgspec

from tokenmux.catalog.model import Endpoint
from tokenmux.routing.router import SUFFIX_SORT, Candidate
from tokenmux.types import ChatRequest

DEFAULT_IDLE_S = 300.0
DEFAULT_MAX_CONVERSATIONS = 100_000
# The smallest prompt a provider caches (OpenAI, Anthropic's Sonnet): smaller ones gain nothing by sticking.
MIN_CACHEABLE_PROMPT_TOKENS = 1024

_LEADING_ROLES = frozenset({"system", "developer"})
_SORT_SUFFIXES = tuple(SUFFIX_SORT)
_encode = msgspec.json.Encoder().encode


def cache_read_cheaper(endpoint: Endpoint) -> bool:
    price = endpoint.price
    return price.cache_read is not None and price.cache_read < price.input


def conversation_digest(key_id: str | None, model_id: str, request: ChatRequest) -> int:
    """What identifies a conversation for its key and model: the client's ``prompt_cache_key``, else its
    first system or developer message and its first other message (what every turn repeats).

    Python's own hash of their text (SipHash, keyed at random per process): a few microseconds for a
    20 KB system prompt, a quarter of a cryptographic digest's cost; the table is per process, and a
    collision would only put another conversation's endpoint first."""
    cache_key = request.params.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        return hash((key_id, model_id, "prompt_cache_key", cache_key))
    leading: Any = None
    first: Any = None
    for message in request.messages:
        if message.get("role") in _LEADING_ROLES:
            if leading is None:
                leading = message.get("content")
        else:
            first = message
            break
    if first is None:
        return hash((key_id, model_id, _content_key(leading)))
    calls = first.get("tool_calls")
    return hash(
        (
            key_id,
            model_id,
            _content_key(leading),
            first.get("role"),
            _content_key(first.get("content")),
            _encode(calls) if calls else None,
        )
    )


def _content_key(content: Any) -> Any:
    """A message's content as something hashable that says the same whether it came as a string or as
    text parts (an inbound protocol turns one unmarked text block into a string, joins a system prompt's
    blocks with newlines); other parts encoded without their cache_control marks, which clients move from
    turn to turn (Claude Code marks the newest message)."""
    if content is None or isinstance(content, str):
        return content
    if not isinstance(content, list):
        return _encode(content)
    texts: list[str] = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:
            break
    else:
        return "\n".join(texts)
    return tuple(_part_key(part) for part in content)


def _part_key(part: Any) -> Any:
    if isinstance(part, dict):
        text = part.get("text")
        if part.get("type") == "text" and isinstance(text, str):
            return text
        if "cache_control" in part:
            part = {k: v for k, v in part.items() if k != "cache_control"}
    return _encode(part)


class CacheAffinity:
    """Conversation digest -> the key of the endpoint that last served it, forgotten after ``idle_s``."""

    __slots__ = ("_blocked_until", "_clock", "_seen", "idle_s", "max_conversations")

    def __init__(
        self,
        blocked_until: Callable[[str], float],
        *,
        idle_s: float = DEFAULT_IDLE_S,
        max_conversations: int = DEFAULT_MAX_CONVERSATIONS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # blocked_until(endpoint_key) -> when its cooldown or open circuit ends, 0 when free (HealthBoard's)
        self._blocked_until = blocked_until
        self.idle_s = idle_s
        self.max_conversations = max_conversations
        self._clock = clock
        # digest -> (endpoint key, when it was last used); oldest use first
        self._seen: OrderedDict[int, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    @property
    def enabled(self) -> bool:
        return self.idle_s > 0

    def prefer(
        self,
        plan: list[Candidate],
        request: ChatRequest,
        key_id: str | None,
        digest: int | None = None,
    ) -> tuple[list[Candidate], int | None]:
        """The plan with the conversation's endpoint first where it should be (see the module doc), and
        the conversation's digest, for ``remember``; None when affinity does not apply to the request.
        ``digest``: ``conversation_digest`` for the plan's first model, worked out already (off the event
        loop, for a large request)."""
        if not self.enabled or len(plan) < 2:
            return plan, None
        prefs = request.provider
        if prefs.order or prefs.sort or request.model.endswith(_SORT_SUFFIXES):
            return plan, None
        model = plan[0].model
        cheaper = False
        for i, cand in enumerate(plan):
            if cand.model is not model:
                if i < 2:
                    return plan, None  # one endpoint of the first model: nothing to choose
                break
            cheaper = cheaper or cache_read_cheaper(cand.endpoint)
        if not cheaper:
            return plan, None
        if digest is None:
            digest = conversation_digest(key_id, model.id, request)
        seen = self._seen.get(digest)
        if seen is None:
            return plan, digest
        endpoint_key, last_used = seen
        if self._clock() - last_used >= self.idle_s:
            del self._seen[digest]
            return plan, digest
        for i, cand in enumerate(plan):
            if cand.model is not model:
                break
            if cand.endpoint.key == endpoint_key:
                if i and cache_read_cheaper(cand.endpoint) and not self._blocked_until(endpoint_key):
                    return [cand, *plan[:i], *plan[i + 1 :]], digest
                break
        return plan, digest

    def remember(self, digest: int, endpoint_key: str) -> None:
        """``endpoint_key`` served the conversation ``digest`` just now."""
        seen = self._seen
        seen[digest] = (endpoint_key, self._clock())
        seen.move_to_end(digest)
        while len(seen) > self.max_conversations:
            seen.popitem(last=False)


def may_be_cached(
    prompt_tokens: int, cached_tokens: int, cache_write_tokens: int, request: ChatRequest
) -> bool:
    """Whether a success may have left the conversation's prompt in the provider's cache."""
    return bool(
        cached_tokens
        or cache_write_tokens
        or prompt_tokens >= MIN_CACHEABLE_PROMPT_TOKENS
        or request.params.get("prompt_cache_key")
    )
