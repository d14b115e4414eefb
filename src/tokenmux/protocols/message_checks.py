"""What a Chat Completions message must look like: every field the gateway or an adapter reads, checked.

The OpenAI route takes messages in this shape, and the hub shape (``types.py``) is this shape, so this is
where a message's fields are checked before anything reads them: a field of the wrong type is a 400 naming
it here, never a crash in an adapter's encoder later. Fields no one reads pass through to the providers
that take them.
"""

from __future__ import annotations

from typing import Any

from tokenmux.errors import InvalidRequest

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
PART_TYPES = frozenset({"text", "image_url", "input_audio", "file", "refusal"})
IMAGE_DETAILS = frozenset({"auto", "low", "high"})
IMAGE_SCHEMES = ("https://", "http://", "data:")
REASONING_BLOCKS = frozenset({"thinking", "redacted_thinking"})


def fail(param: str, message: str) -> InvalidRequest:
    return InvalidRequest(message, param=param, code="invalid_parameter")


def image_url(url: Any, schemes: tuple[str, ...] = IMAGE_SCHEMES) -> str | None:
    """The URL with its scheme in lower case when it is one of ``schemes`` (an https, http or data URL),
    else None. Schemes are case-insensitive (RFC 3986): ``HTTP://`` is http, and adapters and providers
    that compare with ``"data:"`` see it in the case they expect."""
    if not isinstance(url, str):
        return None
    # Only the URL's head is looked at and copied: a data URL may be tens of MB.
    head = url[:16]
    lowered = head.lower()
    for known in schemes:
        if lowered.startswith(known):
            if head.startswith(known):
                return url
            scheme_end = known.index(":")
            return known[:scheme_end] + url[scheme_end:]
    return None


def optional_string(where: str, holder: dict[str, Any], key: str) -> None:
    value = holder.get(key)
    if value is not None and not isinstance(value, str):
        raise fail(f"{where}.{key}", f"{where}.{key} must be a string, got {type(value).__name__}")


def cache_control(where: str, holder: dict[str, Any]) -> None:
    """Anthropic's prompt-caching marker, ``{"type": "ephemeral", "ttl": "5m" | "1h"}``, where it may be."""
    value = holder.get("cache_control")
    if value is None:
        return
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise fail(
            f"{where}.cache_control",
            f"{where}.cache_control must be an object such as {{'type': 'ephemeral'}}",
        )
    optional_string(f"{where}.cache_control", value, "ttl")


def check_message(i: int, message: Any) -> None:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise fail(where, f"{where} must be an object with 'role' and 'content'")
    role = message.get("role")
    if not isinstance(role, str) or role not in ROLES:
        raise fail(f"{where}.role", f"{where}.role must be one of {', '.join(sorted(ROLES))}, got {role!r}")
    optional_string(where, message, "name")
    content = message.get("content")
    if isinstance(content, str):
        pass
    elif content is None:
        if role != "assistant" or not (message.get("tool_calls") or message.get("function_call")):
            raise fail(f"{where}.content", f"{where}.content is required (a string or a list of parts)")
    elif isinstance(content, list):
        for j, part in enumerate(content):
            check_part(f"{where}.content[{j}]", part)
    else:
        raise fail(f"{where}.content", f"{where}.content must be a string or a list of content parts")
    cache_control(where, message)
    if role == "tool" and not isinstance(message.get("tool_call_id"), str):
        raise fail(
            f"{where}.tool_call_id", f"{where} is a tool result and needs the 'tool_call_id' it answers"
        )
    if role == "assistant":
        optional_string(where, message, "refusal")
    if message.get("is_error") is not None and not isinstance(message["is_error"], bool):
        raise fail(f"{where}.is_error", f"{where}.is_error must be true or false")
    tool_calls = message.get("tool_calls")
    if tool_calls is not None:
        if not isinstance(tool_calls, list):
            raise fail(f"{where}.tool_calls", f"{where}.tool_calls must be a list")
        for j, call in enumerate(tool_calls):
            _check_tool_call(f"{where}.tool_calls[{j}]", call)
    blocks = message.get("reasoning_blocks")
    if blocks is not None:
        _check_reasoning_blocks(f"{where}.reasoning_blocks", blocks)


def _check_tool_call(where: str, call: Any) -> None:
    shape = f"{where} must be {{'id', 'type': 'function', 'function': {{'name', 'arguments'}}}}"
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise fail(where, shape)
    if not isinstance(call.get("id"), str) or not call["id"]:
        raise fail(f"{where}.id", f"{where}.id must be the call's id, a non-empty string")
    if call.get("type", "function") != "function":
        raise fail(f"{where}.type", shape)
    arguments = fn.get("arguments")
    if arguments is not None and not isinstance(arguments, str):
        raise fail(f"{where}.function.arguments", f"{where}.function.arguments must be a string of JSON")
    cache_control(where, call)


def _check_reasoning_blocks(where: str, blocks: Any) -> None:
    """Signed thinking blocks an assistant turn carries back to Claude, verbatim (``anthropic_request``)."""
    if not isinstance(blocks, list):
        raise fail(where, f"{where} must be a list of thinking blocks")
    for k, block in enumerate(blocks):
        at = f"{where}[{k}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(kind, str) or kind not in REASONING_BLOCKS:
            raise fail(at, f"{at} must be a 'thinking' or 'redacted_thinking' block")
        check_reasoning_block(at, block)


def check_reasoning_block(at: str, block: dict[str, Any]) -> None:
    if block["type"] == "thinking":
        if not isinstance(block.get("thinking"), str):
            raise fail(f"{at}.thinking", f"{at} is a thinking block and needs a string 'thinking'")
        optional_string(at, block, "signature")
    elif not isinstance(block.get("data"), str):
        raise fail(f"{at}.data", f"{at} is a redacted_thinking block and needs a string 'data'")


def check_part(where: str, part: Any) -> None:
    kind = part.get("type") if isinstance(part, dict) else None
    if not isinstance(kind, str) or kind not in PART_TYPES:
        raise fail(where, f"{where} must be a content part with type one of {', '.join(sorted(PART_TYPES))}")
    assert isinstance(part, dict)
    if kind == "text" and not isinstance(part.get("text"), str):
        raise fail(f"{where}.text", f"{where} is a text part and needs a string 'text'")
    elif kind == "refusal" and not isinstance(part.get("refusal"), str):
        raise fail(f"{where}.refusal", f"{where} is a refusal part and needs a string 'refusal'")
    elif kind == "image_url":
        image = part.get("image_url")
        url = image_url(image.get("url")) if isinstance(image, dict) else None
        if url is None:
            raise fail(
                f"{where}.image_url.url",
                f"{where}.image_url.url must be an https URL or a data URL (data:image/png;base64,...)",
            )
        assert isinstance(image, dict)
        image["url"] = url
        detail = image.get("detail")
        if detail is not None and (not isinstance(detail, str) or detail not in IMAGE_DETAILS):
            raise fail(
                f"{where}.image_url.detail", f"{where}.image_url.detail must be 'auto', 'low' or 'high'"
            )
    elif kind == "input_audio":
        audio = part.get("input_audio")
        if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
            raise fail(
                f"{where}.input_audio",
                f"{where}.input_audio must be {{'data': <base64>, 'format': 'wav' or 'mp3'}}",
            )
        optional_string(f"{where}.input_audio", audio, "format")
    elif kind == "file":
        file = part.get("file")
        if not isinstance(file, dict) or not isinstance(file.get("file_data") or file.get("file_id"), str):
            raise fail(
                f"{where}.file",
                f"{where}.file must be {{'file_data': 'data:application/pdf;base64,...', 'filename': ...}}"
                " or {'file_id': ...}",
            )
        for key in ("file_data", "file_id", "filename"):
            optional_string(f"{where}.file", file, key)
    cache_control(where, part)
