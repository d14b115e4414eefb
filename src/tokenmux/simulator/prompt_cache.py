"""A simulated provider's prompt cache: how many of a prompt's tokens were read from an earlier prompt.

Providers cache the longest prefix of a prompt they processed recently (OpenAI, Gemini and DeepSeek do it
unasked; Anthropic where the prompt marks it with ``cache_control``). Here a prompt is its leading part
(tools, system prompt or instructions) followed by its items (messages, Responses input items, Gemini
contents), whichever wire format carried them. The hash of every prefix that ends at an item boundary is
remembered for ``ttl_s`` after its last use; a new prompt reads the longest remembered prefix, as
``prompt_tokens × prefix bytes / prompt bytes`` tokens, in OpenAI's steps (only prompts of at least 1,024
tokens, in multiples of 128). ``cache_control`` marks are not part of what is compared: clients move them
from turn to turn (Claude Code marks the newest message), and the text they mark is the same.

Prompts under 1,024 tokens cost nothing here: they are neither looked up nor remembered.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from hashlib import blake2b
from typing import Any

import msgspec

MIN_CACHED_TOKENS = 1024
CACHE_STEP_TOKENS = 128
DEFAULT_TTL_S = 300.0
# Remembered prefixes per simulated provider; the least recently used go first beyond it.
MAX_PREFIXES = 20_000

_LEADING_FIELDS = ("system", "instructions", "systemInstruction", "system_instruction")
_ITEM_FIELDS = ("messages", "input", "contents")
_encode = msgspec.json.Encoder(order="deterministic").encode
_MARK = b'"cache_control"'


def prompt_parts(body: dict[str, Any], model: str) -> list[bytes]:
    """The prompt of a decoded request body as byte strings: its model (Gemini's is in the path), tools
    and leading instructions, then one per item, each without ``cache_control`` marks."""
    head: dict[str, Any] = {"model": model, "tools": body.get("tools")}
    for name in _LEADING_FIELDS:
        if name in body:
            head[name] = body[name]
    items = next((body[name] for name in _ITEM_FIELDS if name in body), ())
    if not isinstance(items, list):
        items = [items]  # Responses' input as one string
    return [_unmarked(head), *(_unmarked(item) for item in items)]


def _unmarked(value: Any) -> bytes:
    data = _encode(value)
    if _MARK in data:
        data = _encode(_without_marks(value))
    return data


def _without_marks(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_marks(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_without_marks(v) for v in value]
    return value


def cacheable(tokens: int) -> int:
    """``tokens`` in the steps a cache read comes in: none under 1,024, else a multiple of 128."""
    if tokens < MIN_CACHED_TOKENS:
        return 0
    return tokens - tokens % CACHE_STEP_TOKENS


class PromptCache:
    """The prefixes one simulated provider holds, with the time each expires."""

    __slots__ = ("_clock", "_expiry", "max_prefixes")

    def __init__(self, clock: Callable[[], float], *, max_prefixes: int = MAX_PREFIXES) -> None:
        self._clock = clock
        self.max_prefixes = max_prefixes
        self._expiry: OrderedDict[bytes, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def clear(self) -> None:
        self._expiry.clear()

    def read(self, parts: list[bytes], prompt_tokens: int, ttl_s: float = DEFAULT_TTL_S) -> int:
        """The tokens of the prompt read from the cache; every prefix of the prompt is cached from now on
        (for ``ttl_s``), the ones read included."""
        if prompt_tokens < MIN_CACHED_TOKENS or not parts:
            return 0
        now = self._clock()
        expiry = self._expiry
        digest = blake2b(digest_size=16)
        total = sum(len(p) for p in parts)
        seen = matched = 0
        for part in parts:
            digest.update(len(part).to_bytes(8, "little"))
            digest.update(part)
            seen += len(part)
            key = digest.digest()
            until = expiry.pop(key, None)
            if until is not None and until > now:
                matched = seen
            expiry[key] = now + ttl_s
        while len(expiry) > self.max_prefixes:
            expiry.popitem(last=False)
        return cacheable(prompt_tokens * matched // total)
