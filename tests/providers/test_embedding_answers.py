"""An OpenAI-format embeddings answer is read into floats in input order, whatever form its vectors take
(numbers checked and converted in C, base64, integers, booleans as before), and a malformed one is
explained."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import pytest

from tokenmux.errors import ProviderMalformed, ProviderRejected
from tokenmux.providers.openai_embeddings import read_answer


def _rejection(error: Any) -> ProviderRejected:
    return ProviderRejected(str(error), upstream_status=200)


def _packed(vector: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


ANSWERS = {
    "in order": (
        {"data": [{"index": 0, "embedding": [0.5, -1.25]}, {"index": 1, "embedding": [2, 3]}]},
        [[0.5, -1.25], [2.0, 3.0]],
    ),
    "out of order": (
        {"data": [{"index": 1, "embedding": [0.25, 1.0]}, {"index": 0, "embedding": [1e-7, -2.5]}]},
        [[1e-7, -2.5], [0.25, 1.0]],
    ),
    "no index": ({"data": [{"embedding": [1.5, 2.5]}, {"embedding": [3.5, 4.5]}]}, [[1.5, 2.5], [3.5, 4.5]]),
    "base64 beside numbers": (
        {"data": [{"index": 0, "embedding": _packed([0.5, 0.25])}, {"embedding": [1, 2]}]},
        [[0.5, 0.25], [1.0, 2.0]],
    ),
    "booleans, read as numbers as before": (
        {"data": [{"embedding": [True, 0.5]}, {"embedding": [0.5, False]}]},
        [[1.0, 0.5], [0.5, 0.0]],
    ),
}


@pytest.mark.parametrize(("answer", "vectors"), ANSWERS.values(), ids=ANSWERS.keys())
def test_vectors_are_floats_in_input_order(answer: dict[str, Any], vectors: list[list[float]]) -> None:
    read = read_answer(json.dumps(answer).encode(), 200, "asked-model", 2, _rejection)
    assert read.vectors == vectors
    assert all(type(x) is float for v in read.vectors for x in v)
    assert read.model == "asked-model" and read.usage.prompt_tokens == 0


def test_the_answers_model_and_usage_are_kept() -> None:
    answer = {
        "data": [{"embedding": [0.5]}, {"embedding": [0.75]}],
        "model": "text-embedding-3-small-2024",
        "usage": {"prompt_tokens": 9, "total_tokens": 9},
    }
    read = read_answer(json.dumps(answer).encode(), 200, "asked-model", 2, _rejection)
    assert (read.model, read.usage.prompt_tokens) == ("text-embedding-3-small-2024", 9)


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ({"data": [{"index": 0, "embedding": [0.5]}]}, "no vector for input 1"),
        ({"data": [{"index": 5, "embedding": [0.5]}, {"index": 1, "embedding": [0.5]}]}, "valid index"),
        ({"data": [{"embedding": "not base64!"}, {"embedding": [0.5]}]}, "neither numbers nor base64"),
        ({"data": [{"embedding": ["0.5"]}, {"embedding": [0.5]}]}, "neither numbers nor base64"),
        ({"object": "list"}, "without data"),
    ],
)
def test_a_malformed_answer_is_explained(answer: dict[str, Any], says: str) -> None:
    with pytest.raises(ProviderMalformed, match=says):
        read_answer(json.dumps(answer).encode(), 200, "asked-model", 2, _rejection)


def test_an_error_object_in_a_2xx_answer_is_the_providers_rejection() -> None:
    raw = json.dumps({"error": {"message": "quota exceeded"}}).encode()
    with pytest.raises(ProviderRejected, match="quota"):
        read_answer(raw, 200, "asked-model", 2, _rejection)
