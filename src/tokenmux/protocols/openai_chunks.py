"""Chat Completions stream chunks passed from an OpenAI-format provider to an OpenAI-format client.

When both sides speak Chat Completions, a chunk's choices need not be decoded into dicts and encoded
again: the client gets them as the provider sent them, under the gateway's own id, model and provider.
The gateway still reads what it needs of every chunk (whether it carries output, how it finished, its
usage, its text in case usage never comes) with typed msgspec decoders that skip everything else.

A chunk that does not have the plain shape (an error object, a choice without a delta, a field of an
unexpected type) is not passed through: ``read_plain_chunk`` answers None and the adapter takes its general
path, which builds the same ``PassThroughChunk`` from ``StreamEvent`` values (``chunk_of_events``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from tokenmux.types import StreamEvent, Usage

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class PassThroughChunk:
    """One upstream chunk on its way to the client, with what the gateway must know of it read out."""

    # The JSON array of choices to send (bytes, or msgspec's zero-copy view of them); empty when there is
    # nothing to send, as for a chunk that only carries usage.
    choices: bytes | msgspec.Raw
    has_content: bool = False  # text, a tool call, reasoning or a refusal: output the client sees
    finish_reason: str | None = None  # the last one the chunk's choices gave
    usage: Usage | None = None
    text: str = ""  # content and tool-call arguments, counted when the provider never reports usage


class _Function(msgspec.Struct):
    arguments: str | None = None


class _ToolCall(msgspec.Struct):
    function: _Function | None = None


class _Delta(msgspec.Struct):
    content: str | None = None
    tool_calls: list[_ToolCall] | None = None
    reasoning: str | None = None
    refusal: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None
    finish_reason: str | None = None


class _Envelope(msgspec.Struct):
    # Raw: the choices are kept as their bytes, and read by _choices only as far as the fields above.
    choices: msgspec.Raw = msgspec.Raw()
    usage: dict[str, Any] | None = None
    error: Any = None


_envelope = msgspec.json.Decoder(_Envelope).decode
_choices = msgspec.json.Decoder(list[_Choice]).decode


def read_plain_chunk(
    data: str | bytes, usage_of: Callable[[dict[str, Any]], Usage]
) -> PassThroughChunk | None:
    """The chunk ``data`` (one SSE ``data:`` payload) ready to pass through, or None when it needs the
    general path. ``usage_of`` reads a usage object the way the adapter does."""
    try:
        envelope = _envelope(data)
        raw = envelope.choices
        # Empty when the chunk has no "choices"; a value that is not a list fails here and goes to the
        # general path, which decides what it means.
        choices = _choices(raw) if raw else ()
    except msgspec.DecodeError:
        return None
    if envelope.error is not None:
        return None
    has_content = False
    finish_reason = None
    text = ""
    for choice in choices:
        delta = choice.delta
        if delta is None:
            return None  # sent on as ``"delta": {}`` by the general path, as clients expect a delta
        if delta.content:
            text += delta.content
            has_content = True
        if delta.tool_calls:
            has_content = True
            for call in delta.tool_calls:
                if call.function is not None and call.function.arguments:
                    text += call.function.arguments
        if delta.reasoning or delta.refusal:
            has_content = True
        if choice.finish_reason is not None:
            finish_reason = choice.finish_reason
    usage = envelope.usage
    return PassThroughChunk(
        raw if choices else b"",
        has_content,
        finish_reason,
        usage_of(usage) if usage else None,
        text,
    )


def choice_json(event: StreamEvent) -> dict[str, Any]:
    """A ``StreamEvent`` as one choice of a Chat Completions chunk."""
    choice: dict[str, Any] = {
        "index": event.index,
        "delta": event.delta or {},
        "finish_reason": event.finish_reason,
    }
    if event.logprobs is not None:
        choice["logprobs"] = event.logprobs
    return choice


def chunk_of_events(events: list[StreamEvent]) -> PassThroughChunk:
    """The chunk that carries ``events`` (the choices of one upstream chunk, and its usage event if any)."""
    chunk = PassThroughChunk(b"")
    choices = []
    text = []
    for event in events:
        if event.usage is not None:
            chunk.usage = event.usage  # the usage event: billed, never sent as a choice
            continue
        choices.append(choice_json(event))
        if event.finish_reason is not None:
            chunk.finish_reason = event.finish_reason
        if event.has_content:
            chunk.has_content = True
        delta = event.delta
        if delta:
            content = delta.get("content")
            if isinstance(content, str):
                text.append(content)
            for call in delta.get("tool_calls") or ():
                arguments = (call.get("function") or {}).get("arguments")
                if isinstance(arguments, str):
                    text.append(arguments)
    if choices:
        chunk.choices = _encode(choices)
    chunk.text = "".join(text)
    return chunk
