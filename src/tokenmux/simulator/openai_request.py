"""Reading an OpenAI Chat Completions request: the checks OpenAI makes that the simulator relies on,
with OpenAI's messages and parameter names, and what the request asks for as an ``AnswerSpec``."""

from __future__ import annotations

from typing import Any

import msgspec

from tokenmux.simulator.answer import AnswerSpec, ToolSpec
from tokenmux.simulator.wire import RequestRejected

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_IMAGE_TOKENS = 85  # what OpenAI bills a low-detail image; good enough for an estimate


def parse_chat_request(body: Any, path_model: str | None) -> AnswerSpec:
    """Check a Chat Completions request the way OpenAI does (the parts the simulator relies on) and say
    what it asks for. ``path_model`` is Azure's deployment, which stands in for the body's model."""
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", None, "invalid_type")
    model = path_model or body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("you must provide a model parameter", "model", "missing_required_parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid(
            "Missing required parameter: 'messages' (a non-empty array of messages).",
            "messages",
            "missing_required_parameter",
        )
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise _invalid(
                f"Invalid 'messages[{position}]': each message must be an object with a 'role' of "
                f"{', '.join(sorted(_ROLES))}.",
                f"messages[{position}]",
                "invalid_value",
            )
    n = _integer(body, "n", 1, 128) or 1
    max_tokens = _integer(body, "max_completion_tokens", 1, None)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1, None)
    logprobs = _boolean(body, "logprobs") or False
    top_logprobs = _integer(body, "top_logprobs", 0, 20)
    if top_logprobs is not None and not logprobs:
        raise _invalid(
            "Invalid value for 'top_logprobs': 'logprobs' must be set to true when 'top_logprobs' is used.",
            "top_logprobs",
            "invalid_value",
        )
    stream = _boolean(body, "stream") or False
    stream_options = body.get("stream_options")
    include_usage = False
    if stream_options is not None:
        if not stream:
            raise _invalid(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                "stream_options",
                "invalid_value",
            )
        if not isinstance(stream_options, dict):
            raise _invalid(
                "Invalid type for 'stream_options': expected an object.", "stream_options", "invalid_type"
            )
        include_usage = _boolean(stream_options, "include_usage", "stream_options.include_usage") or False
    tools = _tools(body.get("tools"))
    tool_choice, named_tool = _tool_choice(body.get("tool_choice"), tools)
    output, json_schema = _response_format(body.get("response_format"))
    return AnswerSpec(
        model=model,
        prompt_tokens=estimate_prompt_tokens(messages, body.get("tools")),
        n=n,
        max_tokens=max_tokens,
        stop=_stop(body.get("stop")),
        tools=tools,
        tool_choice=tool_choice,
        named_tool=named_tool,
        parallel_tool_calls=_boolean(body, "parallel_tool_calls") is not False,
        output=output,
        json_schema=json_schema,
        logprobs=logprobs,
        top_logprobs=top_logprobs or 0,
        after_tool_result=messages[-1].get("role") == "tool",
        stream=stream,
        include_usage=include_usage,
    )


def estimate_prompt_tokens(messages: list[dict[str, Any]], tools: Any) -> int:
    """A cheap, deterministic estimate: a token per 4 bytes of text, 3 tokens of framing per message."""
    text_bytes = 0
    images = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            text_bytes += _byte_length(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                text = part.get("text")
                if isinstance(text, str):
                    text_bytes += _byte_length(text)
                elif part.get("type") == "image_url":
                    images += 1
        calls = message.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                function = call.get("function") if isinstance(call, dict) else None
                arguments = function.get("arguments") if isinstance(function, dict) else None
                if isinstance(arguments, str):
                    text_bytes += _byte_length(arguments)
    if tools:
        text_bytes += len(msgspec.json.encode(tools))
    return 3 * len(messages) + 3 + text_bytes // 4 + _IMAGE_TOKENS * images


def _byte_length(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode())


def _invalid(message: str, param: str | None, code: str) -> RequestRejected:
    return RequestRejected(400, message, param=param, code=code)


def _integer(body: dict[str, Any], name: str, low: int, high: int | None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(
            f"Invalid type for '{name}': expected an integer, but got {value!r}.", name, "invalid_type"
        )
    if value < low:
        raise _invalid(
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got {value}.",
            name,
            "integer_below_min_value",
        )
    if high is not None and value > high:
        raise _invalid(
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got {value}.",
            name,
            "integer_above_max_value",
        )
    return value


def _boolean(body: dict[str, Any], name: str, param: str | None = None) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise _invalid(
        f"Invalid type for '{param or name}': expected a boolean, but got {value!r}.",
        param or name,
        "invalid_type",
    )


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if isinstance(value, list) and len(value) <= 4 and all(isinstance(s, str) for s in value):
        return tuple(s for s in value if s)
    raise _invalid(
        "Invalid 'stop': expected a string or an array of at most 4 strings.", "stop", "invalid_value"
    )


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid("Invalid type for 'tools': expected an array of tools.", "tools", "invalid_type")
    tools = []
    for position, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if (
            not isinstance(tool, dict)
            or tool.get("type") != "function"
            or not isinstance(name, str)
            or not name
        ):
            raise _invalid(
                f'Invalid \'tools[{position}]\': expected {{"type": "function", "function": '
                '{"name": ..., "parameters": {...}}}.',
                f"tools[{position}]",
                "invalid_value",
            )
        assert isinstance(function, dict)
        parameters = function.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise _invalid(
                f"Invalid type for 'tools[{position}].function.parameters': expected a JSON schema object.",
                f"tools[{position}].function.parameters",
                "invalid_type",
            )
        tools.append(ToolSpec(name, parameters or {}))
    return tuple(tools)


def _tool_choice(value: Any, tools: tuple[ToolSpec, ...]) -> tuple[str, str | None]:
    if value is None:
        return "auto", None
    if not tools:
        raise _invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            "tool_choice",
            "invalid_value",
        )
    if value in ("none", "auto", "required"):
        return value, None
    function = value.get("function") if isinstance(value, dict) and value.get("type") == "function" else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise _invalid(
            "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or "
            '{"type": "function", "function": {"name": ...}}.',
            "tool_choice",
            "invalid_value",
        )
    if not any(t.name == name for t in tools):
        raise _invalid(
            f"Invalid value for 'tool_choice': function '{name}' not found in 'tools'.",
            "tool_choice",
            "invalid_value",
        )
    return "named", name


def _response_format(value: Any) -> tuple[str, dict[str, Any] | None]:
    if value is None:
        return "text", None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "text":
        return "text", None
    if kind == "json_object":
        return "json_object", None
    if kind == "json_schema":
        assert isinstance(value, dict)
        spec = value.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(spec, dict) or (schema is not None and not isinstance(schema, dict)):
            raise _invalid(
                'Invalid \'response_format.json_schema\': expected {"name": ..., "schema": {...}}.',
                "response_format.json_schema",
                "invalid_value",
            )
        return ("json_schema", schema) if schema is not None else ("json_object", None)
    raise _invalid(
        "Invalid 'response_format.type': expected 'text', 'json_object' or 'json_schema'.",
        "response_format.type",
        "invalid_value",
    )
