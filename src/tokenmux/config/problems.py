"""What is wrong with a configuration, said in one line that names the setting and the fix.

msgspec reports a decoding problem as ``Expected `float`, got `str` - at `$.gateway.cooldown_s```; the
gateway says ``gateway.cooldown_s must be a number, got text``. Values are not repeated (a wrong-typed
``api_key`` may be a secret), except a refused choice, which is one of a few known words.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

import msgspec

from tokenmux.errors import ConfigError

# msgspec's names for JSON-like types -> what a YAML author calls them
_TYPE_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "nothing",
}
_EXPECTED = re.compile(r"^Expected `(?P<want>[^`]+)`(?P<bound>[^,]*?)(?:, got `(?P<got>[^`]+)`)?$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
_ENUM = re.compile(r"^Invalid enum value (?P<value>.+)$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_KEY = re.compile(r"^Expected `str`(?:, got `[^`]+`)? - at `key` in `(?P<where>[^`]+)`$")
_AT = re.compile(r"^(?P<text>.*?)(?: - at `(?P<where>[^`]+)`)?$")


def decode_problem(error: msgspec.ValidationError, schema: Any, prefix: str) -> ConfigError:
    """A ConfigError for msgspec's ``error`` met while converting a value to ``schema``; ``prefix`` is the
    value's own path in the file (``gateway``, ``providers.azure``), or "" for the whole file."""
    if key := _KEY.fullmatch(str(error)):
        return ConfigError(
            f"{_path(prefix, key.group('where')) or 'the configuration'} has a key that is not text"
        )
    match = _AT.fullmatch(str(error))
    assert match is not None  # the pattern matches any text
    text, where = match.group("text"), match.group("where") or "$"
    path = _path(prefix, where)
    if unknown := _UNKNOWN.fullmatch(text):
        name = unknown.group("name")
        known = _fields_at(schema, where)
        hint = f"; known: {', '.join(known)}" if known else ""
        return ConfigError(f"unknown setting {_join(path, name)}{hint}")
    if missing := _MISSING.fullmatch(text):
        return ConfigError(f"{_join(path, missing.group('name'))} is required")
    if enum := _ENUM.fullmatch(text):
        choices = _choices_at(schema, where)
        listed = f" one of {', '.join(map(repr, choices))}," if choices else " one of the known values,"
        return ConfigError(f"{_subject(path)} must be{listed} got {enum.group('value')}")
    if expected := _EXPECTED.fullmatch(text):
        wanted = [t.strip() for t in expected.group("want").split("|")]
        want = " or ".join(_TYPE_WORDS.get(t, t) for t in wanted if t != "null" or len(wanted) == 1)
        bound = expected.group("bound").strip()
        got = expected.group("got")
        hint = (
            ' (write it in quotes, e.g. "2024-10-21")'
            if got in ("date", "datetime") and "str" in wanted
            else ""
        )
        return ConfigError(
            f"{_subject(path)} must be {want}{f' {bound}' if bound else ''}"
            + (f", got {_TYPE_WORDS.get(got, got)}" if got else "")
            + hint
        )
    return ConfigError(f"{_subject(path)}: {text}")


def _path(prefix: str, where: str) -> str:
    """``$.a.b[...]`` under ``prefix`` -> ``prefix.a.b[...]``."""
    rest = where.removeprefix("$").removeprefix(".")
    if not prefix:
        return rest
    if not rest:
        return prefix
    return f"{prefix}{rest}" if rest.startswith("[") else f"{prefix}.{rest}"


def _subject(path: str) -> str:
    """What a message is about: ``a.b`` -> "a.b"; ``a.b[...]`` (an item of a list or mapping) -> "every
    value of a.b"."""
    if not path:
        return "the configuration"
    if path.endswith("[...]"):
        return f"every value of {path.removesuffix('[...]')}"
    return path


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _resolve(schema: Any, where: str) -> Any:
    """The type found at ``where`` (``$.gateway``) inside ``schema``, or None when it cannot be told."""
    current = schema
    for part in re.findall(r"\.([^.\[]+)|\[[^\]]*\]", where.removeprefix("$")):
        current = _unwrap(current)
        if part == "":  # an index or a mapping value: the item type
            args = typing.get_args(current)
            current = args[-1] if args else None
        elif isinstance(current, type) and issubclass(current, msgspec.Struct):
            current = typing.get_type_hints(current).get(part)
        else:
            return None
    return _unwrap(current)


def _unwrap(tp: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` -> ``X``."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(rest) != 1:
                return tp
            tp = rest[0]
        else:
            return tp


def _fields_at(schema: Any, where: str) -> tuple[str, ...]:
    found = _resolve(schema, where)
    if isinstance(found, type) and issubclass(found, msgspec.Struct):
        return found.__struct_fields__
    return ()


def _choices_at(schema: Any, where: str) -> tuple[Any, ...]:
    found = _resolve(schema, where)
    return typing.get_args(found) if typing.get_origin(found) is typing.Literal else ()
