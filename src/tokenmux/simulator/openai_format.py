"""OpenAI Chat Completions as a simulated provider speaks it, and its Azure OpenAI variant.

Azure differs only at the edges: the key comes in an ``api-key`` header, ``api-version`` is required, the
model is the deployment named in the path, errors carry just ``code`` and ``message``, and answers carry
content-filter results (a stream opens with a chunk that has no choices, as Azure's does).
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

import msgspec

from tokenmux.simulator.answer import Answer, AnswerSpec, PlannedChoice, ToolSpec
from tokenmux.simulator.wire import ReplyContext, RequestRejected, StreamFrames

_encode = msgspec.json.encode
_FINGERPRINT = "fp_tokenmux_sim"
_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_IMAGE_TOKENS = 85  # what OpenAI bills a low-detail image; good enough for an estimate
_DONE = b"data: [DONE]\n\n"

_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error"}
_ERROR_TYPES.update({404: "invalid_request_error", 413: "invalid_request_error", 429: "requests"})
_AZURE_CODES = {400: "BadRequest", 401: "401", 403: "403", 404: "DeploymentNotFound", 429: "429"}
_AZURE_CODES.update({500: "InternalServerError", 503: "ServiceUnavailable"})

_SAFE = {"filtered": False, "severity": "safe"}
_FILTER_RESULTS = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
_PROMPT_FILTER_RESULTS = [{"prompt_index": 0, "content_filter_results": _FILTER_RESULTS}]
# Azure opens every stream with this chunk: no choices, empty id and model, the prompt's filter results.
_AZURE_FIRST_FRAME = (
    b"data: "
    + _encode(
        {
            "choices": [],
            "created": 0,
            "id": "",
            "model": "",
            "object": "",
            "prompt_filter_results": _PROMPT_FILTER_RESULTS,
        }
    )
    + b"\n\n"
)


class OpenAIFormat:
    """OpenAI Chat Completions (``azure=False``) or Azure OpenAI (``azure=True``)."""

    stream_content_type = b"text/event-stream; charset=utf-8"

    def __init__(self, *, azure: bool = False) -> None:
        self.azure = azure
        self.name = "azure" if azure else "openai"

    # -- requests ---------------------------------------------------------------------------------

    def check_access(self, scope: dict[str, Any]) -> RequestRejected | None:
        if self.azure:
            key = _header(scope, b"api-key")
            if not key or not key.strip():
                return RequestRejected(
                    401,
                    "Access denied due to missing subscription key. Make sure to include the subscription "
                    "key in the 'api-key' header when making requests to an API.",
                )
            if not _has_query_value(scope.get("query_string", b""), b"api-version="):
                return RequestRejected(
                    400,
                    "The api-version query parameter (?api-version=) is required for all requests.",
                    code="MissingApiVersionParameter",
                )
            return None
        authorization = _header(scope, b"authorization")
        scheme, _, token = (authorization or b"").partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return RequestRejected(
                401,
                "You didn't provide an API key. You need to provide your API key in an Authorization "
                "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        return None

    def parse(self, body: Any, path_model: str | None) -> AnswerSpec:
        return parse_chat_request(body, path_model)

    # -- answers ----------------------------------------------------------------------------------

    def error_body(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> bytes:
        if self.azure:
            return _encode(
                {"error": {"code": code or _AZURE_CODES.get(status, str(status)), "message": message}}
            )
        error_type = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
        if code is None and status == 429:
            code = "rate_limit_exceeded"
        return _encode({"error": {"message": message, "type": error_type, "param": param, "code": code}})

    def completion(self, answer: Answer, ctx: ReplyContext) -> bytes:
        choices = []
        for choice in answer.choices:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": choice.content,
                "refusal": None,
                "annotations": [],
            }
            if choice.tool_calls:
                message["tool_calls"] = [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                    for c in choice.tool_calls
                ]
            rendered: dict[str, Any] = {
                "index": choice.index,
                "message": message,
                "logprobs": _logprobs(choice, 0, None),
                "finish_reason": choice.finish_reason,
            }
            if self.azure:
                rendered["content_filter_results"] = _FILTER_RESULTS
            choices.append(rendered)
        document: dict[str, Any] = {
            "id": ctx.response_id,
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": choices,
            "usage": _usage(answer),
            "system_fingerprint": _FINGERPRINT,
        }
        if self.azure:
            document["prompt_filter_results"] = _PROMPT_FILTER_RESULTS
        else:
            document["service_tier"] = "default"
        return _encode(document)

    def stream(self, answer: Answer, ctx: ReplyContext, spec: AnswerSpec) -> StreamFrames:
        # Every chunk shares its envelope; encode it once and splice each choice in.
        opening = b"".join(
            (
                b'data: {"id":',
                _encode(ctx.response_id),
                b',"object":"chat.completion.chunk","created":',
                b"%d" % ctx.created,
                b',"model":',
                _encode(ctx.model),
                b"" if self.azure else b',"service_tier":"default"',
                b',"system_fingerprint":"' + _FINGERPRINT.encode() + b'","choices":[',
            )
        )
        closing = b'],"usage":null}\n\n' if spec.include_usage else b"]}\n\n"

        def frame(choice: dict[str, Any]) -> bytes:
            return opening + _encode(choice) + closing

        frames = StreamFrames()
        if self.azure:
            frames.head.append(_AZURE_FIRST_FRAME)
        for choice in answer.choices:
            role_delta = {"role": "assistant", "content": None if choice.tool_calls else "", "refusal": None}
            frames.head.append(frame(_chunk_choice(choice.index, role_delta)))
        per_choice = [_content_frames(choice, opening, closing) for choice in answer.choices]
        if len(per_choice) == 1:
            frames.steps = [[f] for f in per_choice[0]]
        else:
            frames.steps = [[f for f in step if f is not None] for step in zip_longest(*per_choice)]
        for choice in answer.choices:
            frames.tail.append(frame(_chunk_choice(choice.index, {}, finish_reason=choice.finish_reason)))
        if spec.include_usage:
            frames.tail.append(opening + b'],"usage":' + _encode(_usage(answer)) + b"}\n\n")
        frames.tail.append(_DONE)
        return frames

    def malformed_body(self) -> bytes:
        return b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "message": '

    def malformed_frame(self) -> bytes:
        return b'data: {"id": "chatcmpl-broken", "choices": [{"delta": \n\n'


def _chunk_choice(
    index: int, delta: dict[str, Any], *, logprobs: Any = None, finish_reason: str | None = None
) -> dict[str, Any]:
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}


def _content_frames(choice: PlannedChoice, opening: bytes, closing: bytes) -> list[bytes]:
    """The stream frames that carry this choice's content, one per token or tool-call piece."""
    if choice.tool_calls:
        return [opening + _encode(c) + closing for c in _tool_call_chunk_choices(choice)]
    # Text is most of what the simulator streams: splice each token into fixed bytes rather than
    # encoding a dict per token.
    before = opening + b'{"index":%d,"delta":{"content":' % choice.index
    if choice.logprobs is None:
        after = b'},"logprobs":null,"finish_reason":null}' + closing
        return [before + _encode(token) + after for token in choice.tokens]
    after = b',"finish_reason":null}' + closing
    return [
        before + _encode(token) + b'},"logprobs":' + _encode(_logprobs(choice, k, k + 1)) + after
        for k, token in enumerate(choice.tokens)
    ]


def _tool_call_chunk_choices(choice: PlannedChoice) -> list[dict[str, Any]]:
    chunks = []
    for k, call in enumerate(choice.tool_calls):
        start = {
            "index": k,
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        chunks.append(_chunk_choice(choice.index, {"tool_calls": [start]}))
        chunks.extend(
            _chunk_choice(choice.index, {"tool_calls": [{"index": k, "function": {"arguments": piece}}]})
            for piece in call.pieces
        )
    return chunks


def _logprobs(choice: PlannedChoice, start: int, end: int | None) -> dict[str, Any] | None:
    if choice.logprobs is None:
        return None
    content = [
        {
            "token": token,
            "logprob": logprob,
            "bytes": list(token.encode()),
            "top_logprobs": [
                {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alternatives
            ],
        }
        for token, logprob, alternatives in choice.logprobs[start:end]
    ]
    return {"content": content, "refusal": None}


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.total_tokens,
        "prompt_tokens_details": {"cached_tokens": answer.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": answer.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _has_query_value(query: bytes, prefix: bytes) -> bool:
    return any(part.startswith(prefix) and len(part) > len(prefix) for part in query.split(b"&"))


# -- request parsing ------------------------------------------------------------------------------


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
        text_bytes += len(_encode(tools))
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
