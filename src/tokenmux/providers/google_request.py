"""The hub request (OpenAI Chat shape) as a Gemini ``generateContent`` body.

    hub                                    Gemini
    system / developer messages            systemInstruction.parts (text), wherever they are; a prompt
                                           of nothing but those is one user turn of their text instead
                                           (Gemini needs contents)
    user / assistant messages              contents, roles "user" / "model"; consecutive turns of one
                                           role merged into one (Gemini wants them alternating)
    text parts                             {"text"}
    image_url data: URL                    {"inlineData": {"mimeType", "data"}}
    image_url https URL                    {"fileData": {"mimeType" (from the extension), "fileUri"}}:
                                           Gemini fetches it; the gateway never does
    input_audio, file (data: URL)          {"inlineData"}
    assistant tool_calls                   {"functionCall": {"id", "name", "args"}} (args parsed)
    tool messages                          {"functionResponse": {"id", "name", "response": {"result"}}}
                                           (``"error"`` when the result is an error), in a user turn;
                                           the name is that of the tool call the message answers
    tools                                  tools[0].functionDeclarations, the JSON schema as given in
                                           ``parametersJsonSchema`` (full JSON Schema, unlike the
                                           OpenAPI subset ``parameters`` takes)
    tool_choice                            toolConfig.functionCallingConfig: auto AUTO, none NONE,
                                           required ANY, a named function ANY + allowedFunctionNames
    temperature, top_p, top_k, seed,       generationConfig: temperature, topP, topK, seed,
    presence/frequency_penalty, n,         presencePenalty, frequencyPenalty, candidateCount,
    max_(completion_)tokens, stop          maxOutputTokens, stopSequences
    response_format json_object            responseMimeType application/json
    response_format json_schema            + responseJsonSchema (JSON Schema as given)
    logprobs, top_logprobs                 responseLogprobs, logprobs
    reasoning / reasoning_effort           thinkingConfig.thinkingBudget (effort as a budget, as Google's
                                           OpenAI-compatible endpoint maps it); includeThoughts when the
                                           client asked for ``reasoning`` (OpenRouter's parameter) it sees

Parameters with no Gemini equivalent (``logit_bias``, ``user``, ``parallel_tool_calls``, ...) are left out;
routing lists them as dropped for Gemini endpoints.

Thought signatures: Gemini 3 and later refuse a function call sent back without the signature their
answer gave it. An answer's signature travels on its tool call as ``extra_content.google.thought_signature``
(the key Google's OpenAI-compatible endpoint uses); a tool call that comes back without one (from a client
that drops unknown keys, or from another model) gets the placeholder Google documents for that case.
"""

from __future__ import annotations

import base64
import mimetypes
from typing import Any
from urllib.parse import unquote, urlsplit

import msgspec

from tokenmux.protocols.gemini_mappings import SKIP_SIGNATURE, function_call_part
from tokenmux.types import Message

_decode = msgspec.json.Decoder().decode

# What an effort means as a thinking budget in tokens ("none": no thinking where the model allows it).
_EFFORT_BUDGETS = {"none": 0, "minimal": 1024, "low": 1024, "medium": 8192, "high": 24576}
# Models that do not check thought signatures (and predate them).
_UNSIGNED_FAMILIES = ("gemini-1", "gemini-2")
_DEFAULT_IMAGE_TYPE = "image/jpeg"


def encode_request(messages: list[Message], params: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    """The ``generateContent`` body for ``messages`` and the (routing-filtered) ``params``."""
    system, contents = encode_contents(messages, signatures=not upstream_model.startswith(_UNSIGNED_FAMILIES))
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    tools = params.get("tools")
    if tools:
        body["tools"] = [{"functionDeclarations": [_declaration(tool) for tool in tools]}]
        tool_config = _tool_config(params.get("tool_choice"))
        if tool_config is not None:
            body["toolConfig"] = tool_config
    config = generation_config(params)
    if config:
        body["generationConfig"] = config
    return body


def encode_contents(
    messages: list[Message], *, signatures: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents). ``signatures``: give unsigned function calls a placeholder."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}  # tool call id -> function name, from the assistant turns so far
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend({"text": text} for text in _texts(message.get("content")))
            continue
        if role == "assistant":
            parts = _model_parts(message, call_names, signatures)
            gemini_role = "model"
        elif role == "tool":
            parts = [_function_response(message, call_names)]
            gemini_role = "user"
        else:
            parts = _user_parts(message.get("content"))
            gemini_role = "user"
        if not parts:
            continue  # Gemini refuses a turn without parts
        if contents and contents[-1]["role"] == gemini_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": gemini_role, "parts": parts})
    if not contents and system:
        return [], [{"role": "user", "parts": system}]
    return system, contents


def generation_config(params: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, gemini_name in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ):
        value = params.get(name)
        if value is not None:
            config[gemini_name] = value
    max_tokens = params.get("max_completion_tokens", params.get("max_tokens"))
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = params.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    _response_format(params.get("response_format"), config)
    if params.get("logprobs"):
        config["responseLogprobs"] = True
        top = params.get("top_logprobs")
        if top:
            config["logprobs"] = top
    thinking = _thinking_config(params)
    if thinking is not None:
        config["thinkingConfig"] = thinking
    return config


# Contents


def _texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content] if content else []
    if isinstance(content, list):
        return [
            p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str) and p["text"]
        ]
    return []


def _user_parts(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content or ():
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind == "text" and part.get("text"):
            parts.append({"text": part["text"]})
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if isinstance(url, str) and url:
                parts.append(_media_part(url, None))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            data, fmt = audio.get("data"), audio.get("format") or "wav"
            if isinstance(data, str) and data:
                parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": data}})
        elif kind == "file":
            file = part.get("file") or {}
            data = file.get("file_data")
            if isinstance(data, str) and data.startswith("data:"):
                parts.append(_media_part(data, file.get("filename")))
    return parts


def _media_part(url: str, filename: Any) -> dict[str, Any]:
    """A data: URL as inline data; any other URL as a file Gemini fetches itself."""
    if url.startswith("data:"):
        header, _, payload = url[5:].partition(",")
        mime_type, _, encoding = header.partition(";")
        if encoding != "base64":  # a percent-encoded data URL: Gemini takes base64 only
            payload = base64.b64encode(unquote(payload).encode()).decode()
        return {"inlineData": {"mimeType": mime_type or _guess_type(filename), "data": payload}}
    return {"fileData": {"mimeType": _guess_type(urlsplit(url).path), "fileUri": url}}


def _guess_type(name: Any) -> str:
    guessed = mimetypes.guess_type(name)[0] if isinstance(name, str) and name else None
    return guessed or _DEFAULT_IMAGE_TYPE


def _model_parts(message: Message, call_names: dict[str, str], signatures: bool) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"text": text} for text in _texts(message.get("content"))]
    signed = False
    for call in message.get("tool_calls") or ():
        part = function_call_part(call)
        call_id = part["functionCall"].get("id")
        if call_id:
            call_names[call_id] = part["functionCall"]["name"]
        if "thoughtSignature" not in part and signatures and not signed:
            # Gemini signs the first call of a turn; the others need none.
            part["thoughtSignature"] = SKIP_SIGNATURE
        signed = signed or "thoughtSignature" in part
        parts.append(part)
    return parts


def _function_response(message: Message, call_names: dict[str, str]) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    # A result whose call is not in the conversation still needs a name: its own, else the call's id.
    name = call_names.get(call_id or "") or message.get("name") or call_id or "function"
    text = "".join(_texts(message.get("content")))
    try:
        result: Any = _decode(text) if text else ""
    except msgspec.DecodeError:
        result = text
    response: dict[str, Any] = {
        "name": name,
        "response": {"error" if message.get("is_error") else "result": result},
    }
    if call_id:
        response["id"] = call_id
    return {"functionResponse": response}


# Tools


def _declaration(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    declaration: dict[str, Any] = {"name": function.get("name") or ""}
    if function.get("description"):
        declaration["description"] = function["description"]
    parameters = function.get("parameters")
    if isinstance(parameters, dict) and parameters:
        # "$schema" names a dialect; Gemini reads the schema itself and has no use for it.
        declaration["parametersJsonSchema"] = {k: v for k, v in parameters.items() if k != "$schema"}
    return declaration


def _tool_config(choice: Any) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(choice)
    return {"functionCallingConfig": {"mode": mode}} if mode else None


# Output


def _response_format(value: Any, config: dict[str, Any]) -> None:
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "json_object":
        config["responseMimeType"] = "application/json"
    elif kind == "json_schema":
        assert isinstance(value, dict)
        config["responseMimeType"] = "application/json"
        spec = value.get("json_schema") or {}
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            config["responseJsonSchema"] = {k: v for k, v in schema.items() if k != "$schema"}


def _thinking_config(params: dict[str, Any]) -> dict[str, Any] | None:
    reasoning = params.get("reasoning")
    effort = params.get("reasoning_effort")
    if isinstance(reasoning, dict):
        if reasoning.get("enabled") is False:
            return {"thinkingBudget": 0}
        config: dict[str, Any] = {}
        budget = reasoning.get("max_tokens")
        effort = reasoning.get("effort") or effort
        if isinstance(budget, int):
            config["thinkingBudget"] = budget
        elif effort in _EFFORT_BUDGETS:
            config["thinkingBudget"] = _EFFORT_BUDGETS[effort]
        if not reasoning.get("exclude") and config.get("thinkingBudget") != 0:
            config["includeThoughts"] = True
        return config
    if effort in _EFFORT_BUDGETS:
        return {"thinkingBudget": _EFFORT_BUDGETS[effort]}
    return None
