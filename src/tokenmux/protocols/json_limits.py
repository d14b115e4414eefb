"""How deep a request body's JSON may nest and how many values it may hold, checked on its bytes before it
is decoded, as they arrive.

Depth: the decoder recurses once per level and fails with RecursionError near a thousand levels (a 500,
not a 400), and code that walks a decoded value (a tool's JSON Schema converted for Gemini, say) recurses
too. Real requests nest a few levels, tool schemas a few dozen: ``MAX_DEPTH`` is far above both and far
below where anything recurses too deep.

Values: a decoded value costs far more memory than its text (an empty list is 2 bytes of JSON and 64 of
Python: 26 times a body of ``[],[],...``), and the decoder holds the GIL while it works, so millions of
values stall every other request for seconds, in whatever thread. Real requests are a few large strings
(prompts, base64 images) in at most some thousands of values: ``MAX_VALUES`` is far above that, and its
decode takes milliseconds.

``JsonShape`` is fed the body chunk by chunk as the server reads it, so a pathological body is refused
after its first few hundred kB, and no single step works on more than one chunk. Per chunk everything
runs in C (``bytes.count``, ``split``, ``translate``) except a walk over the brackets outside strings, done
only when the chunk might go deeper than allowed and bounded by the values allowed. The count is of
strings, commas and brackets outside strings: close to the number of values, never far below it.
"""

from __future__ import annotations

from tokenmux.errors import InvalidRequest, PayloadTooLarge

MAX_DEPTH = 128
MAX_VALUES = 100_000

_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b"[]{},")
_OPEN = frozenset(b"[{")
_BACKSLASH = 92  # as a number: see protocols/sse.py on "in"


class JsonShape:
    """Counts a JSON text's values and tracks its depth as its bytes are fed; raises once over a bound."""

    __slots__ = ("_carry", "_depth", "_example", "_inside", "_values", "max_depth", "max_values")

    def __init__(self, example: str, *, max_depth: int = MAX_DEPTH, max_values: int = MAX_VALUES) -> None:
        self._example = example
        self.max_depth = max_depth
        self.max_values = max_values
        self._inside = False  # within a string
        self._carry = b""  # a backslash cut from the end of the last chunk: its escape is in the next
        self._depth = 0
        self._values = 0

    def feed_whole(self, body: bytes | bytearray) -> None:
        """Check a body that arrived in one piece (nothing fed before it)."""
        # Nearly every body: fewer brackets than the depth allowed and too few bytes for too many values
        # (each value takes at least a byte), checked in C without walking the text.
        if len(body) <= self.max_values and body.count(b"[") + body.count(b"{") <= self.max_depth:
            return
        self.feed(body)

    def feed(self, data: bytes | bytearray) -> None:
        if self._carry:
            data = self._carry + data
            self._carry = b""
        if _BACKSLASH in data:
            if data.endswith(b"\\") and (len(data) - len(data.rstrip(b"\\"))) % 2:
                data, self._carry = data[:-1], b"\\"
            # Escapes only occur in strings: without them every quote opens or closes one.
            data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
        quotes = data.count(b'"')
        if quotes:
            opened = (quotes + (0 if self._inside else 1)) // 2
            self._count(opened)
            parts = data.split(b'"')
            outside: bytes | bytearray = b"".join(parts[1 if self._inside else 0 :: 2])
            self._inside ^= quotes % 2 == 1
        elif self._inside:
            return
        else:
            outside = data
        structure = outside.translate(None, _NOT_STRUCTURE)
        if not structure:
            return
        opens = structure.count(b"[") + structure.count(b"{")
        self._count(structure.count(b",") + opens)
        closes = len(structure) - opens - structure.count(b",")
        if self._depth + opens <= self.max_depth:
            self._depth += opens - closes  # cannot go too deep in this chunk: no need to walk it
            if self._depth < 0:
                self._unbalanced()
            return
        depth = self._depth
        for byte in structure:
            if byte in _OPEN:
                depth += 1
                if depth > self.max_depth:
                    raise InvalidRequest(
                        f"the request body nests JSON more than {self.max_depth} levels deep; send a JSON"
                        f" object such as {self._example}",
                        code="invalid_json",
                    )
            elif byte != 44:  # a comma
                depth -= 1
                if depth < 0:
                    self._unbalanced()
        self._depth = depth

    def _count(self, values: int) -> None:
        self._values += values
        if self._values > self.max_values:
            raise PayloadTooLarge(
                f"the request body holds more than {self.max_values} JSON values; this gateway decodes at"
                " most that many (a long text or an image is one value: split the request)",
                code="too_many_json_values",
            )

    def _unbalanced(self) -> None:
        raise InvalidRequest(
            f"the request body is not valid JSON (a bracket closes what was not opened); send a JSON object"
            f" such as {self._example}",
            code="invalid_json",
        )


def check_structure(body: bytes | bytearray, example: str) -> None:
    """Refuse a whole body that nests too deep or holds too many values (see ``JsonShape``)."""
    JsonShape(example).feed_whole(body)
