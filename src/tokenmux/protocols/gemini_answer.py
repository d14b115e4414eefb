"""The answer in the Gemini API's shape: a ``GenerateContentResponse``, whole or as its server-sent stream.

The answer arrives in the hub shape (OpenAI Chat choices and deltas). One candidate, ``candidates[0]``:

    hub                                     Gemini
    reasoning                               a {"text", "thought": true} part, when the request asked
                                            for thoughts (thinkingConfig.includeThoughts)
    content (and a refusal)                 a {"text"} part
    tool_calls                              {"functionCall": {"id", "name", "args"}} parts (the call's
                                            id kept, so a functionResponse can answer it), with the
                                            thought signature of a Gemini answer
    finish_reason                           finishReason (``gemini_mappings``)
    usage                                   usageMetadata, plus the request's ``cost`` in USD

``modelVersion`` is the catalog model's id, ``responseId`` the generation id (also in ``X-Generation-Id``).
A stream is a ``data:`` frame per piece of text or thought as it arrives; function calls, whose arguments
arrive in pieces from some providers, go whole in the last frame with the finish reason and the usage
(Gemini too sends each call whole). A stream that breaks ends with a frame holding only ``{"error": ...}``,
which the SDKs raise.
"""

from __future__ import annotations

from typing import Any

from tokenmux.catalog.model import Catalog, Model
from tokenmux.errors import TokenmuxError
from tokenmux.json_codec import encode_json
from tokenmux.protocols.gemini_mappings import (
    function_call_part,
    gemini_finish_reason,
    status_name,
    usage_metadata,
)
from tokenmux.protocols.responses_answer import text_of
from tokenmux.types import ChatResponse, StreamEvent, Usage

GENERATION_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]
_FRAME_END = b"\r\n\r\n"
_FRAME_HEAD = b'data: {"candidates":[{"content":{"parts":['


def encode_error(err: TokenmuxError) -> bytes:
    """``{"error": {"code", "message", "status"}}``, as Gemini answers (``error`` must come first: the
    SDKs recognise an error chunk of a stream by its opening bytes)."""
    return encode_json(
        {"error": {"code": err.status, "message": err.message, "status": status_name(err.status)}}
    )


def candidate_parts(message: dict[str, Any], include_thoughts: bool) -> list[dict[str, Any]]:
    """An assistant hub message as a candidate's parts: thoughts, text, function calls."""
    parts: list[dict[str, Any]] = []
    reasoning = message.get("reasoning")
    if include_thoughts and isinstance(reasoning, str) and reasoning:
        parts.append({"text": reasoning, "thought": True})
    text = text_of(message.get("content")) + (message.get("refusal") or "")
    if text:
        parts.append({"text": text})
    parts.extend(
        function_call_part(call) for call in message.get("tool_calls") or () if isinstance(call, dict)
    )
    return parts or [{"text": ""}]


def _usage_json(usage: Usage, cost: float) -> dict[str, Any]:
    return {**usage_metadata(usage), "cost": cost}


def _logprobs_result(logprobs: Any) -> dict[str, Any] | None:
    """OpenAI-shaped log-probabilities as Gemini's ``logprobsResult``."""
    content = logprobs.get("content") if isinstance(logprobs, dict) else None
    if not content:
        return None
    chosen = []
    top = []
    for entry in content:
        chosen.append({"token": entry.get("token", ""), "logProbability": entry.get("logprob", 0.0)})
        top.append(
            {
                "candidates": [
                    {"token": alt.get("token", ""), "logProbability": alt.get("logprob", 0.0)}
                    for alt in entry.get("top_logprobs") or ()
                ]
            }
        )
    return {"chosenCandidates": chosen, "topCandidates": top}


def encode_response(
    response: ChatResponse,
    *,
    response_id: str,
    model: str,
    provider: str,
    usage: Usage,
    cost: float,
    include_thoughts: bool,
) -> bytes:
    choice = response.choices[0] if response.choices else {}
    candidate: dict[str, Any] = {
        "content": {"role": "model", "parts": candidate_parts(choice.get("message") or {}, include_thoughts)},
        "finishReason": gemini_finish_reason(choice.get("finish_reason")),
        "index": 0,
    }
    logprobs = _logprobs_result(choice.get("logprobs"))
    if logprobs is not None:
        candidate["logprobsResult"] = logprobs
    return encode_json(
        {
            "candidates": [candidate],
            "usageMetadata": _usage_json(usage, cost),
            "modelVersion": model,
            "responseId": response_id,
            "provider": provider,
        }
    )


class GeminiStreamEncoder:
    """Turns the hub's stream events into Gemini's stream frames (the attempt loop's ``StreamEncoder``)."""

    __slots__ = ("_calls", "_ids", "_include_thoughts", "_provider", "_tail")

    def __init__(self, response_id: str, model: str, provider: str, include_thoughts: bool) -> None:
        self._include_thoughts = include_thoughts
        self._ids = {"modelVersion": model, "responseId": response_id}
        self._provider = provider
        # The most frequent frame, a piece of text, is built from constant bytes around the part.
        self._tail = b'],"role":"model"},"index":0}],"modelVersion":%s,"responseId":%s}\r\n\r\n' % (
            encode_json(model),
            encode_json(response_id),
        )
        self._calls: dict[int, dict[str, Any]] = {}  # hub tool call index -> the call so far

    def event(self, ev: StreamEvent) -> bytes:
        delta = ev.delta
        if not delta:
            return b""
        out: list[bytes] = []
        reasoning = delta.get("reasoning")
        if reasoning and self._include_thoughts:
            out.append(self._frame(b'{"text":%s,"thought":true}' % encode_json(reasoning)))
        text = (delta.get("content") or "") + (delta.get("refusal") or "")
        if text:
            out.append(self._frame(b'{"text":%s}' % encode_json(text)))
        for call in delta.get("tool_calls") or ():
            self._tool_call(call)
        return b"".join(out)

    def finish(self, usage: Usage, cost: float, finish_reason: str | None) -> bytes:
        parts = [function_call_part(self._calls[i]) for i in sorted(self._calls)] or [{"text": ""}]
        frame = {
            "candidates": [
                {
                    "content": {"parts": parts, "role": "model"},
                    "finishReason": gemini_finish_reason(finish_reason),
                    "index": 0,
                }
            ],
            "usageMetadata": _usage_json(usage, cost),
            **self._ids,
            "provider": self._provider,
        }
        return b"data: " + encode_json(frame) + _FRAME_END

    def error(self, err: TokenmuxError) -> bytes:
        return b"data: " + encode_error(err) + _FRAME_END

    def _frame(self, part: bytes) -> bytes:
        return _FRAME_HEAD + part + self._tail

    def _tool_call(self, call: dict[str, Any]) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        held = self._calls.get(index)
        if held is None:
            held = self._calls[index] = {"id": call.get("id"), "function": {"name": "", "arguments": ""}}
        if call.get("id"):
            held["id"] = call["id"]
        if function.get("name"):
            held["function"]["name"] = function["name"]
        if function.get("arguments"):
            held["function"]["arguments"] += function["arguments"]
        if call.get("extra_content") is not None:
            held["extra_content"] = call["extra_content"]


# --- models -----------------------------------------------------------------------------------------


def model_object(model: Model) -> dict[str, Any]:
    """One catalog model as a Gemini ``Model``; its name holds the catalog id, slash and all."""
    return {
        "name": f"models/{model.id}",
        "baseModelId": model.id,
        "version": model.created or "001",
        "displayName": model.name,
        "description": model.description,
        "inputTokenLimit": model.context_length,
        "outputTokenLimit": model.max_output,
        "supportedGenerationMethods": GENERATION_METHODS,
        "thinking": "reasoning" in model.supported_parameters
        or "reasoning_effort" in model.supported_parameters,
    }


def models_json(catalog: Catalog) -> bytes:
    """``GET /api/gemini/v1beta/models``: every chat model, newest first, in one page."""
    models = sorted(
        (m for m in catalog.models.values() if not m.embedding), key=lambda m: (m.created, m.id), reverse=True
    )
    return encode_json({"models": [model_object(m) for m in models]})


def count_json(tokens: int) -> bytes:
    return encode_json({"totalTokens": tokens})
