"""The Anthropic Messages API as a simulated provider speaks it (``POST /anthropic/v1/messages``).

An answer is a list of content blocks: a ``thinking`` block (with a made-up signature; its text empty
when the request asked for display "omitted") when the request enabled thinking, then ``tool_use`` blocks or one ``text`` block. A stream is Anthropic's event sequence:
``message_start``, ``ping``, per block ``content_block_start`` / ``content_block_delta`` /
``content_block_stop``, then ``message_delta`` (stop reason and usage) and ``message_stop``. Usage counts
prompt tokens Anthropic's way: ``input_tokens`` excludes the tokens read from and written to the cache.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import msgspec

from tokenmux.asgi import Scope, header
from tokenmux.simulator.answer import Answer, AnswerSpec, PlannedChoice
from tokenmux.simulator.anthropic_request import parse_messages_request
from tokenmux.simulator.wire import ReplyContext, RequestRejected, StreamFrames

_encode = msgspec.json.encode
_decode = msgspec.json.decode

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}

_PING = b'event: ping\ndata: {"type":"ping"}\n\n'
_MESSAGE_STOP = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'


class AnthropicFormat:
    name = "anthropic"
    stream_content_type = b"text/event-stream; charset=utf-8"
    implicit_prompt_cache = False

    # -- requests ---------------------------------------------------------------------------------

    def check_access(self, scope: Scope) -> RequestRejected | None:
        # Anthropic takes the key in x-api-key or as a bearer token (what the newer SDKs send).
        key = header(scope, b"x-api-key")
        if not key or not key.strip():
            scheme, _, key = (header(scope, b"authorization") or b"").partition(b" ")
            if scheme.lower() != b"bearer" or not key.strip():
                return RequestRejected(401, "x-api-key header is required")
        if not header(scope, b"anthropic-version"):
            return RequestRejected(400, "anthropic-version: header is required")
        return None

    def parse(self, body: Any, path_model: str | None) -> AnswerSpec:
        return parse_messages_request(body)

    # -- answers ----------------------------------------------------------------------------------

    def error_body(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> bytes:
        error_type = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return _encode({"type": "error", "error": {"type": error_type, "message": message}})

    def completion(self, answer: Answer, ctx: ReplyContext) -> bytes:
        choice = answer.choices[0]
        document = _message(ctx, _blocks(choice), _usage(answer))
        document["stop_reason"] = _stop_reason(choice)
        document["stop_sequence"] = choice.stop_sequence
        return _encode(document)

    def stream(self, answer: Answer, ctx: ReplyContext, spec: AnswerSpec) -> StreamFrames:
        choice = answer.choices[0]
        usage = _usage(answer)
        start_usage = {**usage, "output_tokens": 1}  # Anthropic reports output so far: about nothing
        frames = StreamFrames(
            head=[
                _event(b"message_start", {"type": "message_start", "message": _message(ctx, [], start_usage)})
            ]
        )
        # Events that close one block and open the next ride with the next content frame, so that every
        # frame counted as a chunk (drop_after_chunks) carries content.
        carry = b""
        index = 0
        if choice.reasoning:
            frames.head.append(_block_start(index, {"type": "thinking", "thinking": "", "signature": ""}))
            if not choice.reasoning_omitted:
                frames.steps.extend(
                    [_delta(index, {"type": "thinking_delta", "thinking": t})] for t in choice.reasoning
                )
            carry = _delta(index, {"type": "signature_delta", "signature": _signature(choice)}) + _block_stop(
                index
            )
            index += 1
        for call in choice.tool_calls:
            block = {"type": "tool_use", "id": _tool_use_id(call.id), "name": call.name, "input": {}}
            frames.steps.append([carry + _block_start(index, block)])
            frames.steps.extend(
                [_delta(index, {"type": "input_json_delta", "partial_json": p})] for p in call.pieces
            )
            carry = _block_stop(index)
            index += 1
        if choice.tokens:
            opening = _block_start(index, {"type": "text", "text": ""})
            if index == 0:
                frames.head.append(opening)
            else:
                carry += opening
            before = (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":'
                % index
            )
            text_frames = [before + _encode(token) + b"}}\n\n" for token in choice.tokens]
            text_frames[0] = carry + text_frames[0]
            frames.steps.extend([f] for f in text_frames)
            carry = _block_stop(index)
        frames.head.append(_PING)
        delta = {"stop_reason": _stop_reason(choice), "stop_sequence": choice.stop_sequence}
        message_delta = {"type": "message_delta", "delta": delta, "usage": _delta_usage(usage)}
        frames.tail.extend((carry, _event(b"message_delta", message_delta), _MESSAGE_STOP))
        return frames

    def malformed_body(self) -> bytes:
        return b'{"id": "msg_broken", "type": "message", "role": "assistant", "content": [{"type": "text", "text": '

    def malformed_frame(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": \n\n'


def _message(ctx: ReplyContext, content: list[dict[str, Any]], usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "msg_" + ctx.response_id.removeprefix("chatcmpl-"),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }


def _stop_reason(choice: PlannedChoice) -> str:
    return "stop_sequence" if choice.stop_sequence is not None else _STOP_REASONS[choice.finish_reason]


def _blocks(choice: PlannedChoice) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if choice.reasoning:
        blocks.append(
            {
                "type": "thinking",
                "thinking": "" if choice.reasoning_omitted else "".join(choice.reasoning),
                "signature": _signature(choice),
            }
        )
    for call in choice.tool_calls:
        blocks.append(
            {
                "type": "tool_use",
                "id": _tool_use_id(call.id),
                "name": call.name,
                "input": _decode(call.arguments),
            }
        )
    if choice.tokens:
        blocks.append({"type": "text", "text": "".join(choice.tokens)})
    return blocks


def _usage(answer: Answer) -> dict[str, Any]:
    written = answer.cache_write_tokens
    one_hour = answer.cache_write_ttl == "1h"
    usage: dict[str, Any] = {
        "input_tokens": answer.prompt_tokens - answer.cached_tokens - written,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": answer.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": 0 if one_hour else written,
            "ephemeral_1h_input_tokens": written if one_hour else 0,
        },
        "output_tokens": answer.completion_tokens,
        "service_tier": "standard",
    }
    if answer.reasoning_tokens:
        usage["output_tokens_details"] = {"thinking_tokens": answer.reasoning_tokens}
    return usage


def _delta_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """A ``message_delta``'s usage: the cumulative counts, without the breakdowns."""
    keys = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
    delta = {key: usage[key] for key in keys}
    if "output_tokens_details" in usage:
        delta["output_tokens_details"] = usage["output_tokens_details"]
    return delta


def _signature(choice: PlannedChoice) -> str:
    """A stand-in for Anthropic's opaque signature: base64, and the same for the same thinking."""
    digest = hashlib.sha256("".join(choice.reasoning).encode()).digest()
    return base64.b64encode(b"tokenmux-sim" + digest * 3).decode()


def _tool_use_id(call_id: str) -> str:
    return "toolu_" + call_id.removeprefix("call_")


def _event(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + _encode(data) + b"\n\n"


def _block_start(index: int, block: dict[str, Any]) -> bytes:
    return _event(
        b"content_block_start", {"type": "content_block_start", "index": index, "content_block": block}
    )


def _delta(index: int, delta: dict[str, Any]) -> bytes:
    return _event(b"content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def _block_stop(index: int) -> bytes:
    return b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n' % index
