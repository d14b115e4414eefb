"""The OpenAI Chat Completions format, driven by the official SDK and checked with its types."""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import httpx
import msgspec
import openai
import pytest
from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageToolCallUnion,
)
from sim_test_support import collect_stream, openai_base_url

from tokenmux.simulator.control_client import PrefixControl

HELLO: list[Any] = [{"role": "user", "content": "Hello there"}]
MODEL = "gpt-4.1-nano"

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather at a place",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "hourly": {"type": "boolean"},
                "coordinates": {
                    "type": "object",
                    "properties": {"lat": {"type": "number"}, "lon": {"type": "number"}},
                    "required": ["lat", "lon"],
                },
                "alerts": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["city", "unit", "coordinates"],
            "additionalProperties": False,
        },
    },
}
TIME_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}, "required": ["zone"]},
    },
}


def _function_calls(
    calls: list[ChatCompletionMessageToolCallUnion] | None,
) -> list[ChatCompletionMessageFunctionToolCall]:
    assert calls, "expected tool calls"
    assert all(isinstance(c, ChatCompletionMessageFunctionToolCall) for c in calls)
    return calls  # type: ignore[return-value]


# -- text ---------------------------------------------------------------------------------------------


def test_text_completion_is_a_valid_chat_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO)

    assert isinstance(completion, ChatCompletion)
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.id.startswith("chatcmpl-")
    [choice] = completion.choices
    assert choice.message.role == "assistant"
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    content = choice.message.content
    assert content and content[0].isupper() and content.endswith((".", "!", "?"))
    assert len(content.split()) == 24  # the default profile's completion_tokens, one word each
    usage = completion.usage
    assert usage is not None
    # "Hello there": 11 bytes -> 2 tokens, plus 3 for the message and 3 for the reply's framing.
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (8, 24, 32)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 0


def test_prompt_tokens_are_estimated_from_the_messages_text_and_images(client: openai.OpenAI) -> None:
    messages: Any = [
        {"role": "system", "content": "x" * 400},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "y" * 40},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    completion = client.chat.completions.create(model=MODEL, messages=messages)

    assert completion.usage is not None
    # (400 + 40) / 4 text tokens, 3 per message, 3 for the reply, 85 for the image.
    assert completion.usage.prompt_tokens == 110 + 6 + 3 + 85


@pytest.mark.parametrize("parameter", ["max_tokens", "max_completion_tokens"])
def test_a_client_maximum_below_the_answer_length_ends_with_length(
    client: openai.OpenAI, parameter: str
) -> None:
    capped = client.chat.completions.create(model=MODEL, messages=HELLO, **{parameter: 5})  # type: ignore[call-overload]
    roomy = client.chat.completions.create(model=MODEL, messages=HELLO, **{parameter: 100})  # type: ignore[call-overload]

    assert capped.choices[0].finish_reason == "length"
    assert capped.usage is not None and capped.usage.completion_tokens == 5
    assert len((capped.choices[0].message.content or "").split()) == 5
    assert roomy.choices[0].finish_reason == "stop"
    assert roomy.usage is not None and roomy.usage.completion_tokens == 24


def test_stop_sequence_ends_the_text_before_it(client: openai.OpenAI) -> None:
    # Every token but the first starts with a space, so a space stops the answer after one word.
    stopped = client.chat.completions.create(model=MODEL, messages=HELLO, stop=[" "])
    never = client.chat.completions.create(model=MODEL, messages=HELLO, stop=["@@never@@"])

    content = stopped.choices[0].message.content
    assert content and " " not in content
    assert stopped.choices[0].finish_reason == "stop"
    assert stopped.usage is not None and stopped.usage.completion_tokens == 1
    assert len((never.choices[0].message.content or "").split()) == 24


def test_stop_wins_over_length_when_both_apply(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, stop=" ", max_tokens=3)

    assert completion.choices[0].finish_reason == "stop"
    assert " " not in (completion.choices[0].message.content or " ")


def test_n_gives_that_many_different_choices(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, n=3)

    assert [c.index for c in completion.choices] == [0, 1, 2]
    assert len({c.message.content for c in completion.choices}) == 3
    assert completion.usage is not None and completion.usage.completion_tokens == 3 * 24


def test_same_request_gets_the_same_content(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=MODEL, messages=HELLO)
    again = client.chat.completions.create(model=MODEL, messages=HELLO)
    other = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Bye"}])

    assert first.choices[0].message.content == again.choices[0].message.content
    assert first.choices[0].message.content != other.choices[0].message.content
    assert first.id != again.id


def test_logprobs_cover_every_token_with_the_requested_alternatives(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True, top_logprobs=3)

    choice = completion.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content is not None
    entries = choice.logprobs.content
    assert "".join(e.token for e in entries) == choice.message.content
    assert len(entries) == 24
    for entry in entries:
        assert entry.logprob <= 0
        assert entry.bytes == list(entry.token.encode())
        assert len(entry.top_logprobs) == 3
        assert entry.top_logprobs[0].token == entry.token
        ranked = [t.logprob for t in entry.top_logprobs]
        assert ranked == sorted(ranked, reverse=True)


def test_logprobs_without_alternatives(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True)

    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert all(entry.top_logprobs == [] for entry in logprobs.content)


# -- structured output ------------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Address(msgspec.Struct, forbid_unknown_fields=True):
    street: str
    postcode: Annotated[str, msgspec.Meta(min_length=5, max_length=8)]


class Person(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    age: Annotated[int, msgspec.Meta(ge=18, le=99)]
    score: Annotated[float, msgspec.Meta(gt=0, lt=1)]
    kind: Literal["staff", "guest"]
    colour: Colour
    active: bool
    tags: Annotated[list[str], msgspec.Meta(min_length=1, max_length=3)]
    address: Address
    friends: list[Person]
    # msgspec's schema says only "string" for a datetime; the format is what a real schema would carry.
    born: Annotated[datetime, msgspec.Meta(extra_json_schema={"format": "date-time"})]
    id: UUID
    nickname: str | None = None


def test_json_schema_output_validates_against_the_schema(client: openai.OpenAI) -> None:
    schema = msgspec.json.schema(Person)  # nested $defs and $ref, enums, bounds, a recursive type
    completion = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        response_format={"type": "json_schema", "json_schema": {"name": "person", "schema": schema}},
    )

    content = completion.choices[0].message.content
    assert content is not None
    person = msgspec.json.decode(content, type=Person, strict=True)
    assert 18 <= person.age <= 99
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens > 10


def test_json_object_output_is_a_json_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=HELLO, response_format={"type": "json_object"}
    )

    document = json.loads(completion.choices[0].message.content or "")
    assert isinstance(document, dict) and document


# -- tools ------------------------------------------------------------------------------------------


def test_tools_get_a_tool_call_with_arguments_from_the_schema(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=HELLO, tools=[WEATHER_TOOL])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = _function_calls(choice.message.tool_calls)
    assert call.type == "function"
    assert call.id.startswith("call_") and int(call.id[5:], 16) >= 0
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    assert (
        {"city", "unit", "coordinates"}
        <= arguments.keys()
        <= set(WEATHER_TOOL["function"]["parameters"]["properties"])
    )
    assert arguments["unit"] in ("celsius", "fahrenheit")
    assert isinstance(arguments["city"], str)
    assert isinstance(arguments["coordinates"]["lat"], float | int)
    assert 1 <= arguments.get("days", 1) <= 7
    assert isinstance(arguments.get("hourly", True), bool)
    assert all(isinstance(a, str) for a in arguments.get("alerts", []))


def test_required_with_two_tools_calls_both_in_parallel(client: openai.OpenAI) -> None:
    parallel = client.chat.completions.create(
        model=MODEL, messages=HELLO, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required"
    )
    single = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice="required",
        parallel_tool_calls=False,
    )

    calls = _function_calls(parallel.choices[0].message.tool_calls)
    assert sorted(c.function.name for c in calls) == ["get_time", "get_weather"]
    assert len({c.id for c in calls}) == 2
    assert len(single.choices[0].message.tool_calls or []) == 1


def test_a_named_tool_choice_calls_that_function(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=HELLO,
        tools=[WEATHER_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )

    [call] = _function_calls(completion.choices[0].message.tool_calls)
    assert call.function.name == "get_time"
    assert isinstance(json.loads(call.function.arguments)["zone"], str)


def test_tool_choice_none_answers_with_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL, messages=HELLO, tools=[WEATHER_TOOL], tool_choice="none"
    )

    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content


def test_a_tool_result_ends_the_round_trip_with_text(client: openai.OpenAI) -> None:
    first = client.chat.completions.create(model=MODEL, messages=HELLO, tools=[WEATHER_TOOL])
    call = _function_calls(first.choices[0].message.tool_calls)[0]
    messages: Any = [
        *HELLO,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 21}'},
    ]
    second = client.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER_TOOL])

    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.tool_calls is None
    assert second.choices[0].message.content


# -- streams ----------------------------------------------------------------------------------------


def test_stream_sends_role_then_a_chunk_per_token_then_finish_and_usage(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model=MODEL, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)

    assert all(isinstance(c, ChatCompletionChunk) and c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    role, *content, finish, usage = chunks
    assert role.choices[0].delta.role == "assistant"
    assert len(content) == 24
    assert all(c.choices[0].delta.content and c.choices[0].finish_reason is None for c in content)
    assert all(c.choices[0].delta.content.startswith(" ") for c in content[1:])  # type: ignore[union-attr]
    assert finish.choices[0].finish_reason == "stop"
    assert usage.choices == []
    assert usage.usage is not None and usage.usage.completion_tokens == 24
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_without_include_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True, max_tokens=4))

    assert chunks[-1].choices[0].finish_reason == "length"
    assert all(c.usage is None and c.choices for c in chunks)
    assert len(chunks) == 1 + 4 + 1


def test_raw_stream_ends_with_done(http: httpx.Client, prefix: str) -> None:
    body = {"model": MODEL, "messages": HELLO, "stream": True}
    response = http.post(f"/{prefix}/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"})

    assert response.headers["content-type"].startswith("text/event-stream")
    events = [e for e in response.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_stream_logprobs_come_with_each_token(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HELLO, stream=True, logprobs=True, top_logprobs=2
        )
    )

    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    for chunk in content_chunks:
        logprobs = chunk.choices[0].logprobs
        assert logprobs is not None and logprobs.content is not None
        [entry] = logprobs.content
        assert entry.token == chunk.choices[0].delta.content
        assert len(entry.top_logprobs) == 2


def test_stream_tool_call_arguments_arrive_in_pieces(client: openai.OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model=MODEL, messages=HELLO, tools=[WEATHER_TOOL, TIME_TOOL], tool_choice="required", stream=True
        )
    )

    calls = collect_stream(chunks).tool_calls
    assert sorted(c["name"] for c in calls.values()) == ["get_time", "get_weather"]
    for call in calls.values():
        assert call["id"].startswith("call_")
        assert call["pieces"] > 1
        assert isinstance(json.loads(call["arguments"]), dict)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_stream_with_n_interleaves_the_choices(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HELLO, stream=True, n=2, max_tokens=3))

    texts = collect_stream(chunks).texts
    assert set(texts) == {0, 1}
    assert all(len(text.split()) == 3 for text in texts.values())
    finishes = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert sorted(f.index for f in finishes) == [0, 1]


# -- requests the provider refuses ------------------------------------------------------------------


def test_missing_key_is_401_in_openai_error_shape(http: httpx.Client, prefix: str) -> None:
    response = http.post(f"/{prefix}/v1/chat/completions", json={"model": MODEL, "messages": HELLO})

    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "API key" in error["message"]


@pytest.mark.parametrize("authorization", ["Basic dXNlcjpwYXNz", "Bearer", "sk-no-scheme"])
def test_anything_but_a_bearer_token_is_401(http: httpx.Client, prefix: str, authorization: str) -> None:
    response = http.post(
        f"/{prefix}/v1/chat/completions",
        json={"model": MODEL, "messages": HELLO},
        headers={"Authorization": authorization},
    )

    assert response.status_code == 401


def test_sdk_raises_authentication_error_for_a_401(sim_server: Any, prefix: str) -> None:
    # The SDK always sends its key; take it away to see the SDK's side of a 401.
    with (
        openai.OpenAI(
            base_url=openai_base_url(sim_server, prefix), api_key="unused", max_retries=0
        ) as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        client.chat.completions.create(model=MODEL, messages=HELLO, extra_headers={"Authorization": ""})
    assert caught.value.status_code == 401


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HELLO}, "model"),
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": [{"content": "no role"}]}, "messages[0]"),
        ({"model": MODEL, "messages": HELLO, "n": 0}, "n"),
        ({"model": MODEL, "messages": HELLO, "max_tokens": "ten"}, "max_tokens"),
        ({"model": MODEL, "messages": HELLO, "logprobs": "yes"}, "logprobs"),
        ({"model": MODEL, "messages": HELLO, "top_logprobs": 2}, "top_logprobs"),
        ({"model": MODEL, "messages": HELLO, "stream_options": {"include_usage": True}}, "stream_options"),
        ({"model": MODEL, "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"model": MODEL, "messages": HELLO, "tools": [{"type": "function"}]}, "tools[0]"),
        ({"model": MODEL, "messages": HELLO, "tool_choice": "auto"}, "tool_choice"),
        (
            {
                "model": MODEL,
                "messages": HELLO,
                "tools": [WEATHER_TOOL],
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            "tool_choice",
        ),
        ({"model": MODEL, "messages": HELLO, "response_format": {"type": "xml"}}, "response_format.type"),
    ],
)
def test_invalid_requests_are_400_naming_the_parameter(
    http: httpx.Client, prefix: str, body: dict[str, Any], param: str
) -> None:
    response = http.post(f"/{prefix}/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"})

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_unparseable_json_is_400(http: httpx.Client, prefix: str) -> None:
    response = http.post(
        f"/{prefix}/v1/chat/completions", content=b'{"model": "x", ', headers={"Authorization": "Bearer k"}
    )

    assert response.status_code == 400
    assert "JSON" in response.json()["error"]["message"]


def test_sdk_raises_bad_request_for_a_refused_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model=MODEL, messages=HELLO, n=0)
    assert caught.value.param == "n"


def test_unknown_routes_and_methods(http: httpx.Client, prefix: str) -> None:
    get = http.get(f"/{prefix}/v1/chat/completions")
    unknown = http.post(f"/{prefix}/v1/audio/speech", json={})
    reserved = http.post("/anthropic/v1/chat/completions", json={}, headers={"Authorization": "Bearer k"})

    assert get.status_code == 405 and get.headers["allow"] == "POST"
    assert unknown.status_code == 404 and "Unknown request URL" in unknown.json()["error"]["message"]
    assert reserved.status_code == 404


def test_health(http: httpx.Client) -> None:
    assert http.get("/health").status_code == 200


def test_every_parameter_reaches_the_request_log_unchanged(
    client: openai.OpenAI, control: PrefixControl
) -> None:
    sent: dict[str, Any] = {
        "temperature": 0.25,
        "top_p": 0.5,
        "frequency_penalty": 0.1,
        "presence_penalty": -0.2,
        "seed": 42,
        "logit_bias": {"1234": -5},
        "user": "someone",
        "max_completion_tokens": 9,
        "stop": ["\n\n"],
    }
    client.chat.completions.create(model=MODEL, messages=HELLO, **sent)

    [logged] = control.requests()
    assert logged["method"] == "POST"
    assert logged["path"] == f"/{control.prefix}/v1/chat/completions"
    assert logged["body"] == {"model": MODEL, "messages": HELLO, **sent}
    assert logged["headers"]["authorization"] == "<redacted>"
    assert logged["headers"]["content-type"] == "application/json"
    assert "sk-test-key" not in json.dumps(logged)
