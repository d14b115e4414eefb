"""Anthropic Messages wire format <-> internal values: the inbound side of ``/api/anthropic/v1``.

A Messages request becomes the hub shape (OpenAI Chat messages and parameter names, see ``types.py``), so
any endpoint can serve it; the answer, streamed or not, goes back as Anthropic's ``message`` object or its
event sequence. What has no OpenAI equivalent travels under extra keys that only the ``anthropic`` adapter
reads, so an Anthropic-in, Anthropic-out call loses nothing:

    Anthropic request                      hub
    system (string | text blocks)          leading {"role": "system"} (parts keep cache_control)
    {"role": "system"} inside messages     {"role": "system"} at the same place (mid-conversation system
                                           messages, as current Claude Code sends them)
    text / image / document blocks         text / image_url / file parts (cache_control kept)
    tool_use blocks (assistant)            assistant tool_calls (ids kept, arguments = JSON of input)
    tool_result blocks (user)              {"role": "tool"} messages before the rest of that turn (is_error)
    tool_reference in a tool_result        a text part saying the tool is loaded, "tool_reference": name
    thinking / redacted_thinking           assistant "reasoning_blocks": the blocks verbatim (signatures)
    stop_sequences, metadata.user_id       stop, user
    tools, tool_choice                     function tools, tool_choice (+ parallel_tool_calls: false)
    thinking                               reasoning {"max_tokens"} and the original under "thinking"
    output_config.format, output_format    response_format json_schema (other output_config keys kept)
    output_config.effort, thinking on      also reasoning_effort (low, medium, high; xhigh and max: high)
    tool keys other than name, description, input_schema, strict (defer_loading, input_examples, ...)
                                           kept on the tool beside its function, for Anthropic
    anthropic-beta header                  ``betas`` of the request, forwarded to Anthropic-format providers

Streams carry the thinking extras as delta keys next to OpenAI's: ``reasoning`` (thinking text),
``reasoning_signature`` (the signature of the thinking block in progress) and ``reasoning_redacted``
(one redacted_thinking block's data). A choice or a final delta may name the ``stop_sequence`` that ended
the answer.

This module decodes requests and lists models; ``anthropic_answer`` encodes answers, streams and errors
(re-exported here, so the server imports the whole protocol from one place).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

import msgspec

from tokenmux.catalog.model import Catalog, Model
from tokenmux.errors import InvalidRequest
from tokenmux.json_codec import encode_json
from tokenmux.protocols.anthropic_answer import (
    MessagesStreamEncoder,
    encode_error,
    encode_message_response,
)
from tokenmux.protocols.json_limits import check_structure
from tokenmux.protocols.message_checks import (
    cache_control,
    check_reasoning_block,
    image_url,
    optional_string,
)
from tokenmux.protocols.openai_chat import (
    STEERING_FIELDS,
    _boolean,
    _fail,
    _integer,
    _number,
    _object,
    _provider_preferences,
)
from tokenmux.types import ChatRequest, Message

_decoder = msgspec.json.Decoder()
# A good body, shown in the answer to a body that is not one.
ANTHROPIC_EXAMPLE = '{"model": "anthropic/claude-sonnet-4.5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hi"}]}'

USER_BLOCKS = frozenset({"text", "image", "document", "tool_result"})
ASSISTANT_BLOCKS = frozenset({"text", "tool_use", "thinking", "redacted_thinking"})
# Request fields this module translates; everything else passes through under its own name, and routing
# drops it (listing it in the generation record) for endpoints that do not take it.
_TRANSLATED = frozenset(
    {
        "model",
        "models",
        "provider",
        "messages",
        "system",
        "max_tokens",
        "stop_sequences",
        "tools",
        "tool_choice",
        "metadata",
        "thinking",
        "stream",
        "output_config",
        "output_format",
    }
)
# output_config.effort as OpenAI's reasoning_effort, when thinking is on.
_EFFORT_AS_REASONING_EFFORT = {
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}
# Fields of an Anthropic tool that become the hub tool's function; any other is kept beside it.
_TOOL_FUNCTION_FIELDS = frozenset({"name", "description", "input_schema", "strict", "type", "cache_control"})
_BETA_FLAG = re.compile(r"[A-Za-z0-9._-]{1,100}")
_PARAM_CHECKS = {
    "temperature": _number(0, 1),
    "top_p": _number(0, 1),
    "top_k": _integer(0),
}

# finish_reason -> stop_reason; "stop" becomes "stop_sequence" when the answer names the sequence.
# --- requests -----------------------------------------------------------------------------------


def decode_messages_request(
    body: bytes | bytearray, *, counting: bool = False, shape_checked: bool = False
) -> ChatRequest:
    """Parse and validate a Messages request body into the hub shape. ``counting``: the body of a token
    count (``/v1/messages/count_tokens``), which has no ``max_tokens``; ``shape_checked``: as
    ``openai_chat.decode_chat_request``."""
    if not shape_checked:
        check_structure(body, ANTHROPIC_EXAMPLE)
    try:
        data = _decoder.decode(body)
    except msgspec.DecodeError as e:
        raise InvalidRequest(
            f"the request body is not valid JSON ({e}); send a JSON object such as {ANTHROPIC_EXAMPLE}",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")

    fallback: tuple[str, ...] = ()
    models = data.get("models")
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise _fail("models", "models must be a list of model ids, e.g. ['anthropic/claude-sonnet-4.5']")
        fallback = tuple(models)
    model = data.get("model")
    if model is None and fallback:
        model, fallback = fallback[0], fallback[1:]
    if not isinstance(model, str) or not model:
        raise _fail(
            "model",
            "model is required: a catalog model id such as 'anthropic/claude-sonnet-4.5' "
            "(see GET /api/anthropic/v1/models)",
        )
    max_tokens = data.get("max_tokens")
    if max_tokens is None and not counting:
        raise _fail("max_tokens", "max_tokens is required: the most tokens the answer may have, e.g. 1024")
    if max_tokens is not None:
        _integer(1)("max_tokens", max_tokens)
    raw_messages = data.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise _fail("messages", "messages must be a non-empty list of {'role': 'user', 'content': ...}")

    messages: list[Message] = []
    system = data.get("system")
    if system is not None:
        messages.append(_system_message(system))
    for i, message in enumerate(raw_messages):
        _decode_message(i, message, messages)

    params: dict[str, Any] = {} if max_tokens is None else {"max_tokens": max_tokens}
    for key, value in data.items():
        if key in _TRANSLATED:
            continue
        if key in STEERING_FIELDS:
            raise _fail(key, f"{key} cannot be set by a request; providers are configured on the gateway")
        if value is None:
            continue
        check = _PARAM_CHECKS.get(key)
        if check is not None:
            check(key, value)
        params[key] = value
    _translate_params(data, params)

    stream = data.get("stream")
    if stream is None:
        stream = False
    _boolean("stream", stream)
    return ChatRequest(
        model=model,
        messages=messages,
        params=params,
        stream=stream,
        fallback_models=fallback,
        provider=_provider_preferences(data.get("provider")),
        max_output_tokens=max_tokens,
        max_output_param="max_tokens",
        body_bytes=len(body),
        inbound="anthropic",
    )


def _system_message(system: Any, where: str = "system") -> Message:
    """The top-level ``system``, or a system message's content: a string or text blocks."""
    if isinstance(system, str):
        return {"role": "system", "content": system}
    if not isinstance(system, list):
        raise _fail(where, f"{where} must be a string or a list of text blocks")
    parts = []
    for j, block in enumerate(system):
        if (
            not isinstance(block, dict)
            or block.get("type") != "text"
            or not isinstance(block.get("text"), str)
        ):
            raise _fail(f"{where}[{j}]", f"{where}[{j}] must be a text block {{'type': 'text', 'text': ...}}")
        cache_control(f"{where}[{j}]", block)
        parts.append(_text_part(block))
    if all("cache_control" not in p for p in parts):
        return {"role": "system", "content": "\n".join(p["text"] for p in parts)}
    return {"role": "system", "content": parts}


def _decode_message(i: int, message: Any, out: list[Message]) -> None:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        raise _fail(where, f"{where} must be an object with 'role' and 'content'")
    role = message.get("role")
    if role == "system":
        out.append(_system_message(message.get("content"), f"{where}.content"))
        return
    if not isinstance(role, str) or role not in ("user", "assistant"):
        raise _fail(f"{where}.role", f"{where}.role must be 'user', 'assistant' or 'system', got {role!r}")
    content = message.get("content")
    if isinstance(content, str):
        out.append({"role": role, "content": content})
        return
    if not isinstance(content, list):
        raise _fail(f"{where}.content", f"{where}.content must be a string or a list of content blocks")
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if not isinstance(kind, str) or kind not in allowed:
            raise _fail(
                f"{where}.content[{j}]",
                f"{where}.content[{j}] must be a {role} content block of type "
                f"{', '.join(sorted(allowed))}; got {kind!r}",
            )
        cache_control(f"{where}.content[{j}]", block)
    if role == "user":
        _decode_user_blocks(where, content, out)
    else:
        _decode_assistant_blocks(where, content, out)


def _decode_user_blocks(where: str, blocks: list[dict[str, Any]], out: list[Message]) -> None:
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = block["type"]
        if kind == "tool_result":
            # OpenAI wants tool results as messages of their own right after the assistant's calls;
            # Anthropic puts them first in the next user turn, so emitting them first keeps the order.
            out.append(_tool_message(at, block))
        else:
            parts.append(_content_part(at, block))
    if len(parts) == 1 and parts[0]["type"] == "text" and "cache_control" not in parts[0]:
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})


def _decode_assistant_blocks(where: str, blocks: list[dict[str, Any]], out: list[Message]) -> None:
    texts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    reasoning: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        at = f"{where}.content[{j}]"
        kind = block["type"]
        if kind == "text":
            texts.append(_content_part(at, block))
        elif kind == "tool_use":
            calls.append(_tool_call(at, block))
        else:
            check_reasoning_block(at, block)
            reasoning.append(block)  # verbatim: the signature must come back exactly as Claude sent it
    message: Message = {"role": "assistant"}
    if any("cache_control" in t for t in texts):
        message["content"] = texts
    elif texts:
        message["content"] = "".join(t["text"] for t in texts)
    else:
        message["content"] = None if calls else ""
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning_blocks"] = reasoning
    out.append(message)


def _text_part(block: dict[str, Any]) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": block["text"]}
    if block.get("cache_control") is not None:
        part["cache_control"] = block["cache_control"]
    return part


def _content_part(at: str, block: dict[str, Any]) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise _fail(f"{at}.text", f"{at} is a text block and needs a string 'text'")
        return _text_part(block)
    if kind == "image":
        part: dict[str, Any] = {"type": "image_url", "image_url": {"url": _image_url(at, block)}}
    elif kind == "document":
        part = _document_part(at, block)
    else:
        raise _fail(at, f"{at}: {kind} blocks are not allowed here")
    if block.get("cache_control") is not None:
        part["cache_control"] = block["cache_control"]
    return part


def _image_url(at: str, block: dict[str, Any]) -> str:
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    if source.get("type") == "base64":
        media_type, data = source.get("media_type"), source.get("data")
        if isinstance(media_type, str) and isinstance(data, str):
            return f"data:{media_type};base64,{data}"
        if not isinstance(media_type, str):
            raise _fail(
                f"{at}.source.media_type", f"{at}.source.media_type must be a string such as 'image/png'"
            )
    elif source.get("type") == "url":
        url = image_url(source.get("url"), ("https://", "http://"))
        if url is not None:
            return url
    raise _fail(
        f"{at}.source",
        f"{at}.source must be {{'type': 'base64', 'media_type': 'image/png', 'data': ...}} "
        "or {'type': 'url', 'url': 'https://...'}",
    )


def _document_part(at: str, block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source")
    optional_string(at, block, "title")
    if isinstance(source, dict):
        optional_string(f"{at}.source", source, "media_type")
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            media_type = source.get("media_type") or "application/pdf"
            file: dict[str, Any] = {"file_data": f"data:{media_type};base64,{source['data']}"}
            if isinstance(block.get("title"), str):
                file["filename"] = block["title"]
            return {"type": "file", "file": file}
        if source.get("type") == "text" and isinstance(source.get("data"), str):
            return {"type": "text", "text": source["data"]}
    raise _fail(
        f"{at}.source",
        f"{at}.source must be a base64 PDF {{'type': 'base64', 'media_type': 'application/pdf', "
        "'data': ...}} or plain text {'type': 'text', 'media_type': 'text/plain', 'data': ...}",
    )


def _tool_call(at: str, block: dict[str, Any]) -> dict[str, Any]:
    call_id, name, tool_input = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise _fail(at, f"{at} is a tool_use block and needs an 'id' and a 'name'")
    if not isinstance(tool_input, dict):
        raise _fail(f"{at}.input", f"{at}.input must be an object")
    call: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": encode_json(tool_input).decode()},
    }
    if block.get("cache_control") is not None:
        call["cache_control"] = block["cache_control"]
    return call


def _tool_message(at: str, block: dict[str, Any]) -> Message:
    tool_use_id = block.get("tool_use_id")
    if not isinstance(tool_use_id, str) or not tool_use_id:
        raise _fail(f"{at}.tool_use_id", f"{at} is a tool_result and needs the 'tool_use_id' it answers")
    content = block.get("content", "")
    if isinstance(content, list):
        parts = []
        for k, inner in enumerate(content):
            inner_at = f"{at}.content[{k}]"
            kind = inner.get("type") if isinstance(inner, dict) else None
            if kind == "tool_reference":
                parts.append(_tool_reference_part(inner_at, inner))
                continue
            if kind not in ("text", "image", "document"):
                raise _fail(inner_at, f"{inner_at} must be a text, image, document or tool_reference block")
            cache_control(inner_at, inner)
            parts.append(_content_part(inner_at, inner))
        content = parts
    elif not isinstance(content, str):
        raise _fail(f"{at}.content", f"{at}.content must be a string or a list of text blocks")
    if block.get("is_error") is not None and not isinstance(block["is_error"], bool):
        raise _fail(f"{at}.is_error", f"{at}.is_error must be true or false")
    message: Message = {"role": "tool", "tool_call_id": tool_use_id, "content": content}
    if block.get("is_error"):
        message["is_error"] = True
    if block.get("cache_control") is not None:
        message["cache_control"] = block["cache_control"]
    return message


def _tool_reference_part(at: str, block: dict[str, Any]) -> dict[str, Any]:
    """A tool search's result naming a deferred tool: text any model reads, and the tool's name for
    Anthropic, which takes the block itself."""
    name = block.get("tool_name")
    if not isinstance(name, str) or not name:
        raise _fail(f"{at}.tool_name", f"{at} is a tool_reference and needs the 'tool_name' it loads")
    return {"type": "text", "text": f"Tool {name} loaded.", "tool_reference": name}


def _translate_params(data: dict[str, Any], params: dict[str, Any]) -> None:
    """The Anthropic parameters that have an OpenAI name, under that name."""
    stop = data.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise _fail("stop_sequences", "stop_sequences must be a list of strings")
        if stop:
            params["stop"] = stop
    tools = data.get("tools")
    if tools is not None:
        params["tools"] = _tools(tools)
    choice = data.get("tool_choice")
    if choice is not None:
        _tool_choice(choice, params)
    metadata = data.get("metadata")
    if metadata is not None:
        _object("metadata", metadata)
        user = metadata.get("user_id")
        if user is not None:
            if not isinstance(user, str):
                raise _fail("metadata.user_id", "metadata.user_id must be a string")
            params["user"] = user
    thinking = data.get("thinking")
    if thinking is not None:
        _thinking(thinking, params)
    output_format = data.get("output_format")
    if output_format is not None:
        params["response_format"] = _json_schema_format("output_format", output_format)
    output_config = data.get("output_config")
    if output_config is not None:
        _output_config(output_config, params)


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _fail("tools", "tools must be a list of {'name', 'description', 'input_schema'}")
    out = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
            raise _fail(f"tools[{i}]", f"tools[{i}] must be {{'name': ..., 'input_schema': {{...}}}}")
        if tool.get("type") not in (None, "custom"):
            raise _fail(
                f"tools[{i}].type",
                f"tools[{i}] is an Anthropic server tool ({tool['type']}); only client tools "
                "({'name', 'description', 'input_schema'}) can be routed to every provider",
            )
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _fail(f"tools[{i}].input_schema", f"tools[{i}].input_schema must be a JSON Schema object")
        optional_string(f"tools[{i}]", tool, "description")
        if tool.get("strict") is not None:
            _boolean(f"tools[{i}].strict", tool["strict"])
        cache_control(f"tools[{i}]", tool)
        function: dict[str, Any] = {"name": tool["name"], "parameters": schema}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        if isinstance(tool.get("strict"), bool):
            function["strict"] = tool["strict"]
        converted: dict[str, Any] = {"type": "function", "function": function}
        if tool.get("cache_control") is not None:
            converted["cache_control"] = tool["cache_control"]
        for key, value in tool.items():
            if key not in _TOOL_FUNCTION_FIELDS and value is not None:
                converted[key] = value  # defer_loading, input_examples, ...: Anthropic's own
        out.append(converted)
    return out


def _tool_choice(choice: Any, params: dict[str, Any]) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind == "auto":
        params["tool_choice"] = "auto"
    elif kind == "any":
        params["tool_choice"] = "required"
    elif kind == "none":
        params["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        params["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise _fail(
            "tool_choice",
            "tool_choice must be {'type': 'auto'}, {'type': 'any'}, {'type': 'none'} "
            "or {'type': 'tool', 'name': ...}",
        )
    disable = choice.get("disable_parallel_tool_use")
    if disable is not None:
        _boolean("tool_choice.disable_parallel_tool_use", disable)
        if disable:
            params["parallel_tool_calls"] = False


def _thinking(thinking: Any, params: dict[str, Any]) -> None:
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        _integer(1024)("thinking.budget_tokens", budget)
        params["reasoning"] = {"max_tokens": budget}
    elif kind == "adaptive":
        params["reasoning"] = {"enabled": True}
    elif kind != "disabled":
        raise _fail(
            "thinking",
            "thinking must be {'type': 'enabled', 'budget_tokens': N}, {'type': 'adaptive'} "
            "or {'type': 'disabled'}",
        )
    params["thinking"] = thinking


def _output_config(config: Any, params: dict[str, Any]) -> None:
    _object("output_config", config)
    rest = {k: v for k, v in config.items() if k != "format" and v is not None}
    fmt = config.get("format")
    if fmt is not None:
        params["response_format"] = _json_schema_format("output_config.format", fmt)
    effort = rest.get("effort")
    if isinstance(effort, str) and effort in _EFFORT_AS_REASONING_EFFORT:
        thinking = params.get("thinking")
        if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
            # How hard to think, for models that take it as OpenAI's reasoning_effort (OpenAI, Gemini);
            # Anthropic-format providers read output_config and the thinking object instead.
            params["reasoning_effort"] = _EFFORT_AS_REASONING_EFFORT[effort]
    if rest:
        params["output_config"] = rest


def _json_schema_format(name: str, fmt: Any) -> dict[str, Any]:
    """Anthropic's structured output format as OpenAI's ``response_format``."""
    if (
        not isinstance(fmt, dict)
        or fmt.get("type") != "json_schema"
        or not isinstance(fmt.get("schema"), dict)
    ):
        raise _fail(name, f"{name} must be {{'type': 'json_schema', 'schema': {{...}}}}")
    return {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True},
    }


def beta_flags(headers: Iterable[bytes]) -> tuple[str, ...]:
    """The flags of the ``anthropic-beta`` headers (comma-separated, possibly repeated), in order, once."""
    flags: dict[str, None] = {}
    for value in headers:
        for flag in value.decode("latin-1").split(","):
            flag = flag.strip()
            if not flag:
                continue
            if _BETA_FLAG.fullmatch(flag) is None:
                raise _fail(
                    "anthropic-beta",
                    "the anthropic-beta header must be comma-separated beta names such as "
                    "'interleaved-thinking-2025-05-14'",
                )
            flags[flag] = None
    return tuple(flags)


def models_json(catalog: Catalog) -> bytes:
    """``GET /api/anthropic/v1/models``: every chat model offered through the Anthropic protocol, newest
    first, in the shape of Anthropic's model list (one page: ``has_more`` is false)."""
    models = sorted(
        (
            m
            for m in catalog.models.values()
            if not m.embedding and any("anthropic" in e.protocols for e in m.endpoints)
        ),
        key=lambda m: (m.created, m.id),
        reverse=True,
    )
    data = [model_object(m) for m in models]
    return encode_json(
        {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    )


def model_object(model: Model) -> dict[str, Any]:
    """One model in the shape of Anthropic's model object (``GET /v1/models/{model_id}``)."""
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.name,
        "created_at": _rfc3339(model.created),
        "lifecycle": "active",
        "max_input_tokens": model.context_length,
        "max_tokens": model.max_output,
    }


def _rfc3339(date: str) -> str:
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        return "1970-01-01T00:00:00Z"  # Anthropic's own convention for an unknown release date
    return f"{day.isoformat()}T00:00:00Z"


__all__ = [
    "MessagesStreamEncoder",
    "beta_flags",
    "decode_messages_request",
    "encode_error",
    "encode_message_response",
    "model_object",
    "models_json",
]
