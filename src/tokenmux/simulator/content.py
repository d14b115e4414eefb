"""Generated output: pseudo-English text, JSON that fits a JSON schema, log-probabilities.

Everything is drawn from a ``random.Random`` the caller seeds, so the same seed gives the same output.
A token is one word with its leading space (or one JSON piece): what clients count as one stream chunk.
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

_WORD_TEXT = """
the a of and to in is that for it as with was on be by this are from at or an which have not can
will more one all their has been would about there when also into other some time only new these
than its may two could first after most over such where between many through system model data
answer request provider latency token stream route price window cache route value result first
clear simple small large quick careful steady bright quiet early later every each both either
people world water light sound paper river market garden city road table window music story
question reason method number moment place change process signal pattern detail summary example
make take give find tell show keep build send read write check measure compare choose follow
open close start finish learn handle share store carry bring hold mean seem turn move
good better best useful different possible important common certain recent local public private
often usually rarely always never almost quite rather very really simply mostly nearly fairly
because while although unless since until before during within without against among toward
"""
_WORDS = tuple(_WORD_TEXT.split())

# Precomputed once: a request then only picks indexes.
_SPACED = tuple(" " + w for w in _WORDS)
_CAPITALIZED = tuple(w.capitalize() for w in _WORDS)
_SPACED_CAPITALIZED = tuple(" " + w for w in _CAPITALIZED)
_WORD_COUNT = len(_WORDS)
_SENTENCE_ENDS = (".", ".", ".", ",", "!", "?")

# A JSON document is streamed in pieces the size of typical BPE tokens: a run of word characters with
# its leading space, or one punctuation character.
_JSON_PIECE = re.compile(r"\s*[\w.+-]+|\s*[^\w\s]")


def sentence_tokens(rng: random.Random, count: int) -> list[str]:
    """``count`` tokens of sentence-like text, each with its leading space."""
    tokens: list[str] = []
    sentence_left = rng.randint(5, 14)
    capital = True
    for index in rng.choices(range(_WORD_COUNT), k=count):
        token = _SPACED_CAPITALIZED[index] if capital else _SPACED[index]
        sentence_left -= 1
        capital = sentence_left == 0
        if capital:
            token += rng.choice(_SENTENCE_ENDS)
            if token[-1] == ",":
                capital = False
            sentence_left = rng.randint(5, 14)
        tokens.append(token)
    return tokens


# Answers are windows onto one long text made at import: picking a window is one modulo, where drawing
# each word would cost a generator and a call per token (the simulator is the benchmark's baseline).
_TEXT_POOL = tuple(sentence_tokens(random.Random(0x5EED), 8192))


def text_tokens(seed: int, count: int, *, complete: bool) -> list[str]:
    """``count`` tokens of text chosen by ``seed``; the first has no leading space. ``complete`` ends the
    text with a full stop, as an answer that was not cut short does."""
    if count <= 0:
        return []
    size = len(_TEXT_POOL)
    start = (seed * 0x9E3779B97F4A7C15 >> 17) % size
    if start + count <= size:
        tokens = list(_TEXT_POOL[start : start + count])
    else:
        tokens = [_TEXT_POOL[(start + k) % size] for k in range(count)]
    first = tokens[0]
    tokens[0] = first[1].upper() + first[2:]
    if complete and tokens[-1][-1] not in ".!?":
        tokens[-1] = tokens[-1].rstrip(",") + "."
    return tokens


def cut_at_stop(tokens: list[str], stops: tuple[str, ...]) -> tuple[list[str], bool]:
    """Tokens up to the first stop sequence (which is not included), and whether one was met."""
    kept, stop = cut_at_stop_sequence(tokens, stops)
    return kept, stop is not None


def cut_at_stop_sequence(tokens: list[str], stops: tuple[str, ...]) -> tuple[list[str], str | None]:
    """Tokens up to the first stop sequence (which is not included), and the stop sequence met, if any
    (Anthropic's answers name it).

    Like a real model, a stop string is looked for inside each generated token and the text ends just
    before it."""
    for position, token in enumerate(tokens):
        for stop in stops:
            cut = token.find(stop)
            if cut >= 0:
                kept = tokens[:position]
                if cut > 0:
                    kept.append(token[:cut])
                return kept, stop
    return tokens, None


def json_pieces(text: str) -> list[str]:
    """Split a JSON document into token-sized pieces that concatenate back to it."""
    pieces = _JSON_PIECE.findall(text)
    # The pattern skips nothing but trailing whitespace; keep the invariant exact anyway.
    joined_length = sum(len(p) for p in pieces)
    if joined_length != len(text):
        pieces.append(text[joined_length:])
    return pieces


def words(rng: random.Random, low: int, high: int) -> str:
    count = rng.randint(low, high)
    return " ".join(_WORDS[i] for i in rng.choices(range(_WORD_COUNT), k=count))


def small_object(rng: random.Random) -> dict[str, Any]:
    """The answer to ``response_format: json_object``."""
    return {
        "answer": words(rng, 3, 8),
        "confidence": round(rng.random(), 2),
        "tags": [_WORDS[i] for i in rng.choices(range(_WORD_COUNT), k=rng.randint(1, 3))],
    }


class SchemaValueGenerator:
    """Builds a value valid against a JSON schema (the subset structured outputs and tools use).

    Handles type (or a list of types), enum, const, properties with required, additionalProperties,
    items, min/max items, lengths and bounds, anyOf/oneOf/allOf, and local ``$ref`` into ``$defs`` or
    ``definitions``. Below a depth limit optional properties and array items are left out, so recursive
    schemas end.
    """

    _MAX_DEPTH = 6

    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self._root = root
        self._rng = rng

    def value(self, schema: Any, depth: int = 0) -> Any:
        if not isinstance(schema, dict):
            return self._string({})
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self._rng.choice(enum)
        for combinator in ("anyOf", "oneOf"):
            options = schema.get(combinator)
            if isinstance(options, list) and options:
                # Prefer a non-null branch: a null answers the schema but tells a test nothing.
                usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
                return self.value(self._rng.choice(usable or options), depth + 1)
        if isinstance(schema.get("allOf"), list):
            schema = self._merge_all_of(schema)
        kind = self._kind(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, depth)
        if kind == "integer":
            return self._integer(schema)
        if kind == "number":
            return self._number(schema)
        if kind == "boolean":
            return self._rng.random() < 0.5
        if kind == "null":
            return None
        return self._string(schema)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            target = self._lookup(schema["$ref"])
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra} if extra else target
            seen += 1
        return schema

    def _lookup(self, ref: Any) -> dict[str, Any]:
        if not isinstance(ref, str) or not ref.startswith("#"):
            return {}
        node: Any = self._root
        for part in ref[1:].split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else {}

    def _merge_all_of(self, schema: dict[str, Any]) -> dict[str, Any]:
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        properties = dict(merged.get("properties") or {})
        required = list(merged.get("required") or [])
        for part in schema["allOf"]:
            part = self._resolve(part) if isinstance(part, dict) else {}
            properties.update(part.get("properties") or {})
            required.extend(part.get("required") or [])
            for key, item in part.items():
                if key not in ("properties", "required"):
                    merged.setdefault(key, item)
        if properties:
            merged["properties"] = properties
        if required:
            merged["required"] = required
        return merged

    @staticmethod
    def _kind(schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            kind = kinds[0] if kinds else "null"
        if isinstance(kind, str):
            return kind
        if "properties" in schema:
            return "object"
        if "items" in schema:
            return "array"
        return "string"

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = schema.get("required")
        required_names = set(required) if isinstance(required, list) else set()
        result: dict[str, Any] = {}
        for name, sub in properties.items():
            if name in required_names or depth < self._MAX_DEPTH:
                result[name] = self.value(sub, depth + 1)
        for name in required_names - result.keys():
            result[name] = self._string({})  # required but undeclared: anything goes
        return result

    def _array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        low = _int_or(schema.get("minItems"), 0)
        high = _int_or(schema.get("maxItems"), max(low, 3))
        if depth >= self._MAX_DEPTH:
            count = low
        else:
            count = self._rng.randint(max(low, min(1, high)), max(low, min(high, low + 3)))
        items = schema.get("items")
        values = [self.value(items, depth + 1) for _ in range(count)]
        if schema.get("uniqueItems"):
            unique: list[Any] = []
            for v in values:
                if v not in unique:
                    unique.append(v)
            values = unique
        return values

    def _integer(self, schema: dict[str, Any]) -> int:
        low, high = _bounds(schema, 0, 100)
        low_int, high_int = math.ceil(low), math.floor(high)
        if _is_number(schema.get("exclusiveMinimum")) and low_int <= schema["exclusiveMinimum"]:
            low_int += 1
        if _is_number(schema.get("exclusiveMaximum")) and high_int >= schema["exclusiveMaximum"]:
            high_int -= 1
        return self._rng.randint(low_int, max(low_int, high_int))

    def _number(self, schema: dict[str, Any]) -> float:
        low, high = _bounds(schema, 0.0, 100.0)
        # Keep clear of exclusive bounds: rounding to cents could land on them.
        if _is_number(schema.get("exclusiveMinimum")):
            low += min(0.01, (high - low) / 4)
        if _is_number(schema.get("exclusiveMaximum")):
            high -= min(0.01, (high - low) / 4)
        value = round(low + (high - low) * self._rng.random(), 2)
        return min(max(value, low), high)

    def _string(self, schema: dict[str, Any]) -> str:
        fmt = schema.get("format")
        rng = self._rng
        if fmt == "date-time":
            return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00Z"
        if fmt == "date":
            return f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        if fmt == "time":
            return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
        if fmt == "email":
            return f"{_WORDS[rng.randrange(_WORD_COUNT)]}@example.com"
        if fmt in ("uri", "url"):
            return f"https://example.com/{_WORDS[rng.randrange(_WORD_COUNT)]}"
        if fmt == "uuid":
            bits = [rng.getrandbits(n) for n in (32, 16, 12, 12, 48)]
            return f"{bits[0]:08x}-{bits[1]:04x}-4{bits[2]:03x}-8{bits[3]:03x}-{bits[4]:012x}"
        text = words(rng, 1, 4)
        min_length = _int_or(schema.get("minLength"), 0)
        max_length = _int_or(schema.get("maxLength"), 0)
        while len(text) < min_length:
            text += " " + words(rng, 1, 4)
        if max_length and len(text) > max_length:
            text = text[:max_length]
        return text


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_or_none(value: Any) -> float | None:
    return float(value) if _is_number(value) else None


def _bounds(schema: dict[str, Any], low: float, high: float) -> tuple[float, float]:
    """The range to draw from: the schema's bounds (inclusive or not), else the default range moved to
    meet the one bound given."""
    minimum = _number_or_none(schema.get("minimum"))
    if minimum is None:
        minimum = _number_or_none(schema.get("exclusiveMinimum"))
    maximum = _number_or_none(schema.get("maximum"))
    if maximum is None:
        maximum = _number_or_none(schema.get("exclusiveMaximum"))
    if minimum is not None:
        low = minimum
        if maximum is None:
            high = low + 100.0
    if maximum is not None:
        high = maximum
        if minimum is None and high < low:
            low = high - 100.0
    return low, max(low, high)


def token_logprobs(rng: random.Random, tokens: list[str], top: int) -> list[tuple[str, float, list[Any]]]:
    """For each token: (token, logprob, [(alternative, logprob), ...] best first, ``top`` long).

    The chosen token is the most likely one; alternatives are other words, each less likely."""
    entries: list[tuple[str, float, list[Any]]] = []
    for token in tokens:
        logprob = -round(rng.expovariate(6.0), 6)
        alternatives: list[tuple[str, float]] = []
        if top:
            alternatives.append((token, logprob))
            floor = logprob
            for index in rng.choices(range(_WORD_COUNT), k=top - 1):
                floor -= round(0.25 + rng.expovariate(1.0), 6)
                alternatives.append((_SPACED[index], round(floor, 6)))
        entries.append((token, logprob, alternatives))
    return entries
