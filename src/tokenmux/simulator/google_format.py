"""The Gemini API as a simulated provider speaks it: ``POST /google/v1beta/models/{model}:generateContent``
and ``:streamGenerateContent?alt=sse``.

An answer is a ``GenerateContentResponse``: candidates whose parts are thoughts (``"thought": true``, when
the request set ``includeThoughts``), then ``functionCall`` parts or text; ``usageMetadata`` counts thoughts
apart from candidates and cached prompt tokens inside the prompt. A stream sends one response chunk per
token (a function call whole, as Gemini does), each with the usage known so far, the last with the finish
reason and the whole usage. A prompt the safety filter refuses (``block_rate``) gets ``promptFeedback``
with ``blockReason: SAFETY`` and no candidates.
"""

from __future__ import annotations

import base64
import hashlib
from itertools import zip_longest
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from tokenmux.asgi import Scope, header
from tokenmux.simulator.answer import Answer, AnswerSpec, PlannedChoice
from tokenmux.simulator.google_request import parse_generate_content_request
from tokenmux.simulator.wire import ReplyContext, RequestRejected, StreamFrames

_encode = msgspec.json.encode
_decode = msgspec.json.decode

# google.rpc status names for HTTP statuses (others: by class).
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "INVALID_ARGUMENT",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FINISH_REASONS = {"stop": "STOP", "length": "MAX_TOKENS", "tool_calls": "STOP"}
_BLOCKED_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]
_END = b"\r\n\r\n"  # Gemini ends its events with CRLF pairs


class GoogleFormat:
    """``generateContent`` (``stream=False``) or ``streamGenerateContent`` (``stream=True``)."""

    name = "google"
    stream_content_type = b"text/event-stream"
    implicit_prompt_cache = True

    def __init__(self, *, stream: bool) -> None:
        self.streaming = stream

    # -- requests ---------------------------------------------------------------------------------

    def check_access(self, scope: Scope) -> RequestRejected | None:
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        key = header(scope, b"x-goog-api-key") or query.get("key", "").encode()
        if not key.strip():
            return RequestRejected(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if self.streaming and query.get("alt") != "sse":
            return RequestRejected(
                400, "The simulator streams server-sent events only: add ?alt=sse to the URL."
            )
        return None

    def parse(self, body: Any, path_model: str | None) -> AnswerSpec:
        return parse_generate_content_request(body, path_model or "", stream=self.streaming)

    # -- answers ----------------------------------------------------------------------------------

    def error_body(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> bytes:
        name = _STATUS_NAMES.get(status, "INTERNAL" if status >= 500 else "FAILED_PRECONDITION")
        return _encode({"error": {"code": status, "message": message, "status": name}})

    def completion(self, answer: Answer, ctx: ReplyContext) -> bytes:
        if answer.prompt_blocked:
            return _encode(_blocked_response(answer, ctx))
        candidates = []
        for choice in answer.choices:
            candidate: dict[str, Any] = {
                "content": {"parts": _parts(choice, answer), "role": "model"},
                "finishReason": _FINISH_REASONS[choice.finish_reason],
                "index": choice.index,
            }
            if choice.logprobs is not None:
                candidate["avgLogprobs"] = _average_logprob(choice)
                candidate["logprobsResult"] = _logprobs_result(choice, 0, None)
            candidates.append(candidate)
        return _encode(_response(ctx, candidates, _usage(answer)))

    def stream(self, answer: Answer, ctx: ReplyContext, spec: AnswerSpec) -> StreamFrames:
        frames = StreamFrames()
        if answer.prompt_blocked:
            frames.tail.append(_frame(_blocked_response(answer, ctx)))
            return frames
        # Chunks before the last carry the prompt's usage only, as Gemini's do.
        prompt_usage = {
            "promptTokenCount": answer.prompt_tokens,
            "totalTokenCount": answer.prompt_tokens,
            "promptTokensDetails": _modality(answer.prompt_tokens),
        }
        closing = b"".join(
            (
                b'}],"usageMetadata":',
                _encode(prompt_usage),
                b',"modelVersion":',
                _encode(ctx.model),
                b',"responseId":',
                _encode(_response_id(ctx)),
                b"}" + _END,
            )
        )
        per_choice = [_content_frames(choice, answer, closing) for choice in answer.choices]
        frames.steps = [[f for f in step if f is not None] for step in zip_longest(*per_choice)]
        last = [
            {
                "content": {"parts": [{"text": ""}], "role": "model"},
                "finishReason": _FINISH_REASONS[choice.finish_reason],
                "index": choice.index,
            }
            for choice in answer.choices
        ]
        frames.tail.append(_frame(_response(ctx, last, _usage(answer))))
        return frames

    def malformed_body(self) -> bytes:
        return b'{"candidates": [{"content": {"parts": [{"text": '

    def malformed_frame(self) -> bytes:
        return b'data: {"candidates": [{"content": ' + _END


def _response(ctx: ReplyContext, candidates: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "candidates": candidates,
        "usageMetadata": usage,
        "modelVersion": ctx.model,
        "responseId": _response_id(ctx),
    }


def _blocked_response(answer: Answer, ctx: ReplyContext) -> dict[str, Any]:
    return {
        "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _BLOCKED_RATINGS},
        "usageMetadata": _usage(answer),
        "modelVersion": ctx.model,
        "responseId": _response_id(ctx),
    }


def _response_id(ctx: ReplyContext) -> str:
    return ctx.response_id.removeprefix("chatcmpl-")


def _parts(choice: PlannedChoice, answer: Answer) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if choice.reasoning:
        parts.append({"text": "".join(choice.reasoning), "thought": True})
    parts.extend(_function_call_parts(choice, answer))
    if choice.tokens:
        parts.append({"text": "".join(choice.tokens)})
    return parts


def _function_call_parts(choice: PlannedChoice, answer: Answer) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [
        {"functionCall": {"name": call.name, "args": _decode(call.arguments)}} for call in choice.tool_calls
    ]
    if parts and answer.reasoning_tokens:
        # A thinking model signs its first function call; clients send the signature back with it.
        parts[0]["thoughtSignature"] = _signature(choice)
    return parts


def _content_frames(choice: PlannedChoice, answer: Answer, closing: bytes) -> list[bytes]:
    """The chunks that carry this choice's content: one per thought or text token, one per function call.

    ``closing`` ends a chunk after its candidate's fields; everything else is spliced around the part."""
    opening = b'data: {"candidates":[{"content":{"parts":['
    tail = b'],"role":"model"},"index":%d' % choice.index + closing
    frames = [opening + _encode({"text": token, "thought": True}) + tail for token in choice.reasoning]
    frames.extend(opening + _encode(part) + tail for part in _function_call_parts(choice, answer))
    if choice.logprobs is None:
        # Text is most of what the simulator streams: splice each token into fixed bytes.
        before = opening + b'{"text":'
        frames.extend(before + _encode(token) + b"}" + tail for token in choice.tokens)
    else:
        content_end = b'],"role":"model"},"index":%d,"logprobsResult":' % choice.index
        frames.extend(
            opening
            + _encode({"text": token})
            + content_end
            + _encode(_logprobs_result(choice, k, k + 1))
            + closing
            for k, token in enumerate(choice.tokens)
        )
    return frames


def _usage(answer: Answer) -> dict[str, Any]:
    thoughts = answer.reasoning_tokens
    usage: dict[str, Any] = {
        "promptTokenCount": answer.prompt_tokens,
        "candidatesTokenCount": answer.completion_tokens - thoughts,
        "totalTokenCount": answer.total_tokens,
        "promptTokensDetails": _modality(answer.prompt_tokens),
    }
    if answer.prompt_blocked:
        del usage["candidatesTokenCount"]
    if answer.cached_tokens:
        usage["cachedContentTokenCount"] = answer.cached_tokens
        usage["cacheTokensDetails"] = _modality(answer.cached_tokens)
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _modality(count: int) -> list[dict[str, Any]]:
    return [{"modality": "TEXT", "tokenCount": count}]


def _logprobs_result(choice: PlannedChoice, start: int, end: int | None) -> dict[str, Any]:
    assert choice.logprobs is not None
    entries = choice.logprobs[start:end]
    return {
        "topCandidates": [
            {"candidates": [{"token": t, "logProbability": lp} for t, lp in alternatives]}
            for _, _, alternatives in entries
        ],
        "chosenCandidates": [{"token": token, "logProbability": logprob} for token, logprob, _ in entries],
    }


def _average_logprob(choice: PlannedChoice) -> float:
    assert choice.logprobs is not None
    if not choice.logprobs:
        return 0.0
    return sum(logprob for _, logprob, _ in choice.logprobs) / len(choice.logprobs)


def _signature(choice: PlannedChoice) -> str:
    digest = hashlib.sha256("".join(call.arguments for call in choice.tool_calls).encode()).digest()
    return base64.b64encode(b"tokenmux-sim" + digest).decode()


def _frame(document: dict[str, Any]) -> bytes:
    return b"data: " + _encode(document) + _END
