"""Reading an OpenAI Responses request: the checks OpenAI makes that the simulator relies on, with OpenAI's
messages, and what the request asks for as an ``AnswerSpec``.

The answer's tool calls carry only a tool's name, so the kinds of tool the Responses API has beyond plain
functions ride in that name (``tool_name`` / ``split_tool_name``): a namespace's function is
``namespace/name`` and a custom (free-form) tool ``!name``; neither character can start or be in a
function's name.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from tokenmux.simulator.answer import AnswerSpec, ToolSpec
from tokenmux.simulator.wire import RequestRejected

_IMAGE_TOKENS = 85
_CUSTOM_PARAMETERS = {"type": "object", "properties": {"input": {"type": "string"}}, "required": ["input"]}
_ITEM_TYPES = frozenset(
    {
        "message",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "reasoning",
    }
)
_TOOL_OUTPUTS = frozenset({"function_call_output", "custom_tool_call_output"})
# The simulator's stand-in for OpenAI's encrypted reasoning: this prefix and a digest of the reasoning.
ENCRYPTED_PREFIX = "gAAAAsim"


def encrypted_content(reasoning: str) -> str:
    return ENCRYPTED_PREFIX + hashlib.sha256(reasoning.encode()).hexdigest()


def tool_name(name: str, namespace: str | None = None, *, custom: bool = False) -> str:
    if custom:
        return "!" + name
    return f"{namespace}/{name}" if namespace else name


def split_tool_name(name: str) -> tuple[str, str | None, bool]:
    """(name, namespace, custom) of a name made by ``tool_name``."""
    if name.startswith("!"):
        return name[1:], None, True
    namespace, _, plain = name.rpartition("/")
    return plain, namespace or None, False


def parse_responses_request(body: Any, path_model: str | None) -> AnswerSpec:
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.", None, "invalid_type")
    model = path_model or body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    raw_input = body.get("input")
    if isinstance(raw_input, str):
        items: list[Any] = [{"role": "user", "content": raw_input}]
    elif isinstance(raw_input, list) and raw_input:
        items = raw_input
    else:
        raise _invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    for position, item in enumerate(items):
        _check_item(position, item)
    if body.get("previous_response_id") is not None and body.get("store") is False:
        raise _invalid(
            "Previous response cannot be used: store was false.", "previous_response_id", "invalid_value"
        )
    tools = _tools(body.get("tools"))
    tool_choice, named = _tool_choice(body.get("tool_choice"), tools)
    output, schema = _text_format(body.get("text"))
    reasoning = body.get("reasoning")
    include = body.get("include") or []
    max_tokens = body.get("max_output_tokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 16
    ):
        raise _invalid(
            "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16.",
            "max_output_tokens",
            "integer_below_min_value",
        )
    top_logprobs = body.get("top_logprobs")
    last = items[-1]
    return AnswerSpec(
        model=model,
        prompt_tokens=_estimate_prompt_tokens(body.get("instructions"), items, body.get("tools")),
        max_tokens=max_tokens,
        tools=tools,
        tool_choice=tool_choice,
        named_tool=named,
        parallel_tool_calls=body.get("parallel_tool_calls") is not False,
        output=output,
        json_schema=schema,
        logprobs="message.output_text.logprobs" in include,
        top_logprobs=top_logprobs if isinstance(top_logprobs, int) else 0,
        after_tool_result=isinstance(last, dict) and last.get("type") in _TOOL_OUTPUTS,
        stream=body.get("stream") is True,
        include_usage=True,
        show_reasoning=isinstance(reasoning, dict)
        and reasoning.get("summary") is not None
        and reasoning.get("effort") != "none",
    )


def _check_item(position: int, item: Any) -> None:
    where = f"input[{position}]"
    if not isinstance(item, dict):
        raise _invalid(f"Invalid '{where}': expected an object.", where, "invalid_type")
    kind = item.get("type", "message" if "role" in item else None)
    if kind not in _ITEM_TYPES:
        raise _invalid(f"Invalid value for '{where}.type': {kind!r}.", f"{where}.type", "invalid_value")
    if kind == "reasoning":
        encrypted = item.get("encrypted_content")
        if encrypted is not None and not (
            isinstance(encrypted, str) and encrypted.startswith(ENCRYPTED_PREFIX)
        ):
            # What OpenAI answers when encrypted reasoning was changed or comes from elsewhere.
            raise _invalid(
                "The encrypted content for item rs could not be verified.",
                f"{where}.encrypted_content",
                "invalid_encrypted_content",
            )
    # An output may name its tool instead of answering a call (Codex CLI tells the model its goal this way).
    named = kind == "function_call_output" and isinstance(item.get("name"), str)
    if kind not in ("message", "reasoning") and not named and not isinstance(item.get("call_id"), str):
        raise _invalid(
            f"Missing required parameter: '{where}.call_id'.",
            f"{where}.call_id",
            "missing_required_parameter",
        )


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid("Invalid type for 'tools': expected an array.", "tools", "invalid_type")
    tools: list[ToolSpec] = []
    for position, tool in enumerate(value):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            tools.append(_function(f"tools[{position}]", tool, None))
        elif kind == "namespace":
            for inner, member in enumerate(tool.get("tools") or ()):
                tools.append(_function(f"tools[{position}].tools[{inner}]", member, tool.get("name")))
        elif kind == "custom":
            tools.append(ToolSpec(tool_name(str(tool.get("name")), custom=True), _CUSTOM_PARAMETERS))
        elif kind not in (
            "web_search",
            "web_search_preview",
            "file_search",
            "code_interpreter",
            "image_generation",
        ):
            raise _invalid(
                f"Invalid value for 'tools[{position}].type': {kind!r}.",
                f"tools[{position}].type",
                "invalid_value",
            )
    return tuple(tools)


def _function(where: str, tool: Any, namespace: str | None) -> ToolSpec:
    name = tool.get("name") if isinstance(tool, dict) else None
    if not isinstance(name, str) or not name:
        raise _invalid(
            f"Missing required parameter: '{where}.name'.", f"{where}.name", "missing_required_parameter"
        )
    parameters = tool.get("parameters")
    return ToolSpec(tool_name(name, namespace), parameters if isinstance(parameters, dict) else {})


def _tool_choice(value: Any, tools: tuple[ToolSpec, ...]) -> tuple[str, str | None]:
    if value is None or value == "auto":
        return "auto", None
    if value in ("none", "required"):
        return value, None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("function", "custom") and isinstance(value.get("name"), str):
        assert isinstance(value, dict)
        name = tool_name(value["name"], custom=kind == "custom")
        if any(t.name == name for t in tools):
            return "named", name
    raise _invalid("Invalid value for 'tool_choice'.", "tool_choice", "invalid_value")


def _text_format(text: Any) -> tuple[str, dict[str, Any] | None]:
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else "text"
    if kind == "json_schema":
        assert isinstance(fmt, dict)
        schema = fmt.get("schema")
        if not isinstance(schema, dict) or not isinstance(fmt.get("name"), str):
            raise _invalid(
                "Missing required parameter: 'text.format.name'.",
                "text.format.name",
                "missing_required_parameter",
            )
        return "json_schema", schema
    if kind == "json_object":
        return "json_object", None
    if kind in ("text", None):
        return "text", None
    raise _invalid("Invalid value for 'text.format.type'.", "text.format.type", "invalid_value")


def _estimate_prompt_tokens(instructions: Any, items: list[Any], tools: Any) -> int:
    """A token per 4 bytes of the input's text, 3 tokens of framing per item, a fixed cost per image."""
    text_bytes = len(instructions.encode()) if isinstance(instructions, str) else 0
    images = 0
    for item in items:
        content = item.get("content", item.get("output", item.get("arguments")))
        if isinstance(content, str):
            text_bytes += len(content.encode())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict):
                    text = part.get("text")
                    if isinstance(text, str):
                        text_bytes += len(text.encode())
                    elif part.get("type") == "input_image":
                        images += 1
    if tools:
        text_bytes += len(msgspec.json.encode(tools))
    return 3 * len(items) + 3 + text_bytes // 4 + _IMAGE_TOKENS * images


def _invalid(message: str, param: str | None, code: str) -> RequestRejected:
    return RequestRejected(400, message, param=param, code=code)
