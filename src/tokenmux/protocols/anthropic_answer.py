"""The answer in Anthropic's Messages shape, whole (``message`` JSON) or streamed (its event sequence),
and errors in Anthropic's shape.

The answer arrives in the hub shape (OpenAI Chat choices and deltas; see ``anthropic_messages`` for the
extra keys that carry thinking signatures and stop sequences). Anthropic counts ``input_tokens`` without
the tokens read from or written to the prompt cache; the hub's ``prompt_tokens`` includes them.
"""

from __future__ import annotations

from typing import Any

import msgspec

from tokenmux.errors import TokenmuxError
from tokenmux.json_codec import encode_json
from tokenmux.protocols.sse import encode_event
from tokenmux.types import ChatResponse, StreamEvent, Usage

_decoder = msgspec.json.Decoder()

REASONING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# HTTP status -> Anthropic's error type (https://docs.anthropic.com/en/api/errors).
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# --- responses ----------------------------------------------------------------------------------


def usage_json(usage: Usage, cost: float | None = None) -> dict[str, Any]:
    """Anthropic's usage object: ``input_tokens`` counts only tokens neither read from nor written to the
    cache (OpenAI's ``prompt_tokens`` counts them all)."""
    written = usage.cache_write_5m_tokens + usage.cache_write_1h_tokens
    out: dict[str, Any] = {
        "input_tokens": max(usage.prompt_tokens - usage.cached_tokens - written, 0),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_5m_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        },
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    if cost is not None:
        out["cost"] = cost
    return out


def stop_reason(finish_reason: str | None, stop_sequence: str | None) -> str:
    if stop_sequence is not None and finish_reason in (None, "stop"):
        return "stop_sequence"
    return STOP_REASONS.get(finish_reason or "stop", "end_turn")


def content_blocks(message: dict[str, Any], message_id: str) -> list[dict[str, Any]]:
    """An assistant hub message as Anthropic content blocks: thinking, then text, then tool uses."""
    blocks: list[dict[str, Any]] = []
    reasoning_blocks = message.get("reasoning_blocks")
    if reasoning_blocks:
        blocks.extend(
            b for b in reasoning_blocks if isinstance(b, dict) and b.get("type") in REASONING_BLOCKS
        )
    elif message.get("reasoning"):
        # Reasoning from a provider without signatures: shown as thinking, never valid to send back.
        blocks.append({"type": "thinking", "thinking": message["reasoning"], "signature": ""})
    text = _text_of(message.get("content"))
    if not text and message.get("refusal"):
        text = message["refusal"]
    if text:
        blocks.append({"type": "text", "text": text})
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id") or tool_use_id(message_id, i),
                "name": function.get("name") or "",
                "input": _arguments(function.get("arguments")),
            }
        )
    return blocks


def tool_use_id(message_id: str, index: int) -> str:
    """An id for a tool call the provider sent without one: the client must be able to answer it."""
    return f"toolu_{message_id}_{index}"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text") or p.get("refusal") or ""
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "refusal")
        )
    return ""


def _arguments(arguments: Any) -> dict[str, Any]:
    """Tool arguments as the object Anthropic's tool_use.input must be; unparseable (a cut-off answer)
    becomes an empty object rather than failing the whole response."""
    if isinstance(arguments, dict):
        return arguments
    if isinstance(arguments, str) and arguments:
        try:
            value = _decoder.decode(arguments)
        except msgspec.DecodeError:
            return {}
        if isinstance(value, dict):
            return value
    return {}


def encode_message_response(
    response: ChatResponse, *, message_id: str, model: str, provider: str, usage: Usage, cost: float
) -> bytes:
    choice = response.choices[0] if response.choices else {}
    message = choice.get("message") or {}
    finish_reason = choice.get("finish_reason")
    stop_sequence = choice.get("stop_sequence")
    if message.get("refusal") and not _text_of(message.get("content")):
        finish_reason = "content_filter"
    return encode_json(
        {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content_blocks(message, message_id),
            "stop_reason": stop_reason(finish_reason, stop_sequence),
            "stop_sequence": stop_sequence,
            "usage": usage_json(usage, cost),
            "provider": provider,
        }
    )


# --- streams ------------------------------------------------------------------------------------

_TEXT_DELTA_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_DELTA_MID = b',"delta":{"type":"text_delta","text":'


def _frame(event: str, payload: dict[str, Any]) -> bytes:
    return encode_event(event, encode_json(payload))


class MessagesStreamEncoder:
    """Turns the hub's stream events into Anthropic's event sequence (the attempt loop's ``StreamEncoder``).

    Anthropic's stream is a series of typed content blocks, each opened, filled with deltas and closed;
    OpenAI's is one delta per step that may mix kinds. So a block opens when a kind of output starts
    (thinking, text, one tool call) and closes when another starts or the answer ends.
    """

    __slots__ = (
        "_block",
        "_input_tokens",
        "_kind",
        "_message_id",
        "_model",
        "_next_block",
        "_provider",
        "_started",
        "_stop_sequence",
        "_tool_blocks",
    )

    def __init__(self, message_id: str, model: str, provider: str, input_tokens_estimate: int) -> None:
        self._message_id = message_id
        self._model = model
        self._provider = provider
        self._input_tokens = input_tokens_estimate
        self._started = False
        self._kind: str | None = None  # kind of the open block: "thinking" | "text" | "tool"; None: none open
        self._block = -1  # index of the open block
        self._next_block = 0
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool call index -> block index
        self._stop_sequence: str | None = None

    # The StreamEncoder protocol.

    def event(self, ev: StreamEvent) -> bytes:
        out: list[bytes] = []
        if not self._started:
            out.append(self._message_start())
        delta = ev.delta
        if delta:
            reasoning = delta.get("reasoning")
            if reasoning:
                self._open(out, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
                out.append(self._delta({"type": "thinking_delta", "thinking": reasoning}))
            signature = delta.get("reasoning_signature")
            if signature:
                if self._kind != "thinking":
                    self._open(out, "thinking", {"type": "thinking", "thinking": "", "signature": ""})
                out.append(self._delta({"type": "signature_delta", "signature": signature}))
                self._close(out)  # a signature ends its block: more thinking is a new, separately signed one
            redacted = delta.get("reasoning_redacted")
            if redacted:
                self._open(out, "redacted", {"type": "redacted_thinking", "data": redacted})
                self._close(out)
            text = delta.get("content") or delta.get("refusal")
            if text:
                self._open(out, "text", {"type": "text", "text": ""})
                out.append(self._text_delta(text))
            for call in delta.get("tool_calls") or ():
                self._tool_call(out, call)
            if delta.get("stop_sequence"):
                self._stop_sequence = delta["stop_sequence"]
        return b"".join(out)

    def finish(self, usage: Usage, cost: float, finish_reason: str | None) -> bytes:
        out: list[bytes] = []
        if not self._started:
            out.append(self._message_start())
        self._close(out)
        out.append(
            _frame(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": stop_reason(finish_reason, self._stop_sequence),
                        "stop_sequence": self._stop_sequence,
                    },
                    "usage": usage_json(usage, cost),
                },
            )
        )
        out.append(_MESSAGE_STOP)
        return b"".join(out)

    def error(self, err: TokenmuxError) -> bytes:
        """The event that ends a stream that broke; the official SDKs raise an APIError on it."""
        return _frame("error", _error_body(err))

    # Blocks.

    def _message_start(self) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": self._message_id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
            "provider": self._provider,
        }
        return _frame("message_start", {"type": "message_start", "message": message}) + _PING

    def _open(self, out: list[bytes], kind: str, block: dict[str, Any]) -> None:
        if self._kind == kind and kind != "tool":
            return
        self._close(out)
        self._kind = kind
        self._block = self._next_block
        self._next_block += 1
        out.append(
            _frame(
                "content_block_start",
                {"type": "content_block_start", "index": self._block, "content_block": block},
            )
        )

    def _close(self, out: list[bytes]) -> None:
        if self._kind is None:
            return
        out.append(_frame("content_block_stop", {"type": "content_block_stop", "index": self._block}))
        self._kind = None

    def _tool_call(self, out: list[bytes], call: dict[str, Any]) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        block = self._tool_blocks.get(index)
        if block is None:
            block_json: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or tool_use_id(self._message_id, index),
                "name": function.get("name") or "",
                "input": {},
            }
            self._open(out, "tool", block_json)
            block = self._tool_blocks[index] = self._block
        arguments = function.get("arguments")
        if arguments:
            out.append(
                _frame(
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": block,
                        "delta": {"type": "input_json_delta", "partial_json": arguments},
                    },
                )
            )

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return _frame(
            "content_block_delta", {"type": "content_block_delta", "index": self._block, "delta": delta}
        )

    def _text_delta(self, text: str) -> bytes:
        # The most frequent frame of a stream: built from constant bytes, only the text is encoded.
        return b"%s%d%s%s}}\n\n" % (_TEXT_DELTA_HEAD, self._block, _TEXT_DELTA_MID, encode_json(text))


_PING = encode_event("ping", b'{"type":"ping"}')
_MESSAGE_STOP = encode_event("message_stop", b'{"type":"message_stop"}')


# --- errors and the model list ------------------------------------------------------------------


def error_type(status: int) -> str:
    known = ERROR_TYPES.get(status)
    if known is not None:
        return known
    return "invalid_request_error" if status < 500 else "api_error"


def _error_body(err: TokenmuxError) -> dict[str, Any]:
    error: dict[str, Any] = {"type": error_type(err.status), "message": err.message}
    if err.metadata is not None:
        error["metadata"] = err.metadata  # e.g. a 502's attempts: which provider failed how
    return {"type": "error", "error": error}


def encode_error(err: TokenmuxError) -> bytes:
    """``{"type": "error", "error": {"type", "message"}}`` with Anthropic's error type for the status."""
    return encode_json(_error_body(err))
