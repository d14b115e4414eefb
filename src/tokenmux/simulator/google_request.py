"""Reading a Gemini ``generateContent`` request: the checks Gemini makes that the simulator relies on, and
what the request asks for as an ``AnswerSpec``.

Gemini's JSON is protobuf JSON, so every field may be spelled in lowerCamelCase (what the SDKs send) or in
snake_case; both are read. ``responseSchema`` is OpenAPI-flavoured (``"type": "OBJECT"``); it is read as
the JSON schema it stands for. ``responseJsonSchema`` and ``parametersJsonSchema`` are JSON schema already.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tokenmux.simulator.answer import AnswerSpec, ToolSpec
from tokenmux.simulator.wire import RequestRejected

_ROLES = frozenset({"user", "model", "function", ""})
_IMAGE_TOKENS = 258  # what Gemini bills an image of up to 384 pixels a side
_MAX_CANDIDATES = 8
_MAX_STOP_SEQUENCES = 5
_JSON_MIME_TYPES = frozenset({"application/json", "text/x.enum"})


def parse_generate_content_request(body: Any, model: str, *, stream: bool) -> AnswerSpec:
    """Check a generateContent request the way Gemini does (the parts the simulator relies on)."""
    if not isinstance(body, dict):
        raise _invalid("Invalid JSON payload received. The request body must be a JSON object.")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified")
    for position, content in enumerate(contents):
        parts = content.get("parts") if isinstance(content, dict) else None
        if not isinstance(parts, list) or not parts:
            raise _invalid(
                f"* GenerateContentRequest.contents[{position}].parts: contents.parts must not be empty."
            )
        assert isinstance(content, dict)
        if (content.get("role") or "") not in _ROLES:
            raise _invalid(f"Please use a valid role: user, model. (contents[{position}].role)")
    system = _field(body, "systemInstruction", "system_instruction")
    tools = _tools(body.get("tools"))
    tools, tool_choice, named_tool = _tool_config(_field(body, "toolConfig", "tool_config"), tools)
    config = _field(body, "generationConfig", "generation_config") or {}
    if not isinstance(config, dict):
        raise _invalid("Invalid value at 'generation_config': expected an object.")
    output, schema = _output(config)
    response_logprobs = _field(config, "responseLogprobs", "response_logprobs") is True
    top_logprobs = _integer(config, "logprobs", "logprobs", 0, 20)
    if top_logprobs is not None and not response_logprobs:
        raise _invalid("logprobs is only valid when responseLogprobs is true.")
    thinking = _field(config, "thinkingConfig", "thinking_config")
    last_parts = contents[-1].get("parts")
    return AnswerSpec(
        model=model,
        prompt_tokens=estimate_prompt_tokens(contents, system, body.get("tools")),
        n=_integer(config, "candidateCount", "candidate_count", 1, _MAX_CANDIDATES) or 1,
        max_tokens=_integer(config, "maxOutputTokens", "max_output_tokens", 1, None),
        stop=_stop_sequences(_field(config, "stopSequences", "stop_sequences")),
        tools=tools,
        tool_choice=tool_choice,
        named_tool=named_tool,
        output=output,
        json_schema=schema,
        logprobs=response_logprobs,
        top_logprobs=top_logprobs or 0,
        after_tool_result=any(_part_kind(p) == "functionResponse" for p in last_parts),
        stream=stream,
        include_usage=True,
        show_reasoning=isinstance(thinking, dict)
        and _field(thinking, "includeThoughts", "include_thoughts") is True,
    )


def estimate_prompt_tokens(contents: list[Any], system: Any, tools: Any) -> int:
    """A cheap, deterministic estimate: a token per 4 bytes of text, 3 tokens of framing per turn."""
    text_bytes = 0
    images = 0
    turns = [*contents, system] if isinstance(system, dict) else contents
    for content in turns:
        for part in content.get("parts") or ():
            if not isinstance(part, dict):
                continue
            text = part.get("text")
            if isinstance(text, str):
                text_bytes += len(text.encode())
            elif _part_kind(part) in ("inlineData", "fileData"):
                images += 1
            elif _part_kind(part) in ("functionCall", "functionResponse"):
                text_bytes += len(msgspec.json.encode(part))
    if tools:
        text_bytes += len(msgspec.json.encode(tools))
    return 3 * len(contents) + 3 + text_bytes // 4 + _IMAGE_TOKENS * images


def json_schema_of(schema: Any) -> Any:
    """The JSON schema an OpenAPI-flavoured Gemini ``Schema`` stands for: type names in lower case,
    ``nullable`` as a ``null`` type."""
    if isinstance(schema, list):
        return [json_schema_of(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            converted["type"] = value.lower()
        elif key in ("properties", "$defs", "defs"):
            converted[key] = (
                {name: json_schema_of(sub) for name, sub in value.items()}
                if isinstance(value, dict)
                else value
            )
        elif key in ("items", "anyOf", "any_of"):
            converted["anyOf" if key == "any_of" else key] = json_schema_of(value)
        else:
            converted[key] = value
    if converted.get("nullable") is True and isinstance(converted.get("type"), str):
        converted["type"] = [converted["type"], "null"]
    return converted


def _part_kind(part: Any) -> str | None:
    """The camelCase name of what a part holds (``text``, ``functionCall``, ...)."""
    if not isinstance(part, dict):
        return None
    for camel, snake in (
        ("text", "text"),
        ("functionCall", "function_call"),
        ("functionResponse", "function_response"),
        ("inlineData", "inline_data"),
        ("fileData", "file_data"),
    ):
        if camel in part or snake in part:
            return camel
    return None


def _field(data: dict[str, Any], camel: str, snake: str) -> Any:
    value = data.get(camel)
    return data.get(snake) if value is None else value


def _invalid(message: str) -> RequestRejected:
    return RequestRejected(400, message)


def _integer(data: dict[str, Any], camel: str, snake: str, low: int, high: int | None) -> int | None:
    value = _field(data, camel, snake)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _invalid(f"Invalid value at 'generation_config.{snake}' (TYPE_INT32), {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise _invalid(f"generation_config.{snake} must be {bound}, but got {value}.")
    return value


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _invalid("Invalid value at 'generation_config.stop_sequences': expected a list of strings.")
    if len(value) > _MAX_STOP_SEQUENCES:
        raise _invalid(f"generation_config.stop_sequences may hold at most {_MAX_STOP_SEQUENCES} sequences.")
    return tuple(s for s in value if s)


def _output(config: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    mime_type = _field(config, "responseMimeType", "response_mime_type") or "text/plain"
    json_schema = _field(config, "responseJsonSchema", "response_json_schema")
    schema = _field(config, "responseSchema", "response_schema")
    if json_schema is not None and schema is not None:
        raise _invalid("responseSchema and responseJsonSchema cannot both be set.")
    given = json_schema if json_schema is not None else schema
    if given is not None and mime_type not in _JSON_MIME_TYPES:
        raise _invalid(
            "When a response schema is set, responseMimeType must be application/json or text/x.enum, "
            f"not {mime_type}."
        )
    if mime_type not in _JSON_MIME_TYPES:
        return "text", None
    if not isinstance(given, dict):
        return "json_object", None
    return "json_schema", given if json_schema is not None else json_schema_of(given)


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid("Invalid value at 'tools': expected a list of tools.")
    tools = []
    for tool in value:
        declarations = (
            _field(tool, "functionDeclarations", "function_declarations") if isinstance(tool, dict) else None
        )
        for position, declaration in enumerate(declarations or ()):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not name:
                raise _invalid(
                    f"* GenerateContentRequest.tools[0].function_declarations[{position}].name: Name is required."
                )
            assert isinstance(declaration, dict)
            schema = _field(declaration, "parametersJsonSchema", "parameters_json_schema")
            if schema is None:
                schema = json_schema_of(declaration.get("parameters"))
            tools.append(ToolSpec(name, schema if isinstance(schema, dict) else {}))
    return tuple(tools)


def _tool_config(value: Any, tools: tuple[ToolSpec, ...]) -> tuple[tuple[ToolSpec, ...], str, str | None]:
    """(the tools the model may call, tool_choice, named tool) from ``toolConfig.functionCallingConfig``."""
    config = (
        _field(value, "functionCallingConfig", "function_calling_config") if isinstance(value, dict) else None
    )
    if not isinstance(config, dict):
        return tools, "auto", None
    mode = str(config.get("mode") or "AUTO").upper()
    allowed = _field(config, "allowedFunctionNames", "allowed_function_names")
    if mode == "NONE":
        return tools, "none", None
    if mode != "ANY":
        return tools, "auto", None
    if isinstance(allowed, list) and allowed:
        unknown = [name for name in allowed if not any(t.name == name for t in tools)]
        if unknown:
            raise _invalid(f"allowed_function_names {unknown} are not among the declared functions.")
        tools = tuple(t for t in tools if t.name in allowed)
        if len(tools) == 1:
            return tools, "named", tools[0].name
    return tools, "required", None
