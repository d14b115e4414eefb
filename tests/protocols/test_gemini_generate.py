"""Decoding Gemini ``generateContent`` bodies into the hub shape: what each field becomes, and every field
of a full request given a value of the wrong type answers a 400, never an exception of another kind."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tokenmux.errors import InvalidRequest
from tokenmux.protocols.gemini_generate import decode_generate_request, json_schema_of

FULL: dict[str, Any] = {
    "contents": [
        {
            "role": "user",
            "parts": [{"text": "Hi"}, {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}],
        },
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}, "id": "c1"}}]},
        {
            "role": "user",
            "parts": [{"functionResponse": {"name": "f", "id": "c1", "response": {"output": "x"}}}],
        },
    ],
    "systemInstruction": {"parts": [{"text": "Be brief."}]},
    "tools": [
        {
            "functionDeclarations": [
                {
                    "name": "f",
                    "description": "A function.",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"a": {"type": "INTEGER", "nullable": True}},
                    },
                }
            ]
        }
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
    "generationConfig": {
        "temperature": 1,
        "topP": 0.5,
        "topK": 3,
        "maxOutputTokens": 10,
        "stopSequences": ["END"],
        "candidateCount": 1,
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {"n": {"type": "STRING"}},
            "propertyOrdering": ["n"],
        },
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
        "responseLogprobs": True,
        "logprobs": 2,
        "seed": 1,
        "presencePenalty": 0.1,
        "frequencyPenalty": 0.1,
        "responseModalities": ["TEXT"],
    },
    "safetySettings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_ONLY_HIGH"}],
    "provider": {"only": ["openai"]},
    "models": ["anthropic/claude-haiku-4.5"],
}
WRONG: list[Any] = [None, 1, -1, 1.5, "x", "", True, [], [1], {}, {"a": 1}, [{}], [None], [[]]]


def decode(body: dict[str, Any], stream: bool = False) -> Any:
    return decode_generate_request(json.dumps(body).encode(), "openai/gpt-4.1-nano", stream=stream)


def test_a_full_request_in_the_hub_shape() -> None:
    request = decode(FULL, stream=True)
    assert request.stream and request.inbound == "gemini" and request.include_thoughts
    assert request.fallback_models == ("anthropic/claude-haiku-4.5",)
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hi"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "x"},
    ]
    params = request.params
    assert params["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "description": "A function.",
                "parameters": {"type": "object", "properties": {"a": {"type": ["integer", "null"]}}},
            },
        }
    ]
    assert params["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert params["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "response",
            "schema": {"type": "object", "properties": {"n": {"type": "string"}}},
        },
    }
    assert params["reasoning"] == {"max_tokens": 2048, "exclude": False}
    assert params["reasoning_effort"] == "medium"
    assert request.max_output_tokens == params["max_completion_tokens"] == 10
    assert params["stop"] == ["END"] and params["top_k"] == 3 and params["top_logprobs"] == 2
    assert "safetySettings" in params  # routing leaves it out and lists it


def test_snake_case_fields_are_read_too() -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
        "system_instruction": {"parts": [{"text": "S"}]},
        "generation_config": {"max_output_tokens": 5, "thinking_config": {"thinking_level": "LOW"}},
    }
    request = decode(body)
    assert request.messages[0] == {"role": "system", "content": "S"}
    assert request.params["max_completion_tokens"] == 5 and request.params["reasoning_effort"] == "low"


def test_openapi_schemas_become_json_schema() -> None:
    schema = {
        "type": "ARRAY",
        "items": {"type": "STRING", "enum": ["a", "b"], "example": "a"},
        "anyOf": [{"type": "TYPE_UNSPECIFIED"}],
    }
    assert json_schema_of(schema) == {
        "type": "array",
        "items": {"type": "string", "enum": ["a", "b"]},
        "anyOf": [{}],
    }


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if prefix:
        yield prefix
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _paths(sub, (*prefix, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value):
            yield from _paths(sub, (*prefix, i))


def test_a_wrong_type_anywhere_is_a_400_or_accepted() -> None:
    tried = refused = 0
    for path in _paths(FULL):
        for wrong in WRONG:
            body = copy.deepcopy(FULL)
            holder = body
            for key in path[:-1]:
                holder = holder[key]
            holder[path[-1]] = wrong
            tried += 1
            try:
                decode(body)
            except InvalidRequest:
                refused += 1  # anything else fails the test
    assert tried > 1000 and refused > tried // 2


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"candidateCount": 2}, "candidateCount"),
        ({"responseModalities": ["IMAGE"]}, "TEXT"),
        ({"responseMimeType": "text/x.enum"}, "x.enum"),
        ({"responseMimeType": ["application/json"]}, "responseMimeType"),
        ({"responseSchema": {"type": "OBJECT"}, "responseJsonSchema": {"type": "object"}}, "not both"),
        ({"thinkingConfig": {"thinkingBudget": -2}}, "thinkingBudget"),
    ],
)
def test_refused_generation_configs(config: dict[str, Any], says: str) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}], "generationConfig": config}
    with pytest.raises(InvalidRequest) as caught:
        decode(body)
    assert says in caught.value.message
