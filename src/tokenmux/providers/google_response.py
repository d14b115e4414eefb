"""Gemini answers (``GenerateContentResponse``) back into the hub shape, whole or chunk by chunk.

Candidates become choices: text parts the message's ``content``, thought parts (``"thought": true``) its
``reasoning``, ``functionCall`` parts its ``tool_calls`` (arguments as JSON text; the call's ``id``, or a
stable ``call_<hex>`` made from the response id, candidate, position, name and arguments when Gemini gave
none; a thought signature under ``extra_content.google``). ``finishReason`` STOP is ``stop`` (``tool_calls``
when the candidate called functions), MAX_TOKENS ``length``, and the safety family ``content_filter``.

Usage follows OpenAI's convention: ``completion_tokens`` is ``candidatesTokenCount`` plus
``thoughtsTokenCount``; ``prompt_tokens`` includes the cached tokens (as ``promptTokenCount`` does) and
the prompt tokens of tool use.

A prompt refused by the safety filter (``promptFeedback.blockReason``, no candidates) raises
``ProviderRejected`` with status 400: that prompt fails the same way everywhere Gemini serves it.
"""

from __future__ import annotations

import time
from typing import Any

from tokenmux.errors import ProviderRejected
from tokenmux.protocols.gemini_mappings import hub_finish_reason, hub_tool_call, hub_usage
from tokenmux.types import ChatResponse, StreamEvent


def decode_response(data: dict[str, Any], upstream_model: str) -> ChatResponse:
    """A whole ``GenerateContentResponse``; raises ``ProviderRejected`` for a blocked prompt and
    ``KeyError``/``TypeError``/``ValueError`` for one of an unexpected shape (the adapter maps those)."""
    candidates = data.get("candidates")
    if not candidates:
        raise_if_blocked(data)
        raise ValueError("the answer has no candidates")
    response_id = str(data.get("responseId") or "")
    choices = []
    for position, candidate in enumerate(candidates):
        index = candidate.get("index", position)
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[dict[str, Any]] = []
        for part in _parts(candidate):
            if "functionCall" in part:
                calls.append(hub_tool_call(part, response_id, index, len(calls)))
            elif isinstance(part.get("text"), str):
                (thoughts if part.get("thought") else texts).append(part["text"])
        text = "".join(texts)
        message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None}
        if calls:
            message["tool_calls"] = calls
        if thoughts:
            message["reasoning"] = "".join(thoughts)
        choices.append(
            {
                "index": index,
                "message": message,
                "finish_reason": hub_finish_reason(candidate.get("finishReason"), bool(calls)),
                "logprobs": logprobs(candidate.get("logprobsResult")),
            }
        )
    usage = data.get("usageMetadata")
    return ChatResponse(
        id=response_id,
        created=int(time.time()),
        model=str(data.get("modelVersion") or upstream_model),
        choices=choices,
        usage=hub_usage(usage) if isinstance(usage, dict) else None,
    )


def raise_if_blocked(data: dict[str, Any]) -> None:
    feedback = data.get("promptFeedback")
    reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
    if reason:
        raise ProviderRejected(
            f"the provider blocked the prompt: {reason}; rephrase it, or route to another provider",
            upstream_status=400,
            upstream_type="prompt_blocked",
        )


def logprobs(result: Any) -> dict[str, Any] | None:
    """``logprobsResult`` in OpenAI's shape: one entry per chosen token with its top alternatives."""
    if not isinstance(result, dict):
        return None
    chosen = result.get("chosenCandidates") or []
    tops = result.get("topCandidates") or []
    content = []
    for k, token in enumerate(chosen):
        alternatives = (tops[k].get("candidates") or []) if k < len(tops) else []
        content.append(
            {
                **_token_logprob(token),
                "top_logprobs": [_token_logprob(a) for a in alternatives],
            }
        )
    return {"content": content, "refusal": None}


def _token_logprob(entry: dict[str, Any]) -> dict[str, Any]:
    token = str(entry.get("token") or "")
    return {
        "token": token,
        "logprob": float(entry.get("logProbability") or 0.0),
        "bytes": list(token.encode()),
    }


def _parts(candidate: dict[str, Any]) -> list[dict[str, Any]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    return parts if isinstance(parts, list) else []


class StreamReader:
    """Turns the chunks of one ``streamGenerateContent`` stream into ``StreamEvent`` values.

    Every chunk is a whole ``GenerateContentResponse``: text and thoughts arrive as deltas, a function
    call whole (one ``tool_calls`` delta carrying id, name and all arguments), the finish reason with the
    candidate's last chunk. Each chunk repeats the usage so far; the last one read is the total, given
    out by ``usage_event`` once the stream has ended."""

    __slots__ = ("_calls", "_finished", "_seen", "_usage", "started")

    def __init__(self) -> None:
        self.started = False  # output (content or a finish) was given out
        self._usage: dict[str, Any] | None = None  # the last usageMetadata, read once at the end
        self._calls: dict[int, int] = {}  # candidate index -> function calls so far
        self._seen: set[int] = set()
        self._finished: set[int] = set()

    @property
    def finished(self) -> bool:
        """Every candidate that began has finished."""
        return bool(self._seen) and self._seen <= self._finished

    def read(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        usage = chunk.get("usageMetadata")
        if isinstance(usage, dict):
            self._usage = usage
        candidates = chunk.get("candidates")
        if not candidates:
            raise_if_blocked(chunk)
            return []
        response_id = chunk.get("responseId") or None
        events: list[StreamEvent] = []
        for position, candidate in enumerate(candidates):
            index = candidate.get("index", position)
            if index not in self._seen:
                self._seen.add(index)
                # OpenAI streams open each choice with the role; clients' accumulators expect it.
                events.append(
                    StreamEvent(delta={"role": "assistant", "content": ""}, index=index, id=response_id)
                )
            chunk_logprobs = logprobs(candidate.get("logprobsResult"))
            for part in _parts(candidate):
                delta = self._delta(part, response_id or "", index)
                if delta is not None:
                    events.append(
                        StreamEvent(delta=delta, index=index, logprobs=chunk_logprobs, id=response_id)
                    )
                    chunk_logprobs = None  # a chunk's log-probabilities go with its first delta
            reason = candidate.get("finishReason")
            if reason:
                self._finished.add(index)
                called = self._calls.get(index, 0) > 0
                events.append(
                    StreamEvent(index=index, finish_reason=hub_finish_reason(reason, called), id=response_id)
                )
        if not self.started:
            self.started = any(event.finish_reason or event.has_content for event in events)
        return events

    def usage_event(self) -> StreamEvent | None:
        return StreamEvent(usage=hub_usage(self._usage)) if self._usage is not None else None

    def _delta(self, part: dict[str, Any], response_id: str, index: int) -> dict[str, Any] | None:
        if "functionCall" in part:
            position = self._calls.get(index, 0)
            self._calls[index] = position + 1
            call = hub_tool_call(part, response_id, index, position)
            return {"tool_calls": [{"index": position, **call}]}
        text = part.get("text")
        if not isinstance(text, str) or not text:
            return None
        return {"reasoning": text} if part.get("thought") else {"content": text}
