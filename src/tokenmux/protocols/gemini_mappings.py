"""The Gemini API's words for what the hub says otherwise, in both directions.

The ``google`` provider reads Gemini answers into the hub shape and the Gemini route (``/api/gemini``)
writes hub answers in Gemini's shape; both use these tables, so the two directions cannot drift apart.

    Gemini                                  hub
    finishReason STOP                       stop (tool_calls when the candidate called functions)
    finishReason MAX_TOKENS                 length
    the safety family (SAFETY, ...)         content_filter
    usageMetadata.promptTokenCount          prompt_tokens (plus toolUsePromptTokenCount)
    candidatesTokenCount + thoughts         completion_tokens
    thoughtsTokenCount                      reasoning_tokens
    cachedContentTokenCount                 cached_tokens
    error status names (INVALID_ARGUMENT)   HTTP statuses (400)
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from tokenmux.json_codec import encode_json
from tokenmux.types import Usage

_decode = msgspec.json.Decoder().decode

FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}
# The hub's finish reasons in Gemini's words; anything else (a provider's own reason) is OTHER.
GEMINI_FINISH_REASONS = {
    "stop": "STOP",
    "tool_calls": "STOP",
    "function_call": "STOP",
    "length": "MAX_TOKENS",
    "content_filter": "SAFETY",
}

# HTTP status for a google.rpc status name (an error inside a 200 stream may carry only the name).
STATUS_BY_NAME = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNIMPLEMENTED": 501,
    "NOT_IMPLEMENTED": 501,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
# The name Gemini gives an HTTP status, for the errors this gateway answers in Gemini's shape; a status
# Gemini never sends is named by its class (4xx FAILED_PRECONDITION, 5xx INTERNAL).
_NAME_BY_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",  # the key's credit is spent: nothing to retry until it is topped up
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    431: "INVALID_ARGUMENT",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def status_name(status: int) -> str:
    """google.rpc's name for an HTTP status."""
    return _NAME_BY_STATUS.get(status) or ("FAILED_PRECONDITION" if status < 500 else "INTERNAL")


def hub_finish_reason(reason: Any, called_functions: bool) -> str:
    mapped = FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"
    return "tool_calls" if mapped == "stop" and called_functions else mapped


def gemini_finish_reason(reason: str | None) -> str:
    return GEMINI_FINISH_REASONS.get(reason or "stop", "OTHER")


def hub_usage(raw: dict[str, Any]) -> Usage:
    thoughts = _int(raw.get("thoughtsTokenCount"))
    return Usage(
        prompt_tokens=_int(raw.get("promptTokenCount")) + _int(raw.get("toolUsePromptTokenCount")),
        completion_tokens=_int(raw.get("candidatesTokenCount")) + thoughts,
        cached_tokens=_int(raw.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def usage_metadata(usage: Usage) -> dict[str, Any]:
    """Gemini's ``usageMetadata`` for hub usage: thoughts counted apart from the candidates' tokens."""
    thoughts = min(usage.reasoning_tokens, usage.completion_tokens)
    metadata: dict[str, Any] = {
        "promptTokenCount": usage.prompt_tokens,
        "candidatesTokenCount": usage.completion_tokens - thoughts,
        "totalTokenCount": usage.total_tokens,
    }
    if thoughts:
        metadata["thoughtsTokenCount"] = thoughts
    if usage.cached_tokens:
        metadata["cachedContentTokenCount"] = usage.cached_tokens
    return metadata


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0


# Function calls: Gemini's functionCall parts against the hub's tool calls. A thought signature rides on
# the tool call as ``extra_content.google.thought_signature``, the key Google's OpenAI-compatible endpoint
# uses, so that it comes back with the call.

# Google's documented stand-in for a signature a function call does not have (Gemini CLI puts it on every
# call that came without one): it says nothing, so it is not carried; the google provider puts it back.
SKIP_SIGNATURE = "skip_thought_signature_validator"


def hub_tool_call(part: dict[str, Any], response_id: str, candidate: int, position: int) -> dict[str, Any]:
    """A ``functionCall`` part as a hub tool call. A call without an id gets a stable one, made from the
    response id, candidate, position, name and arguments: the same answer read twice (or streamed) gives
    the same id, so results can answer it."""
    call = part["functionCall"]
    name = str(call.get("name") or "")
    arguments = encode_json(call.get("args") or {}).decode()
    call_id = call.get("id")
    if not isinstance(call_id, str) or not call_id:
        seed = f"{response_id}\0{candidate}\0{position}\0{name}\0{arguments}".encode()
        call_id = "call_" + hashlib.sha256(seed).hexdigest()[:24]
    tool_call: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    signature = part.get("thoughtSignature")
    if isinstance(signature, str) and signature and signature != SKIP_SIGNATURE:
        tool_call["extra_content"] = {"google": {"thought_signature": signature}}
    return tool_call


def function_call_part(call: dict[str, Any]) -> dict[str, Any]:
    """A hub tool call as a ``functionCall`` part (arguments parsed), with its signature if it has one."""
    function = call.get("function") or {}
    function_call: dict[str, Any] = {
        "name": function.get("name") or "",
        "args": _arguments(function.get("arguments")),
    }
    call_id = call.get("id")
    if isinstance(call_id, str) and call_id:
        function_call["id"] = call_id
    part: dict[str, Any] = {"functionCall": function_call}
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    if isinstance(signature, str) and signature:
        part["thoughtSignature"] = signature
    return part


def _arguments(arguments: Any) -> dict[str, Any]:
    """Tool call arguments as the object Gemini's ``args`` must be; unreadable ones become ``{}``."""
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str) and arguments:
        try:
            value = _decode(arguments)
        except msgspec.DecodeError:
            return {}
        return value if isinstance(value, dict) else {"value": value}
    return {}
