"""Server-sent events: an incremental decoder for upstream streams and the encoders the server writes with.

The decoder is separate from any transport: it is fed raw byte chunks exactly as they arrive (a chunk may
hold half a line or a dozen events) and returns the events completed so far. It follows the WHATWG
event-stream rules that matter for LLM APIs: lines end in ``\\n``, ``\\r\\n`` or ``\\r``; ``:`` starts a
comment; one space after the field's colon is dropped; several ``data:`` lines join with ``\\n``; a blank
line dispatches the event; ``id`` and ``retry`` are ignored (no LLM API resumes a stream).
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class SSEEvent:
    event: str | None  # the ``event:`` field; None for the default "message" event
    data: str


class SSEDecoder:
    """Turns a stream of byte chunks into ``SSEEvent`` values, keeping partial lines between calls."""

    __slots__ = ("_data", "_event", "_partial", "_skip_lf", "_started")

    def __init__(self) -> None:
        self._partial: list[bytes] = []  # bytes of the current, not yet terminated line
        self._data: list[bytes] = []  # data lines of the event being assembled
        self._event: str | None = None
        self._skip_lf = False  # the previous chunk ended in "\r": a "\n" starting this one is its pair
        self._started = False

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
        if b"\r" in chunk:
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
