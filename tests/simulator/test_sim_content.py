"""The pieces behind the answers, on their own: generated text and JSON, distributions, fates, profiles."""

from __future__ import annotations

import random
from statistics import fmean
from typing import Any

import msgspec
import pytest

from tokenmux.simulator.answer import AnswerSpec, ToolSpec, plan
from tokenmux.simulator.content import SchemaValueGenerator, cut_at_stop, json_pieces, text_tokens
from tokenmux.simulator.fate import Outcome, decide, draw_around
from tokenmux.simulator.profile import Behaviour, ProfileError, build_profile


def test_text_tokens_are_words_with_leading_spaces_and_end_in_a_full_stop() -> None:
    tokens = text_tokens(12345, 40, complete=True)

    assert len(tokens) == 40
    assert tokens[0][0].isupper() and not tokens[0].startswith(" ")
    assert all(t.startswith(" ") and " " not in t[1:] for t in tokens[1:])
    assert tokens[-1].endswith((".", "!", "?"))
    assert text_tokens(12345, 40, complete=True) == tokens
    assert text_tokens(12346, 40, complete=True) != tokens


def test_text_longer_than_the_pool_wraps_around() -> None:
    tokens = text_tokens(99, 20_000, complete=False)

    assert len(tokens) == 20_000
    assert all(t.strip() for t in tokens)


def test_cut_at_stop_keeps_the_text_before_the_stop_string() -> None:
    tokens = ["The", " cat", " sat.", " It", " slept"]

    assert cut_at_stop(tokens, ("sat",)) == (["The", " cat", " "], True)
    assert cut_at_stop(tokens, (" It", "cat")) == (["The", " "], True)  # the first stop met wins
    assert cut_at_stop(tokens, ("The",)) == ([], True)
    assert cut_at_stop(tokens, ("dog",)) == (tokens, False)


@pytest.mark.parametrize("document", ['{"a": [1, 2.5, -3e2], "b": "x y", "c": {"d": null}}', "{}", '"x"'])
def test_json_pieces_concatenate_back_to_the_document(document: str) -> None:
    pieces = json_pieces(document)

    assert "".join(pieces) == document
    assert all(pieces)


class Leaf(msgspec.Struct, forbid_unknown_fields=True):
    label: str
    weight: float


class Node(msgspec.Struct, forbid_unknown_fields=True):
    id: int
    children: list[Node]
    leaf: Leaf | None
    choice: int | str


@pytest.mark.parametrize("seed", range(20))
def test_generated_values_fit_a_recursive_schema(seed: int) -> None:
    schema = msgspec.json.schema(Node)

    value = SchemaValueGenerator(schema, random.Random(seed)).value(schema)

    msgspec.convert(value, Node, strict=True)


@pytest.mark.parametrize(
    ("schema", "check"),
    [
        ({"type": "integer", "minimum": 5, "maximum": 5}, lambda v: v == 5),
        ({"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 2}, lambda v: v == 1),
        ({"type": "number", "exclusiveMinimum": 0, "maximum": 0.05}, lambda v: 0 < v <= 0.05),
        ({"type": "number", "maximum": -500}, lambda v: v <= -500),
        ({"type": ["null", "boolean"]}, lambda v: isinstance(v, bool)),
        ({"const": "fixed"}, lambda v: v == "fixed"),
        ({"enum": [3, "x"]}, lambda v: v in (3, "x")),
        ({"anyOf": [{"type": "null"}, {"type": "integer"}]}, lambda v: isinstance(v, int)),
        ({"type": "string", "minLength": 40, "maxLength": 45}, lambda v: 40 <= len(v) <= 45),
        ({"type": "string", "format": "email"}, lambda v: v.endswith("@example.com")),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 4}, lambda v: len(v) >= 4),
        ({"type": "array", "maxItems": 0}, lambda v: v == []),
        (
            {"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]}, {"required": ["b"]}]},
            lambda v: isinstance(v["a"], int) and "b" in v,
        ),
        ({"properties": {"x": {"$ref": "#/definitions/X"}}, "definitions": {"X": {"type": "boolean"}}}, None),
    ],
)
def test_schema_keywords_are_respected(schema: dict[str, Any], check: Any) -> None:
    for seed in range(10):
        value = SchemaValueGenerator(schema, random.Random(seed)).value(schema)
        if check is None:
            assert isinstance(value["x"], bool)
        else:
            assert check(value), value


def test_draws_stay_in_range_with_the_requested_mean() -> None:
    rng = random.Random(3)
    # The seed page's Azure throughput: skewed far towards its minimum.
    draws = [draw_around(rng, 29.85, 6.25, 108.82) for _ in range(20_000)]

    assert min(draws) >= 6.25 and max(draws) <= 108.82
    assert fmean(draws) == pytest.approx(29.85, rel=0.03)
    assert draw_around(rng, 10, None, None) == 10
    mirrored = [draw_around(rng, 100, 80, None) for _ in range(2000)]
    assert min(mirrored) >= 80 and max(mirrored) <= 120


def test_decide_follows_the_profile() -> None:
    assert decide(Behaviour(), 1, 0).outcome is Outcome.ANSWER
    assert decide(Behaviour(hang=True), 1, 0).outcome is Outcome.HANG
    assert decide(Behaviour(outages=[(10, 20)]), 1, 15).outcome is Outcome.OUTAGE
    assert decide(Behaviour(outages=[(10, 20)]), 1, 20).outcome is Outcome.ANSWER
    assert decide(Behaviour(error_rate=1), 1, 0).outcome is Outcome.ERROR
    assert decide(Behaviour(rate_limit_rate=1), 1, 0).outcome is Outcome.RATE_LIMITED
    assert decide(Behaviour(malformed_rate=1), 1, 0).outcome is Outcome.MALFORMED
    paced = decide(Behaviour(ttft_ms=250, tokens_per_second=50), 1, 0)
    assert (paced.ttft_s, paced.seconds_per_token) == (0.25, 0.02)


def test_profiles_merge_model_overrides_and_refuse_unknown_fields() -> None:
    profile = build_profile({"ttft_ms": 100, "models": {"m": {"error_rate": 1}}, "seed": 9}, default_seed=1)

    assert profile.seed == 9
    assert profile.for_model("m") == Behaviour(ttft_ms=100, error_rate=1)
    assert profile.for_model("other") == Behaviour(ttft_ms=100)
    assert build_profile(profile.to_json(), default_seed=1).to_json() == profile.to_json()
    with pytest.raises(ProfileError, match="unknown field"):
        build_profile({"latency": 5}, default_seed=1)
    with pytest.raises(ProfileError, match="must be a JSON object"):
        build_profile([], default_seed=1)


def _spec(**fields: Any) -> AnswerSpec:
    return AnswerSpec(model="m", prompt_tokens=10, **fields)


def test_plan_caps_json_at_the_client_maximum() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string", "minLength": 60}}, "required": ["a"]}

    answer = plan(_spec(output="json_schema", json_schema=schema, max_tokens=3), Behaviour(), 5)

    [choice] = answer.choices
    assert choice.finish_reason == "length" and len(choice.tokens) == 3
    assert answer.completion_tokens == 3


def test_plan_tool_arguments_are_always_an_object() -> None:
    answer = plan(_spec(tools=(ToolSpec("loose", {"type": "string"}),)), Behaviour(), 5)

    [call] = answer.choices[0].tool_calls
    assert call.arguments == "{}" and call.pieces == ["{", "}"]
    assert answer.completion_tokens == 1 + 2  # the call's start and its two pieces
