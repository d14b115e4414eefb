"""The answer in the OpenAI Responses shape, whole (a Response object) or streamed (its typed events).

The answer arrives in the hub shape (OpenAI Chat choices and deltas; see ``anthropic_messages`` for the
extra delta keys that carry Claude's thinking signatures). A Response lists output items in order:

    hub                                      Response output item
    reasoning (+ signatures, redacted data)  {"type": "reasoning", "summary": [summary_text]}; Claude's
                                             signed blocks ride in ``encrypted_content`` so that a later
                                             request can give them back (``reasoning_blocks_of``)
    content / refusal                        {"type": "message"} with an output_text or refusal part
    tool_calls                               {"type": "function_call", "call_id": the call's id}

A stream is the event sequence the official SDKs accumulate: ``response.created`` and
``response.in_progress``, then per item ``response.output_item.added``, its parts and deltas, their
``.done`` events and ``response.output_item.done``, then ``response.completed`` (or
``response.incomplete`` when the answer was cut by max_output_tokens or a content filter) with the whole
Response. Every event has a ``sequence_number``, counted from 0. A stream that breaks ends with an
``error`` event and ``response.failed``.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from tokenmux.errors import TokenmuxError
from tokenmux.json_codec import encode_json
from tokenmux.protocols.openai_chat import encode_error
from tokenmux.types import ChatResponse, StreamEvent, Usage

__all__ = ["ResponsesStreamEncoder", "encode_error", "encode_response", "reasoning_blocks_of"]

_decode = msgspec.json.Decoder().decode
# Reasoning this gateway wrote into encrypted_content: Claude's thinking blocks, signatures intact. The
# prefix tells them from OpenAI's own encrypted reasoning, which only OpenAI can read.
_ENCRYPTED_PREFIX = "tokenmux.v1."
_REASONING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
# Where an answer from an endpoint that speaks the Responses API itself carries what it sent, to be given
# to the client as it came (``providers/openai_responses``): a whole answer's output items on its choice,
# each stream event on its delta.
NATIVE_OUTPUT = "responses_output"
NATIVE_EVENT = "responses_event"
_LIFECYCLE = frozenset({"response.created", "response.in_progress", "response.queued"})
_FINAL = frozenset({"response.completed", "response.incomplete"})
NAMESPACE_SEPARATOR = "__"
CUSTOM_INPUT = "input"  # the one argument of the function a custom tool becomes
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


@dataclass(frozen=True, slots=True)
class ClientTool:
    """A client tool that Chat Completions knows only as a plain function (see ``openai_responses``)."""

    name: str
    namespace: str | None = None  # a function of a ``namespace`` tool
    custom: bool = False  # a ``custom`` (free-form input) tool: one string argument, ``input``


Renamed = Mapping[str, ClientTool]
_NONE_RENAMED: Renamed = {}


def hub_tool_name(name: str, namespace: str | None) -> str:
    """The function name of a namespaced tool for providers that know no namespaces."""
    return f"{namespace}{NAMESPACE_SEPARATOR}{name}" if namespace else name


def custom_input(arguments: str) -> str:
    """A custom tool's input from the arguments of the function it became (as they are, when a model
    answered something else)."""
    try:
        value = _decode(arguments)
    except msgspec.DecodeError:
        return arguments
    if isinstance(value, dict) and isinstance(value.get(CUSTOM_INPUT), str):
        return value[CUSTOM_INPUT]
    return arguments


def encrypted_reasoning(blocks: list[dict[str, Any]]) -> str:
    return _ENCRYPTED_PREFIX + base64.urlsafe_b64encode(encode_json(blocks)).decode()


def reasoning_blocks_of(encrypted: str) -> list[dict[str, Any]] | None:
    """The thinking blocks an ``encrypted_content`` of ours holds; None for anyone else's (or a damaged
    one, which is then left out like any reasoning a provider cannot take back)."""
    if not encrypted.startswith(_ENCRYPTED_PREFIX):
        return None
    try:
        blocks = _decode(base64.urlsafe_b64decode(encrypted[len(_ENCRYPTED_PREFIX) :]))
    except (binascii.Error, ValueError, msgspec.DecodeError):
        return None
    if not isinstance(blocks, list) or not all(
        isinstance(b, dict) and b.get("type") in _REASONING_BLOCKS for b in blocks
    ):
        return None
    return blocks


def usage_json(usage: Usage, cost: float) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
        "cost": cost,
    }


def response_json(
    response_id: str,
    created_at: int,
    model: str,
    provider: str,
    echo: dict[str, Any],
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    incomplete_reason: str | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "completed_at": int(time.time()) if status == "completed" else None,
        "status": status,
        "model": model,
        "provider": provider,
        "output": output,
        "usage": usage,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        **echo,
    }


def _status_of(finish_reason: str | None) -> tuple[str, str | None]:
    """(Response status, incomplete reason) for how the answer finished."""
    reason = _INCOMPLETE.get(finish_reason or "")
    return ("incomplete", reason) if reason else ("completed", None)


# --- whole answers --------------------------------------------------------------------------------


def message_item(
    item_id: str, text: str | None, refusal: str | None, logprobs: list[Any], status: str
) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if text or not refusal:
        content.append({"type": "output_text", "text": text or "", "annotations": [], "logprobs": logprobs})
    if refusal:
        content.append({"type": "refusal", "refusal": refusal})
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": content}


def function_call_item(
    item_id: str, call: dict[str, Any], status: str, renamed: Renamed = _NONE_RENAMED
) -> dict[str, Any]:
    function = call.get("function") or {}
    arguments = function.get("arguments")
    if not isinstance(arguments, str):
        arguments = encode_json(arguments or {}).decode()
    name = function.get("name") or ""
    tool = renamed.get(name)
    call_id = call.get("id") or item_id
    if tool is not None and tool.custom:
        return {
            "id": item_id,
            "type": "custom_tool_call",
            "status": status,
            "call_id": call_id,
            "name": tool.name,
            "input": custom_input(arguments),
        }
    item: dict[str, Any] = {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": tool.name if tool is not None else name,
        "arguments": arguments,
    }
    if tool is not None and tool.namespace:
        item["namespace"] = tool.namespace
    if call.get("extra_content") is not None:
        item["extra_content"] = call["extra_content"]  # Gemini's thought signature, to be given back
    return item


def reasoning_item(item_id: str, text: str, blocks: list[dict[str, Any]]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if blocks:
        item["encrypted_content"] = encrypted_reasoning(blocks)
    return item


def output_items(
    message: dict[str, Any], logprobs: Any, response_id: str, status: str, renamed: Renamed = _NONE_RENAMED
) -> list[dict[str, Any]]:
    """An assistant hub message as Response output items: reasoning, then the message, then calls."""
    items: list[dict[str, Any]] = []
    blocks = [
        b
        for b in message.get("reasoning_blocks") or ()
        if isinstance(b, dict) and b.get("type") in _REASONING_BLOCKS
    ]
    reasoning = message.get("reasoning")
    if reasoning or blocks:
        items.append(
            reasoning_item(f"rs_{response_id}", reasoning if isinstance(reasoning, str) else "", blocks)
        )
    text = text_of(message.get("content"))
    refusal = message.get("refusal") if isinstance(message.get("refusal"), str) else None
    calls = message.get("tool_calls") or ()
    if text or refusal or not calls:
        content_logprobs = logprobs.get("content") if isinstance(logprobs, dict) else None
        items.append(message_item(f"msg_{response_id}", text, refusal, content_logprobs or [], status))
    for i, call in enumerate(calls):
        if isinstance(call, dict):
            items.append(function_call_item(f"fc_{response_id}_{i}", call, "completed", renamed))
    return items


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text") or "" for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def encode_response(
    response: ChatResponse,
    *,
    response_id: str,
    created_at: int,
    model: str,
    provider: str,
    echo: dict[str, Any],
    usage: Usage,
    cost: float,
    renamed: Renamed = _NONE_RENAMED,
) -> bytes:
    choice = response.choices[0] if response.choices else {}
    status, reason = _status_of(choice.get("finish_reason"))
    message = choice.get("message") or {}
    native = choice.get(NATIVE_OUTPUT)
    if isinstance(native, list):
        output = native
    else:
        output = output_items(message, choice.get("logprobs"), response_id, status, renamed)
    body = response_json(
        response_id,
        created_at,
        model,
        provider,
        echo,
        status=status,
        output=output,
        usage=usage_json(usage, cost),
        incomplete_reason=reason,
    )
    return encode_json(body)


# --- streams --------------------------------------------------------------------------------------

_TEXT_DELTA_HEAD = (
    b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
)


class _Item:
    """One output item being streamed: its JSON (without what is still growing) and what is growing."""

    __slots__ = ("blocks", "index", "json", "kind", "logprobs", "part", "pieces", "thinking")

    def __init__(self, index: int, kind: str, item: dict[str, Any]) -> None:
        self.index = index
        self.kind = kind  # "message" | "refusal" | "reasoning" | "function_call"
        self.json = item
        self.pieces: list[str] = []  # text, refusal, summary or arguments so far
        self.part = 0  # content index of the open part of a message
        self.logprobs: list[Any] = []
        self.blocks: list[dict[str, Any]] = []  # Claude's signed thinking blocks of a reasoning item
        self.thinking = 0  # pieces already inside a signed block


class ResponsesStreamEncoder:
    """Turns the hub's stream events into the Responses event sequence (the attempt loop's ``StreamEncoder``).

    Items open when a kind of output starts. A message or reasoning item closes when another kind starts;
    function calls stay open until the answer ends, since a provider may interleave parallel calls."""

    __slots__ = (
        "_calls",
        "_created_at",
        "_echo",
        "_id",
        "_items",
        "_model",
        "_native",
        "_native_output",
        "_open",
        "_provider",
        "_renamed",
        "_seq",
        "_started",
    )

    def __init__(
        self,
        response_id: str,
        created_at: int,
        model: str,
        provider: str,
        echo: dict[str, Any],
        renamed: Renamed = _NONE_RENAMED,
    ) -> None:
        self._id = response_id
        self._renamed = renamed
        self._created_at = created_at
        self._model = model
        self._provider = provider
        self._echo = echo
        self._seq = 0
        self._started = False
        self._items: list[_Item] = []
        self._open: _Item | None = None  # the open message or reasoning item
        self._calls: dict[int, _Item] = {}  # hub tool call index -> its function_call item
        # From an endpoint that speaks the Responses API: its output items by index, and its final output.
        self._native: dict[int, dict[str, Any]] | None = None
        self._native_output: list[Any] | None = None

    # The StreamEncoder protocol.

    def event(self, ev: StreamEvent) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        delta = ev.delta
        if delta:
            native = delta.get(NATIVE_EVENT)
            if native is not None:
                self._pass_on(out, native)
                return b"".join(out)
            reasoning = delta.get("reasoning")
            if reasoning:
                item = self._open_kind(out, "reasoning")
                item.pieces.append(reasoning)
                self._emit(
                    out,
                    "response.reasoning_summary_text.delta",
                    {
                        "item_id": item.json["id"],
                        "output_index": item.index,
                        "summary_index": 0,
                        "delta": reasoning,
                    },
                )
            signature = delta.get("reasoning_signature")
            if signature:
                item = self._open_kind(out, "reasoning")
                item.blocks.append(
                    {
                        "type": "thinking",
                        "thinking": "".join(item.pieces[item.thinking :]),
                        "signature": signature,
                    }
                )
                item.thinking = len(item.pieces)
            redacted = delta.get("reasoning_redacted")
            if redacted:
                self._open_kind(out, "reasoning").blocks.append(
                    {"type": "redacted_thinking", "data": redacted}
                )
            content = delta.get("content")
            if content:
                item = self._open_kind(out, "message")
                item.pieces.append(content)
                logprobs = (ev.logprobs or {}).get("content") if ev.logprobs else None
                if logprobs:
                    item.logprobs.extend(logprobs)
                    self._emit(
                        out,
                        "response.output_text.delta",
                        {
                            "item_id": item.json["id"],
                            "output_index": item.index,
                            "content_index": item.part,
                            "delta": content,
                            "logprobs": logprobs,
                        },
                    )
                else:
                    out.append(self._text_delta(item, content))
            refusal = delta.get("refusal")
            if refusal:
                item = self._open_kind(out, "refusal")
                item.pieces.append(refusal)
                self._emit(
                    out,
                    "response.refusal.delta",
                    {
                        "item_id": item.json["id"],
                        "output_index": item.index,
                        "content_index": item.part,
                        "delta": refusal,
                    },
                )
            for call in delta.get("tool_calls") or ():
                self._tool_call(out, call)
        return b"".join(out)

    def finish(self, usage: Usage, cost: float, finish_reason: str | None) -> bytes:
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        status, reason = _status_of(finish_reason)
        self._close_all(out, "completed" if status == "completed" else "incomplete")
        body = self._response(status, usage=usage_json(usage, cost), incomplete_reason=reason)
        self._emit(
            out, "response.completed" if status == "completed" else "response.incomplete", {"response": body}
        )
        return b"".join(out)

    def error(self, err: TokenmuxError) -> bytes:
        """An ``error`` event, then ``response.failed``. The error's fields are both at the top level, as
        the API reference documents, and under ``error``, as the live API sends them, which makes the
        official Python SDK raise an APIError."""
        out: list[bytes] = []
        if not self._started:
            self._start(out)
        code = "rate_limit_exceeded" if err.status == 429 else "server_error"
        self._emit(
            out,
            "error",
            {
                "code": code,
                "message": err.message,
                "param": err.param,
                "error": {"type": err.type, "code": code, "message": err.message, "param": err.param},
            },
        )
        # The items' JSON as far as they got, for response.failed; the events that would close them are
        # not sent after an error (nor counted).
        seq = self._seq
        self._close_all([], "incomplete")
        self._seq = seq
        body = self._response("failed", error={"code": code, "message": err.message})
        self._emit(out, "response.failed", {"response": body})
        return b"".join(out)

    def _pass_on(self, out: list[bytes], event: dict[str, Any]) -> None:
        """An event of an endpoint that speaks the Responses API, under this response's sequence numbers;
        its lifecycle events are this response's own (``_start``, ``finish``)."""
        if self._native is None:
            self._native = {}
        kind = event.get("type")
        if not isinstance(kind, str) or kind in _LIFECYCLE:
            return
        if kind in _FINAL:
            response = event.get("response")
            output = response.get("output") if isinstance(response, dict) else None
            if isinstance(output, list):
                self._native_output = output
            return
        item = event.get("item")
        index = event.get("output_index")
        if isinstance(item, dict) and isinstance(index, int) and kind.startswith("response.output_item."):
            self._native[index] = item
        self._emit(out, kind, {k: v for k, v in event.items() if k not in ("type", "sequence_number")})

    # Items.

    def _start(self, out: list[bytes]) -> None:
        self._started = True
        body = self._response("in_progress")
        self._emit(out, "response.created", {"response": body})
        self._emit(out, "response.in_progress", {"response": body})

    def _response(self, status: str, **fields: Any) -> dict[str, Any]:
        if status == "in_progress":
            output: list[Any] = []
        elif self._native is not None:
            output = self._native_output or [self._native[i] for i in sorted(self._native)]
        else:
            output = [item.json for item in self._items]
        return response_json(
            self._id,
            self._created_at,
            self._model,
            self._provider,
            self._echo,
            status=status,
            output=output,
            **fields,
        )

    def _open_kind(self, out: list[bytes], kind: str) -> _Item:
        current = self._open
        if current is not None:
            if current.kind == kind:
                return current
            if kind == "refusal" and current.kind == "message":
                self._next_part(out, current, "refusal")
                return current
            self._close(out, current, "completed")
        index = len(self._items)
        if kind == "reasoning":
            item = _Item(index, kind, {"id": f"rs_{self._id}_{index}", "type": "reasoning", "summary": []})
        else:
            item = _Item(
                index,
                "message",
                {
                    "id": f"msg_{self._id}_{index}",
                    "type": "message",
                    "status": "in_progress",
                    "role": "assistant",
                    "content": [],
                },
            )
        self._items.append(item)
        self._open = item
        self._emit(out, "response.output_item.added", {"output_index": index, "item": item.json})
        if kind == "reasoning":
            self._emit(
                out,
                "response.reasoning_summary_part.added",
                {"item_id": item.json["id"], "output_index": index, "summary_index": 0, "part": _summary("")},
            )
        else:
            self._add_part(out, item, kind)
        return item

    def _add_part(self, out: list[bytes], item: _Item, kind: str) -> None:
        item.kind = kind
        part = _part(kind, "", [])
        self._emit(
            out,
            "response.content_part.added",
            {
                "item_id": item.json["id"],
                "output_index": item.index,
                "content_index": item.part,
                "part": part,
            },
        )

    def _next_part(self, out: list[bytes], item: _Item, kind: str) -> None:
        self._close_part(out, item)
        item.part += 1
        item.pieces = []
        self._add_part(out, item, kind)

    def _close_part(self, out: list[bytes], item: _Item) -> None:
        text = "".join(item.pieces)
        ids = {"item_id": item.json["id"], "output_index": item.index, "content_index": item.part}
        if item.kind == "refusal":
            self._emit(out, "response.refusal.done", {**ids, "refusal": text})
        else:
            self._emit(out, "response.output_text.done", {**ids, "text": text, "logprobs": item.logprobs})
        part = _part(item.kind, text, item.logprobs)
        item.json["content"].append(part)
        self._emit(out, "response.content_part.done", {**ids, "part": part})

    def _tool_call(self, out: list[bytes], call: dict[str, Any]) -> None:
        index = call.get("index", 0)
        function = call.get("function") or {}
        item = self._calls.get(index)
        if item is None:
            if self._open is not None:
                self._close(out, self._open, "completed")
            position = len(self._items)
            start = {**call, "function": {**function, "arguments": ""}}
            json = function_call_item(f"fc_{self._id}_{position}", start, "in_progress", self._renamed)
            # A custom tool's input is the one string inside the arguments: told whole when they are.
            kind = json["type"]
            item = self._calls[index] = _Item(position, kind, json)
            self._items.append(item)
            self._emit(out, "response.output_item.added", {"output_index": position, "item": json})
        elif call.get("extra_content") is not None:
            item.json["extra_content"] = call["extra_content"]
        arguments = function.get("arguments")
        if arguments:
            item.pieces.append(arguments)
            if item.kind == "function_call":
                self._emit(
                    out,
                    "response.function_call_arguments.delta",
                    {"item_id": item.json["id"], "output_index": item.index, "delta": arguments},
                )

    def _close(self, out: list[bytes], item: _Item, status: str) -> None:
        if self._open is item:
            self._open = None
        ids = {"item_id": item.json["id"], "output_index": item.index}
        if item.kind == "reasoning":
            text = "".join(item.pieces)
            self._emit(out, "response.reasoning_summary_text.done", {**ids, "summary_index": 0, "text": text})
            self._emit(
                out,
                "response.reasoning_summary_part.done",
                {**ids, "summary_index": 0, "part": _summary(text)},
            )
            item.json = reasoning_item(item.json["id"], text, item.blocks)
        elif item.kind == "function_call":
            arguments = "".join(item.pieces)
            self._emit(
                out,
                "response.function_call_arguments.done",
                {**ids, "name": item.json["name"], "arguments": arguments},
            )
            item.json = {**item.json, "arguments": arguments, "status": status}
        elif item.kind == "custom_tool_call":
            text = custom_input("".join(item.pieces))
            if text:
                self._emit(out, "response.custom_tool_call_input.delta", {**ids, "delta": text})
            self._emit(out, "response.custom_tool_call_input.done", {**ids, "input": text})
            item.json = {**item.json, "input": text, "status": status}
        else:
            self._close_part(out, item)
            item.json["status"] = status
        self._emit(out, "response.output_item.done", {"output_index": item.index, "item": item.json})

    def _close_all(self, out: list[bytes], status: str) -> None:
        if self._open is not None:
            self._close(out, self._open, status)
        for item in self._calls.values():
            if item.json.get("status") == "in_progress":
                self._close(out, item, status)

    # Frames.

    def _emit(self, out: list[bytes], kind: str, fields: dict[str, Any]) -> None:
        payload = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        out.append(b"event: " + kind.encode() + b"\ndata: " + encode_json(payload) + b"\n\n")

    def _text_delta(self, item: _Item, text: str) -> bytes:
        # The most frequent frame of a stream: built from constant bytes, only the text is encoded.
        seq = self._seq
        self._seq += 1
        return b'%s%d,"item_id":"%s","output_index":%d,"content_index":%d,"delta":%s,"logprobs":[]}\n\n' % (
            _TEXT_DELTA_HEAD,
            seq,
            item.json["id"].encode(),
            item.index,
            item.part,
            encode_json(text),
        )


def _summary(text: str) -> dict[str, Any]:
    return {"type": "summary_text", "text": text}


def _part(kind: str, text: str, logprobs: list[Any]) -> dict[str, Any]:
    if kind == "refusal":
        return {"type": "refusal", "refusal": text}
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs}
