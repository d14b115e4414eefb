"""Chat Completions stream chunks passed from an OpenAI-format provider to an OpenAI-format client.

When both sides speak Chat Completions, a chunk's choices need not be decoded into dicts and encoded
again: the client gets them as the provider sent them, under the gateway's own id, model and provider.
The gateway still reads what it needs of every chunk (whether it carries output, how it finished, its
usage, its text in case usage never comes) with typed msgspec decoders that skip everything else.

The chunks that arrived together (``protocols.sse.DataRun``) are read together by ``read_plain_run``: two
decoder calls for the run, whatever its length, and one ``PassThroughChunk`` that stands for all of them.

A chunk that does not have the plain shape (an error object, a choice without a delta, a field of an
unexpected type) is not passed through: ``read_plain_chunk`` (and ``read_plain_run`` for a run holding one)
answers None and the adapter takes its general path, which builds the same ``PassThroughChunk`` from
``StreamEvent`` values (``chunk_of_events``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from tokenmux.types import StreamEvent, Usage

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class PassThroughChunk:
    """Upstream chunks on their way to the client (one, or a run that arrived together), with what the
    gateway must know of them read out."""

    # The JSON array of choices of each chunk to send, in order (bytes, or msgspec's zero-copy views of
    # them): one frame each. A chunk with nothing to send, as one that only carries usage, has none.
    choices: list[bytes | msgspec.Raw]
    has_content: bool = False  # text, a tool call, reasoning or a refusal: output the client sees
    finish_reason: str | None = None  # the last one the chunks' choices gave
    usage: Usage | None = None  # the last one reported
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
_envelopes = msgspec.json.Decoder(list[_Envelope]).decode
_choices_of_each = msgspec.json.Decoder(list[list[_Choice]]).decode
_NO_CHOICES = msgspec.Raw(b"[]")


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
    return _told(envelope.usage, (choices,), (raw,), usage_of)


def read_plain_run(payloads: bytes, usage_of: Callable[[dict[str, Any]], Usage]) -> PassThroughChunk | None:
    """The chunks of a run (``payloads``: their JSON array, ``protocols.sse.DataRun``) ready to pass
    through as one, or None when one of them needs the general path (then the run is read chunk by chunk).
    ``usage_of`` reads a usage object the way the adapter does."""
    try:
        envelopes = _envelopes(payloads)
        arrays = []
        usage = None
        for envelope in envelopes:
            if envelope.error is not None:
                return None
            arrays.append(envelope.choices or _NO_CHOICES)
            if envelope.usage:
                usage = envelope.usage
        # The choices of every chunk in one call: joined, they are the JSON array of their arrays.
        choices_of_each = _choices_of_each(b"".join((b"[", b",".join(arrays), b"]"))) if arrays else []
    except msgspec.DecodeError:
        return None
    return _told(usage, choices_of_each, arrays, usage_of)


def _told(
    usage: dict[str, Any] | None,
    choices_of_each: Sequence[Sequence[_Choice]],
    arrays: Sequence[msgspec.Raw],
    usage_of: Callable[[dict[str, Any]], Usage],
) -> PassThroughChunk | None:
    """What chunks tell, from their choices (decoded, and as they came: ``arrays``) and their last usage;
    None when a choice needs the general path."""
    to_send: list[bytes | msgspec.Raw] = []
    text = []
    has_content = False
    finish_reason = None
    for choices, array in zip(choices_of_each, arrays, strict=True):
        if not choices:
            continue  # nothing to send, as for a chunk that only carries usage
        to_send.append(array)
        for choice in choices:
            delta = choice.delta
            if delta is None:
                return None  # sent on as ``"delta": {}`` by the general path, as clients expect a delta
            if delta.content:
                text.append(delta.content)
                has_content = True
            if delta.tool_calls:
                has_content = True
                for call in delta.tool_calls:
                    if call.function is not None and call.function.arguments:
                        text.append(call.function.arguments)
            if delta.reasoning or delta.refusal:
                has_content = True
            if choice.finish_reason is not None:
                finish_reason = choice.finish_reason
    return PassThroughChunk(
        to_send,
        has_content,
        finish_reason,
        usage_of(usage) if usage else None,
        "".join(text),
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
    chunk = PassThroughChunk([])
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
        chunk.choices.append(_encode(choices))
    chunk.text = "".join(text)
    return chunk
