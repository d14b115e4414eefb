"""Gemini API wire format -> internal values: the inbound side of ``/api/gemini/v1beta/models/{model}:...``.

A ``generateContent`` request becomes the hub shape (OpenAI Chat messages and parameter names, see
``types.py``), so any endpoint can serve it; ``gemini_answer`` writes the answer back as a
``GenerateContentResponse`` or its stream. The model comes from the URL, never from the body. The mapping:

    Gemini request                          hub
    systemInstruction.parts (text)          a leading {"role": "system"} message
    contents, role user (or function)       user messages; functionResponse parts first become
                                            {"role": "tool"} messages answering their call
    contents, role model                    assistant messages: text parts the content, functionCall
                                            parts tool_calls (a thought signature under
                                            extra_content.google); thought parts are left out
    text / inlineData / fileData parts      text, image_url (a data: URL), input_audio, file parts; a
                                            fileData URL is an image_url (files/... uploads are refused)
    functionCall.id / functionResponse.id   tool call ids; a call without one gets a stable id and a
                                            response without one answers the oldest open call of its name
    functionResponse.response               the tool message's content: its "output"/"result" value as
                                            it is (an "error" value marks the result an error), else the
                                            whole object as JSON
    tools[].functionDeclarations            function tools; ``parameters`` (Gemini's OpenAPI Schema) as
                                            the JSON Schema it stands for, ``parametersJsonSchema`` as is
    tools (googleSearch, codeExecution...)  left out and listed in the generation record (they run on
                                            Google's side): ``params`` holds each under its name, which
                                            no endpoint takes
    toolConfig.functionCallingConfig        tool_choice: AUTO/VALIDATED auto, NONE none, ANY required
                                            (one allowed function: that function; several: the tools
                                            narrowed to them)
    generationConfig                        temperature, top_p, top_k, max_completion_tokens, stop,
                                            presence/frequency_penalty, seed, logprobs/top_logprobs,
                                            response_format (responseMimeType application/json, with
                                            responseSchema or responseJsonSchema: json_schema)
    generationConfig.thinkingConfig         thinkingBudget: reasoning {"max_tokens"} and the matching
                                            reasoning_effort (0: no thinking); thinkingLevel:
                                            reasoning_effort; includeThoughts: thought parts in the
                                            answer (``GeminiRequest.include_thoughts``)
    safetySettings, other unknown fields    kept in ``params`` under their names, which no endpoint
                                            takes: left out and listed in the generation record
    provider, models (top level)            the routing extensions every route takes

``candidateCount`` above 1, output other than text, ``cachedContent`` (a cache stored at Google) and
``text/x.enum`` output are refused with a 400 that says what to send instead. Fields are read in
lowerCamelCase, as the SDKs send them, or in snake_case, as protobuf JSON also allows.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgspec

from tokenmux.errors import InvalidRequest
from tokenmux.json_codec import encode_json
from tokenmux.protocols.gemini_mappings import hub_tool_call
from tokenmux.protocols.json_limits import check_structure
from tokenmux.protocols.message_checks import fail, image_url
from tokenmux.protocols.openai_chat import PARAM_CHECKS, STEERING_FIELDS, _provider_preferences
from tokenmux.types import ChatRequest, Message

_decoder = msgspec.json.Decoder()
INBOUND = "gemini"
GEMINI_EXAMPLE = '{"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}'
# Fields this module reads itself; any other passes to ``params`` under its own name.
_TRANSLATED = frozenset(
    {
        "model",
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "generationConfig",
        "provider",
        "models",
        "cachedContent",
    }
)
_GENERATION_FIELDS = {
    "temperature": "temperature",
    "topP": "top_p",
    "topK": "top_k",
    "seed": "seed",
    "presencePenalty": "presence_penalty",
    "frequencyPenalty": "frequency_penalty",
    "maxOutputTokens": "max_completion_tokens",
}
# generationConfig fields read by hand below; any other passes to ``params`` under its own name.
_GENERATION_READ = frozenset(
    {
        *_GENERATION_FIELDS,
        "candidateCount",
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseLogprobs",
        "logprobs",
        "thinkingConfig",
        "responseModalities",
    }
)
_THINKING_LEVELS = frozenset({"minimal", "low", "medium", "high"})
_JSON = "application/json"
_TEXT_TYPES = frozenset({"text/plain", ""})
_FUNCTION_RESULT_KEYS = ("output", "result")


@dataclass(slots=True)
class GeminiRequest(ChatRequest):
    """A chat request that came as a Gemini request: what its answer needs rides along."""

    include_thoughts: bool = False  # thinkingConfig.includeThoughts: reasoning goes back as thought parts


def decode_generate_request(
    body: bytes | bytearray,
    model: str,
    *,
    stream: bool,
    counting: bool = False,
    shape_checked: bool = False,
) -> GeminiRequest:
    """Parse and validate a ``generateContent`` body for ``model`` (from the URL). ``counting``: the
    body of ``countTokens``, which may hold the request under ``generateContentRequest``;
    ``shape_checked``: as ``openai_chat.decode_chat_request``."""
    if not shape_checked:
        check_structure(body, GEMINI_EXAMPLE)
    try:
        data = _decoder.decode(body)
    except msgspec.DecodeError as e:
        raise InvalidRequest(
            f"the request body is not valid JSON ({e}); send a JSON object such as {GEMINI_EXAMPLE}",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    if counting:
        inner = field(data, "generateContentRequest")
        if inner is not None:
            if not isinstance(inner, dict):
                raise fail("generateContentRequest", "generateContentRequest must be an object")
            data = inner
    if field(data, "cachedContent") is not None:
        raise fail(
            "cachedContent",
            "cachedContent refers to a cache stored at Google, which this gateway does not keep; "
            "send the whole prompt in contents",
        )
    if not model:
        raise fail("model", "the model goes in the URL: /api/gemini/v1beta/models/{model}:generateContent")

    fallback: tuple[str, ...] = ()
    models = data.get("models")
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise fail("models", "models must be a list of model ids, e.g. ['openai/gpt-4.1-nano']")
        fallback = tuple(models)

    messages: list[Message] = []
    system = _system_text(field(data, "systemInstruction"))
    if system:
        messages.append({"role": "system", "content": system})
    _Contents(messages).read(field(data, "contents"))

    params: dict[str, Any] = {}
    for key, value in data.items():
        if _camel(key) in _TRANSLATED or value is None:
            continue
        if key in STEERING_FIELDS:
            raise fail(key, f"{key} cannot be set by a request; providers are configured on the gateway")
        params[key] = value  # safetySettings and the like: dropped, and listed, by routing
    _tools(field(data, "tools"), params)
    _tool_config(field(data, "toolConfig"), params)
    include_thoughts = _generation_config(field(data, "generationConfig"), params)
    for key, value in params.items():
        check = PARAM_CHECKS.get(key)
        if check is not None:
            check(key, value)
    return GeminiRequest(
        model=model,
        messages=messages,
        params=params,
        stream=stream,
        include_usage=True,
        fallback_models=fallback,
        provider=_provider_preferences(data.get("provider")),
        max_output_tokens=params.get("max_completion_tokens"),
        max_output_param="maxOutputTokens",
        body_bytes=len(body),
        inbound=INBOUND,
        include_thoughts=include_thoughts,
    )


def field(data: dict[str, Any], camel: str) -> Any:
    """A protobuf JSON field, spelled in lowerCamelCase or snake_case."""
    value = data.get(camel)
    if value is None:
        value = data.get(_snake(camel))
    return value


def _snake(camel: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in camel)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


# --- contents ---------------------------------------------------------------------------------------


def _system_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    parts = value.get("parts") if isinstance(value, dict) else None
    if not isinstance(parts, list):
        raise fail("systemInstruction", "systemInstruction must be {'parts': [{'text': ...}]}")
    texts = []
    for i, part in enumerate(parts):
        text = part.get("text") if isinstance(part, dict) else None
        if not isinstance(text, str):
            raise fail(f"systemInstruction.parts[{i}]", "systemInstruction takes text parts only")
        texts.append(text)
    return "\n".join(t for t in texts if t)


class _Contents:
    """Builds hub messages from Gemini turns, pairing function responses with their calls."""

    __slots__ = ("messages", "open_calls")

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.open_calls: list[tuple[str, str]] = []  # (id, name) of calls not answered yet, oldest first

    def read(self, contents: Any) -> None:
        if not isinstance(contents, list) or not contents:
            raise fail("contents", f"contents is required: a non-empty list of turns, e.g. {GEMINI_EXAMPLE}")
        for i, content in enumerate(contents):
            where = f"contents[{i}]"
            if not isinstance(content, dict):
                raise fail(where, f"{where} must be an object with 'role' and 'parts'")
            parts = content.get("parts")
            if not isinstance(parts, list) or not parts:
                raise fail(f"{where}.parts", f"{where}.parts must be a non-empty list of parts")
            role = content.get("role") or "user"
            if role == "model":
                self._model_turn(where, i, parts)
            elif role in ("user", "function"):
                self._user_turn(where, parts)
            else:
                raise fail(f"{where}.role", f"{where}.role must be 'user' or 'model', got {role!r}")

    def _model_turn(self, where: str, turn: int, parts: list[Any]) -> None:
        texts: list[str] = []
        calls: list[dict[str, Any]] = []
        for at, part in _each_part(where, parts):
            call = field(part, "functionCall")
            if call is not None:
                calls.append(self._function_call(at, part, call, turn, len(calls)))
            elif isinstance(part.get("text"), str):
                if not part.get("thought"):  # thought summaries are for people; no provider takes them
                    texts.append(part["text"])
            elif not _empty_part(part):
                raise fail(at, f"{at}: a model turn may hold text, thought and functionCall parts")
        message: Message = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
        if calls:
            message["tool_calls"] = calls
        self.messages.append(message)

    def _function_call(
        self, at: str, part: dict[str, Any], call: Any, turn: int, position: int
    ) -> dict[str, Any]:
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise fail(f"{at}.functionCall", f"{at}.functionCall needs the function's 'name' and its 'args'")
        args = call.get("args")
        if args is not None and not isinstance(args, dict):
            raise fail(f"{at}.functionCall.args", f"{at}.functionCall.args must be an object")
        signature = field(part, "thoughtSignature")
        hub = hub_tool_call(
            {"functionCall": call, "thoughtSignature": signature}, f"turn-{turn}", 0, position
        )
        self.open_calls.append((hub["id"], call["name"]))
        return hub

    def _user_turn(self, where: str, parts: list[Any]) -> None:
        content: list[dict[str, Any]] = []
        for at, part in _each_part(where, parts):
            response = field(part, "functionResponse")
            if response is not None:
                self.messages.append(self._function_response(at, response))
                continue
            hub = _user_part(at, part)
            if hub is not None:
                content.append(hub)
        if not content:
            return
        if all(p["type"] == "text" for p in content):
            self.messages.append({"role": "user", "content": "".join(p["text"] for p in content)})
        else:
            self.messages.append({"role": "user", "content": content})

    def _function_response(self, at: str, response: Any) -> Message:
        name = response.get("name") if isinstance(response, dict) else None
        if not isinstance(name, str) or not name:
            raise fail(f"{at}.functionResponse", f"{at}.functionResponse needs the function's 'name'")
        assert isinstance(response, dict)
        call_id = response.get("id")
        if not isinstance(call_id, str) or not call_id:
            call_id = next((cid for cid, n in self.open_calls if n == name), None)
            if call_id is None:
                raise fail(
                    f"{at}.functionResponse.id",
                    f"{at}.functionResponse answers no functionCall of {name!r} in an earlier model turn",
                )
        self.open_calls = [(cid, n) for cid, n in self.open_calls if cid != call_id]
        result = response.get("response")
        if result is not None and not isinstance(result, dict):
            raise fail(f"{at}.functionResponse.response", f"{at}.functionResponse.response must be an object")
        message: Message = {"role": "tool", "tool_call_id": call_id}
        message["content"], error = _result_text(result or {})
        if error:
            message["is_error"] = True
        return message


def _each_part(where: str, parts: list[Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for j, part in enumerate(parts):
        at = f"{where}.parts[{j}]"
        if not isinstance(part, dict):
            raise fail(at, f"{at} must be a part object")
        yield at, part


def _result_text(result: dict[str, Any]) -> tuple[str, bool]:
    """A function's result as a tool message's text, and whether it is an error."""
    if len(result) == 1:
        ((key, value),) = result.items()
        if key in (*_FUNCTION_RESULT_KEYS, "error"):
            return (value if isinstance(value, str) else encode_json(value).decode()), key == "error"
    return encode_json(result).decode(), False


def _empty_part(part: dict[str, Any]) -> bool:
    """A part that says nothing a provider takes (only a signature, or empty metadata)."""
    return all(_camel(k) in ("thoughtSignature", "thought", "partMetadata", "videoMetadata") for k in part)


def _user_part(at: str, part: dict[str, Any]) -> dict[str, Any] | None:
    text = part.get("text")
    if isinstance(text, str):
        return None if part.get("thought") or not text else {"type": "text", "text": text}
    inline = field(part, "inlineData")
    if inline is not None:
        mime, data = (field(inline, "mimeType"), inline.get("data")) if isinstance(inline, dict) else (0, 0)
        if not isinstance(mime, str) or not mime or not isinstance(data, str):
            raise fail(f"{at}.inlineData", f"{at}.inlineData needs 'mimeType' and base64 'data'")
        return _media(at, mime.lower(), data)
    file = field(part, "fileData")
    if file is not None:
        uri = field(file, "fileUri") if isinstance(file, dict) else None
        mime = (field(file, "mimeType") or "") if isinstance(file, dict) else ""
        url = image_url(uri, ("https", "http"))
        if url is None:
            raise fail(
                f"{at}.fileData",
                f"{at}.fileData must name an http(s) URL; files uploaded to Google (files/...) are not "
                "available here: send the file as inlineData",
            )
        if isinstance(mime, str) and mime and not mime.lower().startswith("image/"):
            raise fail(
                f"{at}.fileData", f"{at}: a fileData URL may be an image only; send {mime} as inlineData"
            )
        return {"type": "image_url", "image_url": {"url": url}}
    if _empty_part(part):
        return None
    raise fail(
        at,
        f"{at}: a user turn may hold text, inlineData, fileData and functionResponse parts; "
        f"got {', '.join(sorted(part)) or 'an empty part'}",
    )


def _media(at: str, mime: str, data: str) -> dict[str, Any]:
    head = data[:4096]  # enough to tell base64 from anything else without decoding a large file
    try:
        base64.b64decode(head + "=" * (-len(head) % 4), validate=True)
    except ValueError:
        raise fail(f"{at}.inlineData.data", f"{at}.inlineData.data must be base64") from None
    if mime.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}}
    if mime.startswith("audio/"):
        fmt = mime.removeprefix("audio/").removeprefix("x-")
        return {
            "type": "input_audio",
            "input_audio": {"data": data, "format": "mp3" if fmt == "mpeg" else fmt},
        }
    return {"type": "file", "file": {"file_data": f"data:{mime};base64,{data}"}}


# --- tools ------------------------------------------------------------------------------------------


def _tools(tools: Any, params: dict[str, Any]) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise fail("tools", "tools must be a list of {'functionDeclarations': [...]}")
    functions: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise fail(
                f"tools[{i}]", f"tools[{i}] must be an object such as {{'functionDeclarations': [...]}}"
            )
        for key, value in tool.items():
            name = _camel(key)
            if name == "functionDeclarations":
                if not isinstance(value, list):
                    raise fail(f"tools[{i}].functionDeclarations", "functionDeclarations must be a list")
                functions.extend(
                    _declaration(f"tools[{i}].functionDeclarations[{j}]", d) for j, d in enumerate(value)
                )
            elif value is not None:
                params[name] = value  # a tool that runs at Google (googleSearch, codeExecution, ...)
    if functions:
        params["tools"] = functions


def _declaration(where: str, declaration: Any) -> dict[str, Any]:
    name = declaration.get("name") if isinstance(declaration, dict) else None
    if not isinstance(name, str) or not name:
        raise fail(f"{where}.name", f"{where} needs the function's 'name'")
    assert isinstance(declaration, dict)
    schema = field(declaration, "parametersJsonSchema")
    if schema is None:
        schema = field(declaration, "parameters")
        if schema is not None:
            schema = json_schema_of(schema)
    if schema is not None and not isinstance(schema, dict):
        raise fail(f"{where}.parameters", f"{where}.parameters must be a schema object")
    function: dict[str, Any] = {"name": name}
    if isinstance(declaration.get("description"), str):
        function["description"] = declaration["description"]
    function["parameters"] = schema or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def json_schema_of(schema: Any) -> Any:
    """The JSON Schema a Gemini ``Schema`` (OpenAPI-flavoured: ``"type": "OBJECT"``, ``nullable``)
    stands for; keys JSON Schema does not know (``propertyOrdering``, ``example``) are left out."""
    if isinstance(schema, list):
        return [json_schema_of(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        name = _camel(key)
        if name in ("propertyOrdering", "example", "nullable"):
            continue
        if name == "type" and isinstance(value, str):
            if value.upper() != "TYPE_UNSPECIFIED":
                out["type"] = value.lower()
        elif name == "properties" and isinstance(value, dict):
            out["properties"] = {prop: json_schema_of(sub) for prop, sub in value.items()}
        elif name in ("items", "anyOf"):
            out[name] = json_schema_of(value)
        else:
            out[name] = value
    if schema.get("nullable") is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _tool_config(config: Any, params: dict[str, Any]) -> None:
    if config is None:
        return
    calling = field(config, "functionCallingConfig") if isinstance(config, dict) else None
    if calling is None:
        return
    mode = calling.get("mode", "AUTO") if isinstance(calling, dict) else None
    if not isinstance(mode, str) or mode.upper() not in (
        "AUTO",
        "ANY",
        "NONE",
        "VALIDATED",
        "MODE_UNSPECIFIED",
    ):
        raise fail(
            "toolConfig.functionCallingConfig.mode",
            "toolConfig.functionCallingConfig.mode must be AUTO, ANY, NONE or VALIDATED",
        )
    assert isinstance(calling, dict)
    mode = mode.upper()
    if mode == "NONE":
        params["tool_choice"] = "none"
        return
    allowed = field(calling, "allowedFunctionNames")
    if mode == "ANY" and allowed:
        if not isinstance(allowed, list) or not all(isinstance(n, str) for n in allowed):
            raise fail(
                "toolConfig.functionCallingConfig.allowedFunctionNames",
                "allowedFunctionNames must be a list of names",
            )
        tools = [t for t in params.get("tools", ()) if t["function"]["name"] in allowed]
        unknown = set(allowed) - {t["function"]["name"] for t in tools}
        if unknown:
            raise fail(
                "toolConfig.functionCallingConfig.allowedFunctionNames",
                f"allowedFunctionNames {sorted(unknown)} are not among the declared functions",
            )
        params["tools"] = tools
        if len(tools) == 1:
            params["tool_choice"] = {"type": "function", "function": {"name": tools[0]["function"]["name"]}}
            return
    params["tool_choice"] = "required" if mode == "ANY" else "auto"


# --- generation config ------------------------------------------------------------------------------


def _generation_config(config: Any, params: dict[str, Any]) -> bool:
    """Put generationConfig into ``params`` under hub names; return whether thoughts are to be shown."""
    if config is None:
        return False
    if not isinstance(config, dict):
        raise fail("generationConfig", "generationConfig must be an object")
    for key, value in config.items():
        name = _camel(key)
        if value is None:
            continue
        if name in _GENERATION_FIELDS:
            params[_GENERATION_FIELDS[name]] = value
        elif name not in _GENERATION_READ:
            params[name] = value  # speechConfig, mediaResolution, ...: dropped, and listed, by routing
    count = field(config, "candidateCount")
    if count is not None and count != 1:
        raise fail("generationConfig.candidateCount", "generationConfig.candidateCount must be 1 here")
    modalities = field(config, "responseModalities")
    if modalities is not None and (
        not isinstance(modalities, list) or any(str(m).upper() != "TEXT" for m in modalities)
    ):
        raise fail("generationConfig.responseModalities", "only TEXT output is served here")
    stop = field(config, "stopSequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise fail("generationConfig.stopSequences", "stopSequences must be a list of strings")
        if stop:
            params["stop"] = stop
    if field(config, "responseLogprobs"):
        params["logprobs"] = True
        top = field(config, "logprobs")
        if top is not None:
            params["top_logprobs"] = top
    _response_format(config, params)
    return _thinking(field(config, "thinkingConfig"), params)


def _response_format(config: dict[str, Any], params: dict[str, Any]) -> None:
    mime = field(config, "responseMimeType") or ""
    if not isinstance(mime, str):
        raise fail(
            "generationConfig.responseMimeType", "responseMimeType must be a string such as application/json"
        )
    json_schema = field(config, "responseJsonSchema")
    schema = field(config, "responseSchema")
    if json_schema is not None and schema is not None:
        raise fail("generationConfig.responseSchema", "set responseSchema or responseJsonSchema, not both")
    given = json_schema if json_schema is not None else json_schema_of(schema) if schema is not None else None
    if mime == "text/x.enum":
        raise fail(
            "generationConfig.responseMimeType",
            "text/x.enum is not served here; ask for application/json with a schema of type string and an enum",
        )
    if mime in _TEXT_TYPES and given is None:
        return
    if mime != _JSON:
        raise fail(
            "generationConfig.responseMimeType",
            "responseMimeType must be text/plain or application/json (required with a response schema)",
        )
    if given is None:
        params["response_format"] = {"type": "json_object"}
        return
    if not isinstance(given, dict):
        raise fail("generationConfig.responseJsonSchema", "the response schema must be an object")
    params["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": given}}


def _thinking(config: Any, params: dict[str, Any]) -> bool:
    if config is None:
        return False
    if not isinstance(config, dict):
        raise fail("generationConfig.thinkingConfig", "thinkingConfig must be an object")
    include = field(config, "includeThoughts")
    if include is not None and not isinstance(include, bool):
        raise fail("generationConfig.thinkingConfig.includeThoughts", "includeThoughts must be true or false")
    budget = field(config, "thinkingBudget")
    level = field(config, "thinkingLevel")
    if level is not None:
        if not isinstance(level, str) or level.lower() not in _THINKING_LEVELS:
            raise fail(
                "generationConfig.thinkingConfig.thinkingLevel",
                f"thinkingLevel must be one of {', '.join(sorted(_THINKING_LEVELS))}",
            )
        params["reasoning_effort"] = level.lower()
    elif budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < -1:
            raise fail(
                "generationConfig.thinkingConfig.thinkingBudget",
                "thinkingBudget must be a number of tokens, 0 (no thinking) or -1 (the model decides)",
            )
        if budget == 0:
            params["reasoning_effort"] = "none"
            params["reasoning"] = {"enabled": False}
        elif budget > 0:
            params["reasoning_effort"] = "low" if budget <= 1024 else "medium" if budget <= 8192 else "high"
            params["reasoning"] = {"max_tokens": budget, "exclude": not include}
    return bool(include) and budget != 0
