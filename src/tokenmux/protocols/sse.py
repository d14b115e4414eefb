"""Server-sent events: an incremental decoder for upstream streams and the encoders the server writes with.

The decoder is separate from any transport: it is fed raw byte chunks exactly as they arrive (a chunk may
hold half a line or a dozen events) and returns the events completed so far. It follows the WHATWG
event-stream rules that matter for LLM APIs: lines end in ``\\n``, ``\\r\\n`` or ``\\r``; ``:`` starts a
comment; one space after the field's colon is dropped; several ``data:`` lines join with ``\\n``; a blank
line dispatches the event; ``id`` and ``retry`` are ignored (no LLM API resumes a stream).

``RunDecoder`` is the same decoder with a fast path for what nearly every stream of an OpenAI-format
provider is made of: events of one ``data: `` line each, ``\n``-terminated. What arrived of them together
comes out as one ``DataRun`` (their payloads as one JSON array, which a reader decodes in one call) instead
of one ``SSEEvent`` each; anything else in a read takes the general path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"
_DATA = b"data: "
_NEXT_DATA = b"\n\ndata: "  # the end of one plain event and the start of the next
_DONE_EVENT = b"data: [DONE]\n\n"
# Single bytes searched for as numbers: ``13 in chunk`` is one memchr, while ``b"\r" in chunk`` first tries
# its needle as an integer, building and dropping a TypeError on CPython 3.11, on every chunk. (Longer
# needles use ``find``, which tries the buffer first.)
_CR, _LF = 13, 10


@dataclass(slots=True)
class SSEEvent:
    event: str | None  # the ``event:`` field; None for the default "message" event
    data: str


class SSEDecoder:
    """Turns a stream of byte chunks into ``SSEEvent`` values, keeping partial lines between calls."""

    __slots__ = ("_data", "_event", "_partial", "_skip_lf", "_started")

    def __init__(self, *, mid_stream: bool = False) -> None:
        """``mid_stream``: what is fed starts after the stream's beginning (no byte-order mark there)."""
        self._partial: list[bytes] = []  # bytes of the current, not yet terminated line
        self._data: list[bytes] = []  # data lines of the event being assembled
        self._event: str | None = None
        self._skip_lf = False  # the previous chunk ended in "\r": a "\n" starting this one is its pair
        self._started = mid_stream

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Decode one chunk; return the events it completed (often none, often one)."""
        if not chunk:
            return []
        if not self._started:
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if _CR in chunk:
            # Normalise line ends once per chunk, so the line loop below only knows "\n".
            self._skip_lf = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = chunk.rfind(b"\n")
        if end < 0:
            if chunk:
                self._partial.append(chunk)
            return []
        if self._partial:
            # Joining once when the line completes keeps a long line arriving in many pieces linear.
            self._partial.append(chunk)
            chunk = b"".join(self._partial)
            end = chunk.rfind(b"\n")
            self._partial.clear()
        rest = chunk[end + 1 :]
        if rest:
            self._partial.append(rest)
        events: list[SSEEvent] = []
        data = self._data
        for line in chunk[:end].split(b"\n"):
            # The two lines of nearly every LLM event ("data: {...}" and the blank one) are handled
            # inline; everything else goes through the general path.
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line or not data:
                self._line(line, events)
            else:
                payload = data[0] if len(data) == 1 else b"\n".join(data)
                events.append(SSEEvent(self._event, payload.decode("utf-8", "replace")))
                data.clear()
                self._event = None
        return events

    def flush(self) -> list[SSEEvent]:
        """End of stream: complete a last event the server did not terminate with a blank line.

        The standard says to drop such an event; some OpenAI-compatible servers end their stream that way,
        and losing their last chunk (finish reason, usage) would be worse than being lenient.
        """
        events: list[SSEEvent] = []
        if self._partial:
            line = b"".join(self._partial)
            self._partial.clear()
            self._line(line, events)
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
                events.append(SSEEvent(self._event, data.decode("utf-8", "replace")))
                self._data.clear()
            self._event = None
            return
        if line[0] == 0x3A:  # ":" comment (keep-alive)
            return
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")


@dataclass(slots=True)
class DataRun:
    """Complete events, each one ``data: `` line, that arrived together: ``payloads`` is the JSON array of
    their payloads (``[p1,p2,...]``) unless ``[DONE]`` ended them, which sets ``done`` instead. ``events()``
    gives the same events one by one, as ``SSEDecoder`` reads them, for a reader that cannot take the
    array (a payload that is not JSON, say)."""

    payloads: bytes
    done: bool
    source: bytes  # the events as they came

    def events(self) -> list[SSEEvent]:
        return SSEDecoder(mid_stream=True).feed(self.source)


class RunDecoder:
    """``SSEDecoder`` with runs of plain ``data:`` events handed over whole, as ``DataRun``.

    It cuts what arrives at the last event boundary (a blank line): the complete events before it are one
    run when each is a single ``data: `` line, else they go through an ``SSEDecoder``, as does everything of
    a stream with ``\r`` line ends; the rest waits for the next read. Cut at event boundaries, the general
    decoder sees the events it would have seen in the whole stream."""

    __slots__ = ("_decoder", "_general", "_partial")

    def __init__(self) -> None:
        self._decoder = SSEDecoder()
        self._partial: list[bytes] = []  # what came after the last event boundary
        self._general = False  # a "\r" came: every event from then on takes the general path

    def feed(self, chunk: bytes) -> Sequence[SSEEvent | DataRun]:
        if self._general:
            return self._decoder.feed(chunk)
        partial = self._partial
        if _CR in chunk:
            self._general = True
            if partial:
                chunk = b"".join([*partial, chunk])
                partial.clear()
            return self._decoder.feed(chunk)
        end = chunk.rfind(b"\n\n") + 2
        if end < 2:
            if partial and chunk[:1] == b"\n" and partial[-1][-1:] == b"\n":
                end = 1  # the blank line began at the end of the last read
            else:
                if chunk:
                    partial.append(chunk)  # joined once the event completes: linear in its length
                return []
        if partial:
            partial.append(chunk[:end])
            block = b"".join(partial)
            partial.clear()
        else:
            block = chunk[:end] if end < len(chunk) else chunk
        if end < len(chunk):
            partial.append(chunk[end:])
        run = _data_run(block)
        return [run] if run is not None else self._decoder.feed(block)

    def flush(self) -> list[SSEEvent]:
        """End of stream: what is left, as ``SSEDecoder.flush`` would give it."""
        events: list[SSEEvent] = []
        if self._partial:
            events = self._decoder.feed(b"".join(self._partial))
            self._partial.clear()
        return events + self._decoder.flush()


def _data_run(block: bytes) -> DataRun | None:
    """``block`` (complete events) as a run when every event in it is one ``data: `` line, else None."""
    if not block.startswith(_DATA):
        return None
    done = block.endswith(_DONE_EVENT)
    if done:
        if len(block) == len(_DONE_EVENT):
            return DataRun(b"[]", True, block)
        if block[-len(_DONE_EVENT) - 2 : -len(_DONE_EVENT)] != b"\n\n":
            return None
        body = block[6 : -len(_DONE_EVENT) - 2]
    else:
        body = block[6:-2]
    # Payloads hold no line end, so every "\n" left after this is a line that is not "data: ...".
    # (split and join: one pass over the bytes, where replace makes two, counting first.)
    joined = b",".join(body.split(_NEXT_DATA))
    if _LF in joined:
        return None
    return DataRun(b"".join((b"[", joined, b"]")), done, block)


DONE = b"data: [DONE]\n\n"


def encode_data(payload: bytes) -> bytes:
    """One unnamed event. ``payload`` must not contain a newline (compact JSON never does)."""
    return b"data: " + payload + b"\n\n"


def encode_event(event: str, payload: bytes) -> bytes:
    """One named event (Anthropic's ``event: content_block_delta`` style)."""
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"


def comment(text: str) -> bytes:
    """A comment line: clients ignore it; it keeps proxies and idle timers from closing the stream."""
    return b": " + text.encode() + b"\n\n"
