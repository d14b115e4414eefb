"""Hub messages as OpenAI-format providers take them.

The hub shape is OpenAI's, but messages decoded from another protocol carry keys only that protocol's
providers understand: Anthropic's ``cache_control`` on parts and tools, signed thinking blocks
(``reasoning_blocks``) and ``is_error`` on tool results. OpenAI-format servers reject or ignore those, so
they are left out here; a tool error is kept by saying so in the result's text. Messages a client sent in
OpenAI's own format go out exactly as sent.
"""

from __future__ import annotations

from typing import Any

from tokenmux.types import Message

_MESSAGE_KEYS_NOT_SENT = ("reasoning_blocks", "is_error", "cache_control")
# A tool_reference part is plain text for OpenAI-format servers.
_PART_KEYS_NOT_SENT = frozenset({"cache_control", "tool_reference"})
_TOOL_ERROR_PREFIX = "Error: "
_TOOL_KEYS = frozenset({"type", "function"})


def outbound_messages(messages: list[Message], inbound: str) -> list[Message]:
    if inbound == "openai":
        return messages
    return [_message(m) for m in messages]


def outbound_params(params: dict[str, Any], inbound: str) -> dict[str, Any]:
    """Tools as OpenAI takes them: only ``type`` and ``function`` (an Anthropic client's tools carry
    ``cache_control``, ``defer_loading``, ... beside them)."""
    tools = params.get("tools")
    if inbound == "openai" or not tools or all(t.keys() <= _TOOL_KEYS for t in tools):
        return params
    out = dict(params)
    out["tools"] = [{k: v for k, v in t.items() if k in _TOOL_KEYS} for t in tools]
    return out


def _message(message: Message) -> Message:
    out = {k: v for k, v in message.items() if k not in _MESSAGE_KEYS_NOT_SENT}
    content = out.get("content")
    if isinstance(content, list):
        out["content"] = [_part(p) for p in content]
    if message.get("is_error") and message.get("role") == "tool":
        out["content"] = _as_error(out.get("content"))
    return out


def _part(part: Any) -> Any:
    if isinstance(part, dict) and not part.keys().isdisjoint(_PART_KEYS_NOT_SENT):
        return {k: v for k, v in part.items() if k not in _PART_KEYS_NOT_SENT}
    return part


def _as_error(content: Any) -> Any:
    if isinstance(content, str):
        return _TOOL_ERROR_PREFIX + content
    if isinstance(content, list):
        return [{"type": "text", "text": _TOOL_ERROR_PREFIX.strip()}, *content]
    return _TOOL_ERROR_PREFIX.strip()
