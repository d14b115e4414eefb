"""Responses requests decoded into the hub shape, and hub answers encoded as Responses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from openai.types.responses import Response

from tokenmux.errors import InvalidRequest
from tokenmux.protocols.openai_responses import decode_responses_request
from tokenmux.protocols.responses_answer import (
    ResponsesStreamEncoder,
    encode_response,
    encrypted_reasoning,
    reasoning_blocks_of,
)
from tokenmux.types import ChatResponse, StreamEvent, Usage

THINKING = [{"type": "thinking", "thinking": "Hmm.", "signature": "c2ln"}]


def decode(**body: Any) -> Any:
    return decode_responses_request(json.dumps({"model": "openai/gpt-4.1-nano", **body}).encode())


def test_a_tool_loop_becomes_chat_messages() -> None:
    request = decode(
        instructions="Be brief.",
        input=[
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris and Rome?"}]},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [],
                "encrypted_content": encrypted_reasoning(THINKING),
            },
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
            },
            {
                "type": "function_call",
                "call_id": "call_a",
                "name": "weather",
                "arguments": '{"city":"Paris"}',
            },
            {"type": "function_call", "call_id": "call_b", "name": "weather", "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "call_a", "output": "21 C"},
            {
                "type": "function_call_output",
                "call_id": "call_b",
                "output": [{"type": "input_text", "text": "25 C"}],
            },
        ],
    )
    assert request.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "system", "content": "Use metric units."},
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_blocks": THINKING,
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Rome"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "21 C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "25 C"},
    ]
    assert request.inbound == "responses"


def test_parameters_take_their_chat_names() -> None:
    request = decode(
        input="Hi",
        max_output_tokens=100,
        temperature=0.5,
        top_p=0.9,
        tools=[
            {"type": "function", "name": "a", "parameters": {"type": "object"}, "strict": True},
            {"type": "function", "name": "b"},
        ],
        tool_choice={
            "type": "allowed_tools",
            "mode": "required",
            "tools": [{"type": "function", "name": "b"}],
        },
        parallel_tool_calls=False,
        text={
            "format": {"type": "json_schema", "name": "p", "schema": {"type": "object"}, "strict": True},
            "verbosity": "low",
        },
        reasoning={"effort": "high", "summary": "auto"},
        include=["reasoning.encrypted_content", "message.output_text.logprobs"],
        safety_identifier="user-7",
        metadata={"k": "v"},
        store=False,
        extra_field=1,
        provider={"only": ["openai"]},
        models=["openai/gpt-4.1-mini"],
    )
    assert request.params == {
        "max_completion_tokens": 100,
        "temperature": 0.5,
        "top_p": 0.9,
        "tools": [
            {
                "type": "function",
                "function": {"name": "b", "parameters": {"type": "object", "properties": {}}},
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "p", "schema": {"type": "object"}, "strict": True},
        },
        "verbosity": "low",
        "reasoning_effort": "high",
        "logprobs": True,
        "user": "user-7",
        "extra_field": 1,
    }
    assert request.max_output_tokens == 100 and request.fallback_models == ("openai/gpt-4.1-mini",)
    assert request.provider.only == frozenset({"openai"})
    assert request.echo["metadata"] == {"k": "v"} and request.echo["reasoning"] == {
        "effort": "high",
        "summary": "auto",
    }
    assert request.echo["tool_choice"]["type"] == "allowed_tools" and len(request.echo["tools"]) == 2


def test_reasoning_that_is_not_ours_is_left_out() -> None:
    request = decode(
        input=[
            {"role": "user", "content": "Hi"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "x"}],
                "encrypted_content": "gAAAA-openai",
            },
            {"type": "reasoning", "id": "rs_2", "summary": [], "encrypted_content": "tokenmux.v1.!!!"},
            {"role": "assistant", "content": "Hello"},
        ]
    )
    assert request.messages[1] == {"role": "assistant", "content": "Hello"}
    assert reasoning_blocks_of("tokenmux.v1.W3sidHlwZSI6ICJ0ZXh0In1d") is None  # [{"type": "text"}]
    assert reasoning_blocks_of(encrypted_reasoning(THINKING)) == THINKING


def test_images_and_files_become_chat_parts() -> None:
    request = decode(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Look"},
                    {"type": "input_image", "image_url": "https://example.com/a.png", "detail": "high"},
                    {
                        "type": "input_file",
                        "file_data": "data:application/pdf;base64,JVBE",
                        "filename": "a.pdf",
                    },
                ],
            }
        ]
    )
    assert request.messages[0]["content"] == [
        {"type": "text", "text": "Look"},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
        {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": "Hi", "previous_response_id": "resp_1"}, "previous_response_id"),
        ({"input": "Hi", "conversation": "conv_1"}, "conversation"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
        ({"input": [{"type": "function_call_output", "call_id": "c", "output": 3}]}, "input[0].output"),
        ({"input": "Hi", "tool_choice": {"type": "file_search"}}, "tool_choice"),
        ({"input": "Hi", "metadata": {"k": 1}}, "metadata"),
        ({"input": "Hi", "max_output_tokens": 0}, "max_output_tokens"),
        ({"input": "Hi", "include": "reasoning.encrypted_content"}, "include"),
        ({"instructions": "only instructions"}, "input"),
    ],
)
def test_refusals_name_the_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        decode(**body)
    assert caught.value.param == param and caught.value.message


def test_whole_answer_lists_reasoning_message_and_calls_in_order() -> None:
    message = {
        "role": "assistant",
        "content": "Checking.",
        "reasoning": "Hmm.",
        "reasoning_blocks": THINKING,
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
        ],
    }
    response = ChatResponse(
        id="x",
        created=1,
        model="m",
        choices=[{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        usage=None,
    )
    body = encode_response(
        response,
        response_id="gen-1",
        created_at=1,
        model="anthropic/claude-haiku-4.5",
        provider="anthropic",
        echo=decode(input="Hi").echo,
        usage=Usage(prompt_tokens=10, completion_tokens=5, reasoning_tokens=2),
        cost=0.001,
    )
    parsed = Response.model_validate_json(body)
    assert [item.type for item in parsed.output] == ["reasoning", "message", "function_call"]
    reasoning = parsed.output[0]
    assert reasoning.type == "reasoning" and reasoning.encrypted_content
    assert reasoning_blocks_of(reasoning.encrypted_content) == THINKING
    assert parsed.output_text == "Checking." and parsed.status == "completed"
    assert parsed.usage is not None and parsed.usage.output_tokens_details.reasoning_tokens == 2


def test_a_cut_answer_is_incomplete() -> None:
    response = ChatResponse(
        id="x",
        created=1,
        model="m",
        choices=[
            {"index": 0, "message": {"role": "assistant", "content": "Once"}, "finish_reason": "length"}
        ],
        usage=None,
    )
    body = json.loads(
        encode_response(
            response, response_id="g", created_at=1, model="m", provider="p", echo={}, usage=Usage(), cost=0.0
        )
    )
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"


def _events(frames: bytes) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in frames.decode().splitlines() if line.startswith("data: ")]


def test_stream_of_interleaved_calls_text_and_refusal() -> None:
    encoder = ResponsesStreamEncoder("gen-1", 1, "m", "p", decode(input="Hi").echo)
    call = {"type": "function", "function": {"name": "f", "arguments": ""}}
    frames = b"".join(
        [
            encoder.event(StreamEvent(delta={"reasoning": "Think"})),
            encoder.event(StreamEvent(delta={"reasoning_signature": "c2ln"})),
            encoder.event(StreamEvent(delta={"content": "Hel"})),
            encoder.event(StreamEvent(delta={"content": "lo"})),
            encoder.event(StreamEvent(delta={"refusal": "No."})),
            encoder.event(StreamEvent(delta={"tool_calls": [{"index": 0, "id": "c0", **call}]})),
            encoder.event(StreamEvent(delta={"tool_calls": [{"index": 1, "id": "c1", **call}]})),
            encoder.event(
                StreamEvent(delta={"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]})
            ),
            encoder.event(StreamEvent(delta={"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]})),
            encoder.event(StreamEvent(delta={"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]})),
            encoder.finish(Usage(prompt_tokens=3, completion_tokens=4), 0.5, "tool_calls"),
        ]
    )
    events = _events(frames)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    final = Response.model_validate(events[-1]["response"])
    assert [item.type for item in final.output] == ["reasoning", "message", "function_call", "function_call"]
    message = final.output[1]
    assert message.type == "message" and [p.type for p in message.content] == ["output_text", "refusal"]
    assert final.output_text == "Hello"
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.arguments) for c in calls] == [("c0", '{"a":1}'), ("c1", "{}")]
    assert reasoning_blocks_of(final.output[0].encrypted_content or "") == [
        {"type": "thinking", "thinking": "Think", "signature": "c2ln"}
    ]
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert len(done) == 4 and all(e["item"]["status"] != "in_progress" for e in done if "status" in e["item"])


def test_an_output_that_names_its_tool_instead_of_a_call_is_user_context() -> None:
    request = decode(
        input=[
            {"role": "user", "content": "Go"},
            {
                "type": "function_call_output",
                "name": "goal_objective",
                "namespace": "agent",
                "output": "water",
            },
        ]
    )
    assert request.messages[1] == {"role": "user", "content": "[agent.goal_objective] water"}
