"""OpenAI Responses API wire format -> internal values: the inbound side of ``POST /api/v1/responses``.

A Responses request becomes the hub shape (OpenAI Chat messages and parameter names, see ``types.py``), so
any endpoint can serve it; ``responses_answer`` encodes the answer as a Response object or its typed event
sequence. The mapping:

    Responses request                        hub
    instructions                             leading {"role": "system"} message
    input: a string                          one user message
    message items (user, system, developer)  user / system messages; input_text, input_image, input_file
                                             parts as text, image_url, file parts
    message items (assistant)                assistant messages (output_text joined, refusal kept)
    function_call, custom_tool_call items    the tool_calls of one assistant message (call ids kept)
    function_call_output (and custom_...)    {"role": "tool", "tool_call_id": call_id} messages
    reasoning items                          the next assistant message's ``reasoning_blocks``, when their
                                             encrypted_content is one this gateway wrote (Claude's signed
                                             thinking); others carry nothing a translated call can use
    tools: function                          chat function tools
    tools: namespace (Codex CLI)             its functions, named namespace__name
    tools: custom (free-form input)          a function of one string argument, "input"
    tools: built-in (web_search, ...)        left out and listed in the generation record (they run on
                                             OpenAI's side); ``params`` holds each under its type, which no
                                             endpoint takes
    tool_choice                              tool_choice ("allowed_tools" narrows the tools sent)
    text.format json_schema / json_object    response_format
    text.verbosity                           verbosity
    reasoning.effort                         reasoning_effort
    max_output_tokens                        max_completion_tokens
    include message.output_text.logprobs     logprobs (top_logprobs as sent)
    safety_identifier                        user, unless user is given
    store: true                              store, which no endpoint takes, so the generation record lists
                                             it among the dropped parameters: responses are not stored

What the answer must repeat (instructions, tools, tool_choice, text, reasoning, metadata, ...) is kept on
the request (``ResponsesRequest.echo``) for the encoder. Nothing is stored between requests, so everything
that needs a stored response (``previous_response_id``, ``conversation``, ``item_reference`` items,
``background``, stored ``prompt`` templates, uploaded ``file_id`` inputs) is refused with a 400 that says
to send the conversation in ``input`` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from tokenmux.errors import InvalidRequest
from tokenmux.protocols.json_limits import check_structure
from tokenmux.protocols.message_checks import image_url
from tokenmux.protocols.openai_chat import (
    PARAM_CHECKS,
    STEERING_FIELDS,
    _boolean,
    _fail,
    _integer,
    _object,
    _provider_preferences,
    encode_json,
)
from tokenmux.protocols.responses_answer import (
    CUSTOM_INPUT,
    ClientTool,
    Renamed,
    ResponsesStreamEncoder,
    encode_error,
    encode_response,
    hub_tool_name,
    reasoning_blocks_of,
)
from tokenmux.types import ChatRequest, Message

_decoder = msgspec.json.Decoder()
# A good body, shown in the answer to a body that is not one.
RESPONSES_EXAMPLE = '{"model": "openai/gpt-4.1-nano", "input": "Hi"}'

INBOUND = "responses"
# Fields this module reads itself; every other field passes through to providers under its own name (and
# routing drops it, listing it in the generation record, for endpoints that do not take it), as on the
# chat route.
_TRANSLATED = frozenset(
    {
        "model",
        "models",
        "provider",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "reasoning",
        "max_output_tokens",
        "include",
        "metadata",
        "store",
        "stream",
        "stream_options",
        "truncation",
        "safety_identifier",
        "previous_response_id",
        "conversation",
        "background",
        "prompt",
        "client_metadata",  # Codex CLI's own bookkeeping, for OpenAI's dashboards
    }
)
# Fields that only make sense with responses kept on the server.
_STATEFUL = {
    "previous_response_id": "previous_response_id refers to a stored response",
    "conversation": "conversation refers to a stored conversation",
    "background": "background responses are polled from storage",
    "prompt": "prompt refers to a prompt template stored at OpenAI",
}
_STATELESS_HINT = (
    "; this gateway does not store responses: send the whole conversation in 'input' "
    "(the previous response's output items, then the new input)"
)
_EFFORTS = frozenset({"none", "minimal", "low", "medium", "high", "xhigh"})
_SUMMARIES = frozenset({"auto", "concise", "detailed"})
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
_INPUT_PARTS = frozenset({"input_text", "input_image", "input_file", "input_audio"})
_ASSISTANT_PARTS = frozenset({"output_text", "refusal"})
_LOGPROBS = "message.output_text.logprobs"
# A custom tool's free-form input as a function's one argument.
_CUSTOM_PARAMETERS = {
    "type": "object",
    "properties": {CUSTOM_INPUT: {"type": "string", "description": "The tool's whole input, as free text."}},
    "required": [CUSTOM_INPUT],
}


@dataclass(slots=True)
class ResponsesRequest(ChatRequest):
    """A chat request that came as a Responses request: what its answer must repeat rides along."""

    # The request fields a Response object echoes (instructions, tools, tool_choice, text, ...), in their
    # Responses shape, with the API's defaults filled in.
    echo: dict[str, Any] = field(default_factory=dict)
    # Tools the hub knows under another name or shape: hub function name -> how the client named it.
    renamed_tools: dict[str, ClientTool] = field(default_factory=dict)
    # The request as the client sent it, for endpoints that speak the Responses API themselves.
    body: dict[str, Any] = field(default_factory=dict)


def decode_responses_request(body: bytes | bytearray, *, shape_checked: bool = False) -> ResponsesRequest:
    """Parse and validate a Responses request body into the hub shape (``shape_checked``: as
    ``openai_chat.decode_chat_request``)."""
    if not shape_checked:
        check_structure(body, RESPONSES_EXAMPLE)
    try:
        data = _decoder.decode(body)
    except msgspec.DecodeError as e:
        raise InvalidRequest(
            f"the request body is not valid JSON ({e}); send a JSON object such as {RESPONSES_EXAMPLE}",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    for name, why in _STATEFUL.items():
        value = data.get(name)
        if value is not None and value is not False:
            raise _fail(name, why + _STATELESS_HINT)

    fallback: tuple[str, ...] = ()
    models = data.get("models")
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise _fail("models", "models must be a list of model ids, e.g. ['openai/gpt-4.1-nano']")
        fallback = tuple(models)
    model = data.get("model")
    if model is None and fallback:
        model, fallback = fallback[0], fallback[1:]
    if not isinstance(model, str) or not model:
        raise _fail(
            "model",
            "model is required: a catalog model id such as 'openai/gpt-4.1-nano' (see GET /api/v1/models)",
        )

    messages: list[Message] = []
    instructions = data.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _fail("instructions", "instructions must be a string (a system message)")
        if instructions:
            messages.append({"role": "system", "content": instructions})
    _decode_input(data.get("input"), messages)
    if not any(m["role"] != "system" for m in messages):
        raise _fail("input", "input is required: a string or a non-empty list of input items")

    params: dict[str, Any] = {}
    for key, value in data.items():
        if key in _TRANSLATED:
            continue
        if key in STEERING_FIELDS:
            raise _fail(key, f"{key} cannot be set by a request; providers are configured on the gateway")
        if value is None:
            continue
        check = PARAM_CHECKS.get(key)
        if check is not None:
            check(key, value)
        params[key] = value
    renamed: dict[str, ClientTool] = {}
    echo = _translate_params(data, params, renamed)

    stream = data.get("stream")
    if stream is None:
        stream = False
    _boolean("stream", stream)
    return ResponsesRequest(
        model=model,
        messages=messages,
        params=params,
        stream=stream,
        fallback_models=fallback,
        provider=_provider_preferences(data.get("provider")),
        max_output_tokens=params.get("max_completion_tokens"),
        max_output_param="max_output_tokens",
        body_bytes=len(body),
        inbound=INBOUND,
        echo=echo,
        renamed_tools=renamed,
        body=data,
    )


# --- input ----------------------------------------------------------------------------------------


class _Turns:
    """Builds hub messages from input items: consecutive function calls (and the reasoning and text
    around them) form one assistant message, as Chat Completions wants them."""

    __slots__ = ("assistant", "messages", "reasoning")

    def __init__(self, messages: list[Message]) -> None:
        self.messages = messages
        self.assistant: Message | None = None  # the assistant message still taking items
        self.reasoning: list[dict[str, Any]] = []  # signed reasoning blocks for the next assistant message

    def add(self, message: Message) -> None:
        """A user, system or tool message: ends the assistant's turn."""
        self.assistant = None
        self.messages.append(message)

    def open_assistant(self, for_text: bool) -> Message:
        current = self.assistant
        # Text after tool calls starts a new message: Chat Completions puts text before the calls.
        if current is None or (for_text and current.get("tool_calls")):
            current = {"role": "assistant", "content": None}
            self.messages.append(current)
            self.assistant = current
        if self.reasoning:
            current.setdefault("reasoning_blocks", []).extend(self.reasoning)
            self.reasoning = []
        return current

    def finish(self) -> None:
        for message in self.messages:
            if (
                message["role"] == "assistant"
                and message.get("content") is None
                and not message.get("tool_calls")
            ):
                message["content"] = ""


def _decode_input(raw: Any, messages: list[Message]) -> None:
    if isinstance(raw, str):
        messages.append({"role": "user", "content": raw})
        return
    if not isinstance(raw, list) or not raw:
        raise _fail("input", "input is required: a string or a non-empty list of input items")
    turns = _Turns(messages)
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise _fail(
                where, f"{where} must be an input item object such as {{'role': 'user', 'content': ...}}"
            )
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        if kind == "message":
            _message_item(where, item, turns)
        elif kind in ("function_call", "custom_tool_call"):
            _function_call(where, item, turns)
        elif kind in ("function_call_output", "custom_tool_call_output"):
            turns.add(_function_call_output(where, item))
        elif kind == "reasoning":
            _reasoning_item(where, item, turns)
        elif kind == "item_reference":
            raise _fail(
                where, f"{where} is an item_reference, which refers to a stored item{_STATELESS_HINT}"
            )
        else:
            raise _fail(
                f"{where}.type",
                f"{where}.type {kind!r} is not supported here; input items may be messages, function_call, "
                "function_call_output, custom_tool_call(_output) and reasoning items",
            )
    turns.finish()


def _message_item(where: str, item: dict[str, Any], turns: _Turns) -> None:
    role = _ROLES.get(str(item.get("role")))
    if role is None:
        raise _fail(
            f"{where}.role",
            f"{where}.role must be one of user, assistant, system, developer; got {item.get('role')!r}",
        )
    content = item.get("content")
    if role == "assistant":
        text, refusal = _assistant_content(where, content)
        message = turns.open_assistant(for_text=True)
        if text:
            message["content"] = (message.get("content") or "") + text
        if refusal:
            message["refusal"] = (message.get("refusal") or "") + refusal
        return
    if isinstance(content, str):
        turns.add({"role": role, "content": content})
        return
    if not isinstance(content, list):
        raise _fail(f"{where}.content", f"{where}.content must be a string or a list of content parts")
    parts = [_input_part(f"{where}.content[{j}]", part) for j, part in enumerate(content)]
    if role == "system" or all(p["type"] == "text" for p in parts):
        if role == "system" and any(p["type"] != "text" for p in parts):
            raise _fail(f"{where}.content", f"{where} is a {item.get('role')} message and takes text only")
        turns.add({"role": role, "content": "".join(p["text"] for p in parts)})
        return
    turns.add({"role": role, "content": parts})


def _assistant_content(where: str, content: Any) -> tuple[str, str]:
    if isinstance(content, str):
        return content, ""
    if not isinstance(content, list):
        raise _fail(f"{where}.content", f"{where}.content must be a string or a list of output_text parts")
    text: list[str] = []
    refusal: list[str] = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _ASSISTANT_PARTS and kind != "input_text":
            raise _fail(at, f"{at} must be an output_text or refusal part")
        if kind == "refusal":
            value = part.get("refusal")
            if not isinstance(value, str):
                raise _fail(f"{at}.refusal", f"{at} is a refusal part and needs a string 'refusal'")
            refusal.append(value)
        else:
            value = part.get("text")
            if not isinstance(value, str):
                raise _fail(f"{at}.text", f"{at} is a text part and needs a string 'text'")
            text.append(value)
    return "".join(text), "".join(refusal)


def _input_part(at: str, part: Any) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in _INPUT_PARTS and kind != "output_text":
        raise _fail(
            at, f"{at} must be a content part of type input_text, input_image, input_file or input_audio"
        )
    if kind in ("input_text", "output_text"):
        text = part.get("text")
        if not isinstance(text, str):
            raise _fail(f"{at}.text", f"{at} is a text part and needs a string 'text'")
        return {"type": "text", "text": text}
    if kind == "input_image":
        if part.get("file_id") is not None:
            raise _fail(
                f"{at}.file_id", f"{at}: uploaded files (file_id) are not available here; send image_url"
            )
        url = image_url(part.get("image_url"))
        if url is None:
            raise _fail(
                f"{at}.image_url",
                f"{at}.image_url must be an https URL or a data URL (data:image/png;base64,...)",
            )
        image: dict[str, Any] = {"url": url}
        detail = part.get("detail")
        if detail is not None:
            if detail not in ("auto", "low", "high"):
                raise _fail(f"{at}.detail", f"{at}.detail must be 'auto', 'low' or 'high'")
            image["detail"] = detail
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        if part.get("file_id") is not None:
            raise _fail(
                f"{at}.file_id", f"{at}: uploaded files (file_id) are not available here; send file_data"
            )
        data = part.get("file_data")
        if not isinstance(data, str):
            raise _fail(
                f"{at}.file_data",
                f"{at} needs 'file_data' (a data URL such as data:application/pdf;base64,...) and a 'filename'",
            )
        file: dict[str, Any] = {"file_data": data}
        if isinstance(part.get("filename"), str):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    audio = part.get("input_audio")
    if not isinstance(audio, dict) or not isinstance(audio.get("data"), str):
        raise _fail(f"{at}.input_audio", f"{at} needs 'input_audio': {{'data': base64, 'format': 'wav'}}")
    return {"type": "input_audio", "input_audio": audio}


def _function_call(where: str, item: dict[str, Any], turns: _Turns) -> None:
    kind = item["type"]
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not call_id:
        raise _fail(f"{where}.call_id", f"{where} is a {kind} and needs its 'call_id'")
    if not isinstance(name, str) or not name:
        raise _fail(f"{where}.name", f"{where} is a {kind} and needs the tool's 'name'")
    if kind == "custom_tool_call":
        text = item.get("input", "")
        if not isinstance(text, str):
            raise _fail(f"{where}.input", f"{where}.input must be a string")
        arguments = encode_json({CUSTOM_INPUT: text}).decode()
    else:
        arguments = item.get("arguments", "")
        if not isinstance(arguments, str):
            raise _fail(f"{where}.arguments", f"{where}.arguments must be a string of JSON")
        namespace = item.get("namespace")
        if namespace is not None:
            if not isinstance(namespace, str):
                raise _fail(f"{where}.namespace", f"{where}.namespace must be a string")
            name = hub_tool_name(name, namespace)
    call: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }
    extra = item.get("extra_content")
    if isinstance(extra, dict):
        call["extra_content"] = extra  # e.g. Gemini's thought signature, given back as it was sent
    message = turns.open_assistant(for_text=False)
    message.setdefault("tool_calls", []).append(call)


def _function_call_output(where: str, item: dict[str, Any]) -> Message:
    call_id = item.get("call_id")
    output = item.get("output")
    if isinstance(output, list):
        parts = [_input_part(f"{where}.output[{j}]", part) for j, part in enumerate(output)]
        content: Any = "".join(p["text"] for p in parts) if all(p["type"] == "text" for p in parts) else parts
    elif isinstance(output, str):
        content = output
    else:
        raise _fail(f"{where}.output", f"{where}.output must be a string or a list of content parts")
    if isinstance(call_id, str) and call_id:
        return {"role": "tool", "tool_call_id": call_id, "content": content}
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(
            f"{where}.call_id", f"{where} is a function_call_output and needs the 'call_id' it answers"
        )
    # An output that answers no call, only names its tool (Codex CLI tells the model its goal this way):
    # Chat Completions takes a tool result only right after its call, so it is context from the user.
    namespace = item.get("namespace")
    label = f"{namespace}.{name}" if isinstance(namespace, str) and namespace else name
    if isinstance(content, str):
        return {"role": "user", "content": f"[{label}] {content}"}
    return {"role": "user", "content": [{"type": "text", "text": f"[{label}]"}, *content]}


def _reasoning_item(where: str, item: dict[str, Any], turns: _Turns) -> None:
    summary = item.get("summary", [])
    if not isinstance(summary, list):
        raise _fail(f"{where}.summary", f"{where}.summary must be a list of summary_text parts")
    encrypted = item.get("encrypted_content")
    if encrypted is None:
        return  # a summary alone is for people to read; no provider takes it back
    if not isinstance(encrypted, str):
        raise _fail(f"{where}.encrypted_content", f"{where}.encrypted_content must be a string")
    blocks = reasoning_blocks_of(encrypted)
    if blocks:
        turns.reasoning.extend(blocks)


# --- parameters -----------------------------------------------------------------------------------


def _translate_params(
    data: dict[str, Any], params: dict[str, Any], renamed: dict[str, ClientTool]
) -> dict[str, Any]:
    """Put the Responses parameters that have a Chat Completions name into ``params`` under that name;
    return what the answer echoes."""
    echo: dict[str, Any] = {
        "instructions": data.get("instructions"),
        "metadata": _metadata(data.get("metadata")),
        "temperature": params.get("temperature"),
        "top_p": params.get("top_p"),
        "parallel_tool_calls": params.get("parallel_tool_calls", True),
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "reasoning": {"effort": None, "summary": None},
        "max_output_tokens": None,
        "truncation": "disabled",
        "store": False,
        "background": False,
        "previous_response_id": None,
        "user": params.get("user"),
    }
    max_out = data.get("max_output_tokens")
    if max_out is not None:
        _integer(1)("max_output_tokens", max_out)
        params["max_completion_tokens"] = echo["max_output_tokens"] = max_out
    tools = data.get("tools")
    if tools is not None:
        params["tools"] = _tools(tools, params, renamed)
        echo["tools"] = tools
    choice = data.get("tool_choice")
    if choice is not None:
        _tool_choice(choice, params)
        echo["tool_choice"] = choice
    text = data.get("text")
    if text is not None:
        echo["text"] = _text(text, params)
    reasoning = data.get("reasoning")
    if reasoning is not None:
        echo["reasoning"] = _reasoning(reasoning, params)
    include = data.get("include")
    if include is not None:
        if not isinstance(include, list) or not all(isinstance(v, str) for v in include):
            raise _fail("include", "include must be a list of strings, e.g. ['reasoning.encrypted_content']")
        if _LOGPROBS in include:
            params["logprobs"] = True
    if "top_logprobs" in params:
        params["logprobs"] = True
    store = data.get("store")
    if store is not None:
        _boolean("store", store)
        if store:
            # No endpoint takes "store": routing leaves it out and lists it in the generation record.
            params["store"] = True
    truncation = data.get("truncation")
    if truncation is not None:
        if truncation not in ("auto", "disabled"):
            raise _fail("truncation", "truncation must be 'auto' or 'disabled'")
        echo["truncation"] = truncation
    safety = data.get("safety_identifier")
    if safety is not None:
        if not isinstance(safety, str):
            raise _fail("safety_identifier", "safety_identifier must be a string")
        params.setdefault("user", safety)
        echo["safety_identifier"] = safety
    stream_options = data.get("stream_options")
    if stream_options is not None:
        _object("stream_options", stream_options)
    return echo


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if (
        not isinstance(value, dict)
        or len(value) > 16
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise _fail("metadata", "metadata must be an object of at most 16 string keys with string values")
    return value


def _tools(tools: Any, params: dict[str, Any], renamed: dict[str, ClientTool]) -> list[dict[str, Any]]:
    """Function tools as they are, the functions of namespace tools under ``namespace__name``, custom
    tools as functions of one string argument. OpenAI's built-in tools (web search, file search, ...) run
    on OpenAI's side: each goes into ``params`` under its type, which no endpoint takes, so routing leaves
    it out and the generation record lists it (with ``require_parameters`` no endpoint qualifies)."""
    if not isinstance(tools, list):
        raise _fail("tools", "tools must be a list of {'type': 'function', 'name': ..., 'parameters': {...}}")
    out: list[dict[str, Any]] = []
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            out.append(_function_tool(f"tools[{i}]", tool, None, renamed))
        elif kind == "namespace":
            namespace, inner = tool.get("name"), tool.get("tools")
            if not isinstance(namespace, str) or not namespace or not isinstance(inner, list):
                raise _fail(f"tools[{i}]", f"tools[{i}] is a namespace and needs a 'name' and its 'tools'")
            for j, member in enumerate(inner):
                where = f"tools[{i}].tools[{j}]"
                if not isinstance(member, dict) or member.get("type") != "function":
                    raise _fail(where, f"{where} must be a function tool")
                out.append(_function_tool(where, member, namespace, renamed))
        elif kind == "custom":
            name = tool.get("name")
            if not isinstance(name, str) or not name:
                raise _fail(f"tools[{i}].name", f"tools[{i}] needs a 'name'")
            function: dict[str, Any] = {"name": name, "parameters": _CUSTOM_PARAMETERS}
            if isinstance(tool.get("description"), str):
                function["description"] = tool["description"]
            out.append({"type": "function", "function": function})
            renamed[name] = ClientTool(name, custom=True)
        elif isinstance(kind, str) and kind:
            params[kind] = tool
        else:
            raise _fail(f"tools[{i}].type", f"tools[{i}] needs a 'type', e.g. 'function'")
    return out


def _function_tool(
    where: str, tool: dict[str, Any], namespace: str | None, renamed: dict[str, ClientTool]
) -> dict[str, Any]:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise _fail(f"{where}.name", f"{where} needs a 'name'")
    parameters = tool.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _fail(f"{where}.parameters", f"{where}.parameters must be a JSON Schema object")
    hub_name = hub_tool_name(name, namespace)
    if namespace:
        renamed[hub_name] = ClientTool(name, namespace)
    function: dict[str, Any] = {"name": hub_name}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    function["parameters"] = parameters if parameters is not None else {"type": "object", "properties": {}}
    if isinstance(tool.get("strict"), bool):
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any, params: dict[str, Any]) -> None:
    if choice in ("none", "auto", "required"):
        params["tool_choice"] = choice
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("function", "custom") and isinstance(choice.get("name"), str):
        params["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        return
    if kind == "allowed_tools" and choice.get("mode") in ("auto", "required"):
        allowed = choice.get("tools")
        if isinstance(allowed, list) and all(
            isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str)
            for t in allowed
        ):
            names = {t["name"] for t in allowed}
            params["tools"] = [t for t in params.get("tools", ()) if t["function"]["name"] in names]
            params["tool_choice"] = choice["mode"] if params["tools"] else "none"
            return
    raise _fail(
        "tool_choice",
        "tool_choice must be 'none', 'auto', 'required', {'type': 'function', 'name': ...} or "
        "{'type': 'allowed_tools', 'mode': 'auto' | 'required', 'tools': [{'type': 'function', 'name': ...}]}",
    )


def _text(text: Any, params: dict[str, Any]) -> dict[str, Any]:
    _object("text", text)
    echo = dict(text)
    fmt = text.get("format")
    if fmt is None:
        echo["format"] = {"type": "text"}
    else:
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind == "json_schema":
            name, schema = fmt.get("name"), fmt.get("schema")
            if not isinstance(name, str) or not name or not isinstance(schema, dict):
                raise _fail(
                    "text.format",
                    "text.format json_schema needs {'type': 'json_schema', 'name': ..., 'schema': {...}}",
                )
            spec: dict[str, Any] = {"name": name, "schema": schema}
            for key in ("strict", "description"):
                if fmt.get(key) is not None:
                    spec[key] = fmt[key]
            params["response_format"] = {"type": "json_schema", "json_schema": spec}
        elif kind == "json_object":
            params["response_format"] = {"type": "json_object"}
        elif kind != "text":
            raise _fail("text.format", "text.format.type must be 'text', 'json_schema' or 'json_object'")
    verbosity = text.get("verbosity")
    if verbosity is not None:
        if verbosity not in ("low", "medium", "high"):
            raise _fail("text.verbosity", "text.verbosity must be 'low', 'medium' or 'high'")
        params["verbosity"] = verbosity
    return echo


def _reasoning(reasoning: Any, params: dict[str, Any]) -> dict[str, Any]:
    _object("reasoning", reasoning)
    effort = reasoning.get("effort")
    if effort is not None:
        if effort not in _EFFORTS:
            raise _fail("reasoning.effort", f"reasoning.effort must be one of {', '.join(sorted(_EFFORTS))}")
        params["reasoning_effort"] = effort
    summary = reasoning.get("summary", reasoning.get("generate_summary"))
    if summary is not None and summary not in _SUMMARIES:
        raise _fail("reasoning.summary", "reasoning.summary must be 'auto', 'concise' or 'detailed'")
    return {"effort": effort, "summary": summary}


__all__ = [
    "ClientTool",
    "Renamed",
    "ResponsesRequest",
    "ResponsesStreamEncoder",
    "decode_responses_request",
    "encode_error",
    "encode_response",
]
