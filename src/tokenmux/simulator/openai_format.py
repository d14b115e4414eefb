"""OpenAI Chat Completions as a simulated provider speaks it, and its Azure OpenAI variant.

Azure differs only at the edges: the key comes in an ``api-key`` header, ``api-version`` is required, the
model is the deployment named in the path, errors carry just ``code`` and ``message``, and answers carry
content-filter results (a stream opens with a chunk that has no choices, as Azure's does).
"""

from __future__ import annotations

from itertools import zip_longest
from typing import Any

import msgspec

from tokenmux.asgi import Scope, header
from tokenmux.simulator.answer import Answer, AnswerSpec, PlannedChoice
from tokenmux.simulator.openai_request import parse_chat_request
from tokenmux.simulator.wire import ReplyContext, RequestRejected, StreamFrames

_encode = msgspec.json.encode
_FINGERPRINT = "fp_tokenmux_sim"
_DONE = b"data: [DONE]\n\n"

# OpenAI's error ``type`` for a status (a 4xx not listed is an invalid request, a 5xx a server error);
# Azure's error ``code`` for a status (others: the status itself, as Azure does).
_ERROR_TYPES = {429: "requests"}
_AZURE_CODES = {
    400: "BadRequest",
    404: "DeploymentNotFound",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}

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
    implicit_prompt_cache = True

    def __init__(self, *, azure: bool = False) -> None:
        self.azure = azure
        self.name = "azure" if azure else "openai"

    # -- requests ---------------------------------------------------------------------------------

    def check_access(self, scope: Scope) -> RequestRejected | None:
        if self.azure:
            key = header(scope, b"api-key")
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
        authorization = header(scope, b"authorization")
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


def _has_query_value(query: bytes, prefix: bytes) -> bool:
    return any(part.startswith(prefix) and len(part) > len(prefix) for part in query.split(b"&"))
