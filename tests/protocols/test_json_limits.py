"""JSON structure bounds: depth and number of values, checked on the bytes, whole or chunk by chunk."""

from __future__ import annotations

import json

import pytest

from tokenmux.errors import InvalidRequest, PayloadTooLarge
from tokenmux.protocols.json_limits import MAX_DEPTH, MAX_VALUES, JsonShape, check_structure


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_nesting_up_to_the_bound_passes_and_deeper_is_a_400() -> None:
    check_structure(nested(MAX_DEPTH), "{}")
    for body in (nested(MAX_DEPTH + 1), b"[" * 1000, b'{"a":' * 1000 + b"1" + b"}" * 1000, b"[" * 100_000):
        with pytest.raises(InvalidRequest, match=f"more than {MAX_DEPTH} levels"):
            check_structure(body, "{}")


def test_brackets_and_commas_inside_strings_do_not_count() -> None:
    text = "[{" * 10_000 + ', "quoted \\" [[[" \\\\' * 1000
    body = json.dumps({"messages": [{"role": "user", "content": text}]}).encode()
    assert len(body) > MAX_DEPTH
    check_structure(body, "{}")
    shape = JsonShape("{}")
    shape.feed(body)
    assert shape._values < 10 and shape._depth == 0


def test_too_many_values_is_a_413_before_decoding() -> None:
    for body in (b"[" + b"[]," * 200_000 + b"[]]", b"[" + b'"ab",' * 200_000 + b"1]"):
        with pytest.raises(PayloadTooLarge, match=f"more than {MAX_VALUES} JSON values"):
            check_structure(body, "{}")
    check_structure(b"[" + b"1," * (MAX_VALUES // 2) + b"1]", "{}")


def test_a_closing_bracket_without_an_opening_one_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="closes what was not opened"):
        JsonShape("{}").feed(b"]]]" + b"[" * (MAX_DEPTH + 5))


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 4096])
def test_fed_in_chunks_it_counts_as_it_would_whole(chunk: int) -> None:
    doc = {"a": ['x\\"y[', {"b": [[1, 2], [3]]}, "\\\\"] * 300, "c": "z" * 500, "d": "\\"}
    body = json.dumps(doc).encode()
    whole = JsonShape("{}")
    whole.feed(body)
    parts = JsonShape("{}")
    for i in range(0, len(body), chunk):
        parts.feed(body[i : i + chunk])
    assert (parts._values, parts._depth, parts._inside) == (whole._values, whole._depth, whole._inside)
    assert parts._depth == 0 and not parts._inside


def test_a_pathological_body_is_refused_within_its_first_chunks() -> None:
    shape = JsonShape("{}")
    chunk = b"[]," * 20_000  # 60 kB, as a server delivers a body
    fed = 0
    with pytest.raises(PayloadTooLarge):
        while True:
            shape.feed(chunk)
            fed += len(chunk)
    assert fed < 400_000
