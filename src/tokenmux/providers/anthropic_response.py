"""Anthropic Messages answers, whole or streamed -> the hub shape, for the ``anthropic`` adapter.

Text becomes ``content``, tool uses ``tool_calls``, thinking ``reasoning`` plus the raw blocks under
``reasoning_blocks`` (signatures intact, so the next turn can send them back); streams use the delta keys
described in ``protocols/anthropic_messages.py``. Usage follows OpenAI's convention: ``prompt_tokens``
includes the tokens read from and written to the prompt cache, which Anthropic counts apart.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from tokenmux.catalog.model import Endpoint
from tokenmux.types import ChatResponse, StreamEvent, Usage

_encode = msgspec.json.Encoder().encode

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def parse_usage(raw: dict[str, Any]) -> Usage:
    """Anthropic's usage in OpenAI's convention: the prompt is input plus cache reads plus cache writes."""
    read = _int(raw.get("cache_read_input_tokens"))
    written = _int(raw.get("cache_creation_input_tokens"))
    creation = raw.get("cache_creation")
    if isinstance(creation, dict):
        write_5m = _int(creation.get("ephemeral_5m_input_tokens"))
        write_1h = _int(creation.get("ephemeral_1h_input_tokens"))
    else:
        write_5m = write_1h = 0
    if written and not write_5m + write_1h:
        write_5m = written  # no breakdown: the default cache lifetime is five minutes
    details = raw.get("output_tokens_details")
    return Usage(
        prompt_tokens=_int(raw.get("input_tokens")) + read + written,
        completion_tokens=_int(raw.get("output_tokens")),
        cached_tokens=read,
        cache_write_5m_tokens=write_5m,
        cache_write_1h_tokens=write_1h,
        reasoning_tokens=_int(details.get("thinking_tokens")) if isinstance(details, dict) else 0,
    )


def decode_message(data: dict[str, Any], endpoint: Endpoint, json_tool: str | None = None) -> ChatResponse:
    texts: list[str] = []
    thoughts: list[str] = []
    reasoning_blocks: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    answered_by_json_tool = False
    for block in data["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(block["text"])
        elif kind == "thinking":
            thoughts.append(block.get("thinking") or "")
            reasoning_blocks.append(block)
        elif kind == "redacted_thinking":
            reasoning_blocks.append(block)
        elif kind == "tool_use":
            if json_tool is not None and block.get("name") == json_tool:
                texts.append(_encode(block.get("input") or {}).decode())
                answered_by_json_tool = True
                continue
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {
                        "name": block["name"],
                        "arguments": _encode(block.get("input") or {}).decode(),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if reasoning_blocks:
        message["reasoning"] = "".join(thoughts)
        message["reasoning_blocks"] = reasoning_blocks
    stop = data.get("stop_reason")
    finish_reason = FINISH_REASONS.get(stop or "end_turn", "stop")
    if answered_by_json_tool and not calls:
        finish_reason = "stop"
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "finish_reason": finish_reason,
        "logprobs": None,
    }
    if stop == "stop_sequence" and data.get("stop_sequence") is not None:
        choice["stop_sequence"] = data["stop_sequence"]
    usage = data.get("usage")
    return ChatResponse(
        id=str(data.get("id") or ""),
        created=int(time.time()),
        model=str(data.get("model") or endpoint.upstream_model),
        choices=[choice],
        usage=parse_usage(usage) if isinstance(usage, dict) else None,
    )


class StreamReader:
    """Anthropic's stream events -> hub stream events, one event at a time.

    Anthropic numbers content blocks across kinds (thinking 0, text 1, tool_use 2); OpenAI numbers tool
    calls among themselves, so tool blocks are renumbered 0, 1, ... in the order they start.
    """

    __slots__ = (
        "_json_blocks",
        "_only_json",
        "_tools",
        "_usage",
        "finished",
        "json_tool",
        "started",
        "stopped",
    )

    def __init__(self, json_tool: str | None) -> None:
        self.json_tool = json_tool
        self.started = False  # output was yielded: a failure now interrupts rather than falls back
        self.finished = False  # the stop reason arrived
        self.stopped = False  # message_stop arrived
        self._tools: dict[int, int] = {}  # block index -> OpenAI tool call index
        self._json_blocks: set[int] = set()  # blocks of the forced JSON tool: their input is the text
        self._only_json = True
        self._usage: dict[str, Any] = {}

    def read(self, data: dict[str, Any]) -> list[StreamEvent]:
        kind = data.get("type")
        if kind == "content_block_delta":
            return self._delta(data["index"], data["delta"])
        if kind == "content_block_start":
            return self._block_start(data["index"], data["content_block"])
        if kind == "message_start":
            message = data["message"]
            self._usage.update(message.get("usage") or {})
            return [StreamEvent(delta={"role": "assistant", "content": ""}, id=message.get("id"))]
        if kind == "message_delta":
            return self._message_delta(data)
        if kind == "message_stop":
            self.stopped = True
        return []  # content_block_stop, ping, and event types added after this was written

    def _output(self, delta: dict[str, Any]) -> list[StreamEvent]:
        self.started = True
        return [StreamEvent(delta=delta)]

    def _block_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        kind = block.get("type")
        if kind == "tool_use":
            if self.json_tool is not None and block.get("name") == self.json_tool:
                self._json_blocks.add(index)
                return []
            self._only_json = False
            position = self._tools[index] = len(self._tools)
            call = {
                "index": position,
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": ""},
            }
            return self._output({"tool_calls": [call]})
        if kind == "text" and block.get("text"):
            return self._output({"content": block["text"]})
        if kind == "thinking" and block.get("thinking"):
            return self._output({"reasoning": block["thinking"]})
        if kind == "redacted_thinking":
            return [StreamEvent(delta={"reasoning_redacted": block["data"]})]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[StreamEvent]:
        kind = delta.get("type")
        if kind == "text_delta":
            return self._output({"content": delta["text"]}) if delta["text"] else []
        if kind == "input_json_delta":
            partial = delta["partial_json"]
            if not partial:
                return []
            if index in self._json_blocks:
                return self._output({"content": partial})
            call = {"index": self._tools[index], "function": {"arguments": partial}}
            return self._output({"tool_calls": [call]})
        if kind == "thinking_delta":
            return self._output({"reasoning": delta["thinking"]}) if delta["thinking"] else []
        if kind == "signature_delta":
            return [StreamEvent(delta={"reasoning_signature": delta["signature"]})]
        return []  # citations_delta and later kinds carry nothing the hub shape has

    def _message_delta(self, data: dict[str, Any]) -> list[StreamEvent]:
        delta = data.get("delta") or {}
        events = []
        stop = delta.get("stop_reason")
        if stop is not None:
            self.finished = True
            finish_reason = FINISH_REASONS.get(stop, "stop")
            if self._json_blocks and self._only_json:
                finish_reason = "stop"
            sequence = delta.get("stop_sequence")
            events.append(
                StreamEvent(
                    delta={"stop_sequence": sequence} if stop == "stop_sequence" and sequence else None,
                    finish_reason=finish_reason,
                )
            )
        usage = data.get("usage")
        if isinstance(usage, dict):
            # Counts on message_delta are cumulative; ones it leaves out keep their message_start value.
            self._usage.update({k: v for k, v in usage.items() if v is not None})
            events.append(StreamEvent(usage=parse_usage(self._usage)))
        return events


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) else 0
