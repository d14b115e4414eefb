"""The OpenAI Responses API in front of every catalog model, with the official openai SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response

from gateway_support import NANO, generation

# Tests that only look at their own answers and records share a gateway; those that read which endpoint an
# unpinned request reached, or make endpoints fail, have their own (see own_gateway).
pytestmark = pytest.mark.shared_gateway

HAIKU = "anthropic/claude-haiku-4.5"
GEMINI = "google/gemini-2.5-flash"
GPT_OSS = "openai/gpt-oss-20b"  # at OpenAI-compatible servers (Groq first), which take Chat Completions
MAVERICK = "meta-llama/llama-4-maverick"  # the same, with images
# OpenAI's own endpoints take the Responses API as it came; every other provider gets it translated.
MODELS = [NANO, GPT_OSS, HAIKU, GEMINI]
AT_GROQ = {"provider": {"only": ["groq"]}}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
NAMESPACE = {
    "type": "namespace",
    "name": "agents",
    "description": "Sub-agents",
    "tools": [{**WEATHER, "name": "spawn_agent"}],
}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Apply a patch"}
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_text_answer_with_usage_cost_and_record(gateway: Any, sim: Any) -> None:
    client = gateway.openai()
    raw = client.responses.with_raw_response.create(
        model=NANO,
        instructions="Be brief.",
        input="Hello",
        temperature=0.3,
        max_output_tokens=60,
        metadata={"ticket": "T-1"},
    )
    response = raw.parse()
    assert isinstance(response, Response)
    assert response.status == "completed" and response.output_text
    assert response.model == NANO and response.metadata == {"ticket": "T-1"}
    assert response.instructions == "Be brief." and response.temperature == 0.3
    usage = response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    cost = (usage.model_extra or {})["cost"]
    assert cost == pytest.approx((usage.input_tokens * 0.10 + usage.output_tokens * 0.40) / 1e6, rel=1e-9)
    assert raw.headers["x-generation-id"] == response.id
    (received,) = sim.requests("openai")
    body = received["body"]
    assert (
        body["input"] == "Hello" and body["instructions"] == "Be brief." and body["model"] == "gpt-4.1-nano"
    )
    assert body["temperature"] == 0.3 and body["max_output_tokens"] == 60
    assert body["store"] is False and "include" not in body  # not a reasoning model
    record = generation(gateway, response.id)
    assert record["provider"] in ("openai", "azure") and record["tokens_completion"] == usage.output_tokens
    assert record["usage"] == pytest.approx(cost, rel=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_streamed_text_equals_the_whole_answer(gateway: Any, model: str) -> None:
    client = gateway.openai()
    args: dict[str, Any] = {"model": model, "input": "Tell me something", "max_output_tokens": 80}
    whole = client.responses.create(**args)
    with client.responses.stream(**args) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert streamed == final.output_text == whole.output_text
    assert final.usage is not None and (final.usage.model_extra or {})["cost"] > 0
    assert final.id != whole.id and final.status == "completed"


def test_stream_true_gives_the_typed_events(gateway: Any) -> None:
    client = gateway.openai()
    events = list(client.responses.create(model=NANO, input="Hi", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == events[-1].response.output_text


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_tool_round_trip_keeps_call_ids(gateway: Any, model: str, stream: bool) -> None:
    client = gateway.openai()
    conversation: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    if stream:
        with client.responses.stream(model=model, input=conversation, tools=[WEATHER]) as s:
            first = s.get_final_response()
    else:
        first = client.responses.create(model=model, input=conversation, tools=[WEATHER])
    calls = [item for item in first.output if item.type == "function_call"]
    assert calls and calls[0].name == "get_weather" and "city" in json.loads(calls[0].arguments)
    conversation += [item.model_dump(exclude_none=True) for item in first.output]
    conversation += [{"type": "function_call_output", "call_id": c.call_id, "output": "21 C"} for c in calls]
    second = client.responses.create(model=model, input=conversation, tools=[WEATHER])
    assert second.status == "completed" and second.output_text
    assert not [item for item in second.output if item.type == "function_call"]


def test_tool_calls_reach_a_chat_provider_with_their_ids(gateway: Any, sim: Any) -> None:
    client = gateway.openai()
    first = client.responses.create(
        model=GPT_OSS, input="Weather in Paris?", tools=[WEATHER], tool_choice="required", extra_body=AT_GROQ
    )
    call = next(item for item in first.output if item.type == "function_call")
    client.responses.create(
        model=GPT_OSS,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "21 C"},
        ],
        tools=[WEATHER],
        parallel_tool_calls=False,
        extra_body=AT_GROQ,
    )
    body = sim.requests("groq")[-1]["body"]
    assistant, tool = body["messages"][1:]
    assert assistant["tool_calls"][0]["id"] == call.call_id and tool["tool_call_id"] == call.call_id
    assert body["tools"][0]["function"]["name"] == "get_weather" and body["parallel_tool_calls"] is False
    assert sim.requests("groq")[0]["body"]["tool_choice"] == "required"


@pytest.mark.parametrize("model", MODELS)
def test_image_input(gateway: Any, model: str) -> None:
    client = gateway.openai()
    response = client.responses.create(
        model=model,
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in this image?"},
                    {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
                ],
            }
        ],
    )
    assert response.output_text
    assert response.usage is not None and response.usage.input_tokens > 20


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_image_reaches_the_provider_as_an_image_part(gateway: Any, sim: Any) -> None:
    content = [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
    ]
    client = gateway.openai()
    client.responses.create(model=NANO, input=[{"role": "user", "content": content}])
    assert sim.requests("openai")[0]["body"]["input"][0]["content"] == content
    client.responses.create(
        model=MAVERICK,
        input=[{"role": "user", "content": content}],
        extra_body={"provider": {"only": ["fireworks"]}},
    )
    (received,) = sim.requests("fireworks")
    assert received["body"]["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_json_schema_output(gateway: Any, model: str, stream: bool) -> None:
    client = gateway.openai()
    text = {"format": {"type": "json_schema", "name": "person", "schema": PERSON, "strict": True}}
    if stream:
        with client.responses.stream(model=model, input="A person, please", text=text) as s:
            response = s.get_final_response()
    else:
        response = client.responses.create(model=model, input="A person, please", text=text)
    person = json.loads(response.output_text)
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    assert response.text is not None and response.text.format.type == "json_schema"


@pytest.mark.parametrize(("model", "prefix"), [(NANO, "openai"), (GPT_OSS, "groq")])
def test_json_object_output(gateway: Any, sim: Any, model: str, prefix: str) -> None:
    text = {"format": {"type": "json_object"}}
    response = gateway.openai().responses.create(
        model=model, input="Some JSON, please", text=text, extra_body={"provider": {"only": [prefix]}}
    )
    assert isinstance(json.loads(response.output_text), dict)
    body = sim.requests(prefix)[0]["body"]
    assert body.get("text", {}).get("format") or body["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_summary_and_signed_reasoning_round_trip(gateway: Any, sim: Any, stream: bool) -> None:
    client = gateway.openai()
    args: dict[str, Any] = {
        "model": HAIKU,
        "input": "Weather in Paris?",
        "tools": [WEATHER],
        "reasoning": {"effort": "low", "summary": "auto"},
        "max_output_tokens": 4000,
        "include": ["reasoning.encrypted_content"],
    }
    if stream:
        with client.responses.stream(**args) as s:
            events = list(s)
            first = s.get_final_response()
        summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    else:
        first = client.responses.create(**args)
        summary = None
    reasoning = next(item for item in first.output if item.type == "reasoning")
    assert reasoning.summary and reasoning.summary[0].text and reasoning.encrypted_content
    if summary is not None:
        assert summary == reasoning.summary[0].text
    assert first.usage is not None and first.usage.output_tokens_details.reasoning_tokens > 0
    call = next(item for item in first.output if item.type == "function_call")
    conversation: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    conversation += [item.model_dump(exclude_none=True) for item in first.output]
    conversation.append({"type": "function_call_output", "call_id": call.call_id, "output": "21 C"})
    second = client.responses.create(**{**args, "input": conversation})
    assert second.output_text
    # Claude got its signed thinking back ahead of the tool call it made.
    sent = sim.requests("anthropic")[-1]["body"]
    assistant = sent["messages"][1]
    assert assistant["role"] == "assistant" and assistant["content"][0]["type"] == "thinking"
    assert assistant["content"][0]["signature"]
    assert assistant["content"][-1]["type"] == "tool_use" and assistant["content"][-1]["id"] == call.call_id


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_store_is_not_kept_and_noted_in_the_record(gateway: Any, sim: Any) -> None:
    client = gateway.openai()
    response = client.responses.create(model=NANO, input="Hi", store=True)
    assert sim.requests("openai")[0]["body"]["store"] is False
    assert "store" in generation(gateway, response.id)["dropped_params"]
    quiet = client.responses.create(model=NANO, input="Hi", store=False)
    assert generation(gateway, quiet.id)["dropped_params"] == []


def test_previous_response_id_is_a_clear_400(gateway: Any) -> None:
    client = gateway.openai()
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=NANO, input="And then?", previous_response_id="resp_123")
    err = caught.value
    assert err.status_code == 400 and err.param == "previous_response_id"
    assert "does not store responses" in err.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": NANO}, "input"),
        ({"model": NANO, "input": []}, "input"),
        ({"input": "Hi"}, "model"),
        ({"model": NANO, "input": "Hi", "tools": [{"name": "f"}]}, "tools[0].type"),
        ({"model": NANO, "input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]"),
        ({"model": NANO, "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"model": NANO, "input": "Hi", "text": {"format": {"type": "yaml"}}}, "text.format"),
        ({"model": NANO, "input": "Hi", "reasoning": {"effort": "max"}}, "reasoning.effort"),
        ({"model": NANO, "input": "Hi", "temperature": 3}, "temperature"),
        ({"model": NANO, "input": "Hi", "api_base": "http://x"}, "api_base"),
        ({"model": NANO, "input": "Hi", "background": True}, "background"),
    ],
)
def test_bad_requests_are_openai_shaped_400s(gateway: Any, body: dict[str, Any], param: str) -> None:
    r = httpx.post(
        f"{gateway.url}/api/v1/responses", json=body, headers={"Authorization": f"Bearer {gateway.key}"}
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param and error["message"]


def test_unknown_key_and_model_in_openai_shape(gateway: Any) -> None:
    r = httpx.post(f"{gateway.url}/api/v1/responses", json={"model": NANO, "input": "Hi"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.NotFoundError):
        gateway.openai().responses.create(model="nobody/nothing", input="Hi")


# Fails both of NANO's endpoints, and counts the attempts of a fallback.
@pytest.mark.own_gateway
def test_routing_extensions_work_as_on_chat(gateway: Any, sim: Any) -> None:
    client = gateway.openai()
    response = client.responses.create(model=NANO, input="Hi", extra_body={"provider": {"only": ["azure"]}})
    assert (response.model_extra or {})["provider"] == "azure"
    assert sim.requests("azure") and not sim.requests("openai")
    sim.profile("openai", error_rate=1.0, error_status=500)
    sim.profile("azure", error_rate=1.0, error_status=500)
    fallback = client.responses.create(model=NANO, input="Hi", extra_body={"models": [NANO, HAIKU]})
    assert fallback.model == HAIKU and (fallback.model_extra or {})["provider"] == "anthropic"
    attempts = generation(gateway, fallback.id)["attempts"]
    assert [a["provider"] for a in attempts][-1] == "anthropic" and len(attempts) == 3


# Breaks streams at both of NANO's endpoints: their health changes.
@pytest.mark.own_gateway
def test_mid_stream_break_ends_with_an_error_event(gateway: Any, sim: Any) -> None:
    sim.profile("openai", drop_after_chunks=3)
    sim.profile("azure", drop_after_chunks=3)
    client = gateway.openai()
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for event in client.responses.create(model=NANO, input="Hi", stream=True, max_output_tokens=50):
            seen.append(event.type)
    assert "response.output_text.delta" in seen and caught.value.message
    with httpx.stream(
        "POST",
        f"{gateway.url}/api/v1/responses",
        headers={"Authorization": f"Bearer {gateway.key}"},
        json={"model": NANO, "input": "Hi", "stream": True},
    ) as r:
        lines = list(r.iter_lines())
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events[-2:] == ["error", "response.failed"]
    failed = json.loads([line for line in lines if line.startswith("data: ")][-1][6:])
    assert failed["response"]["status"] == "failed" and failed["response"]["error"]["message"]


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        (NANO, {"tools": [WEATHER], "tool_choice": "required"}),
        (NANO, {"include": ["message.output_text.logprobs"], "top_logprobs": 2}),
        (
            HAIKU,
            {
                "tools": [WEATHER],
                "reasoning": {"effort": "low", "summary": "auto"},
                "max_output_tokens": 4000,
            },
        ),
        (GEMINI, {"tools": [WEATHER]}),
        (NANO, {"tools": [NAMESPACE, PATCH_TOOL], "tool_choice": {"type": "custom", "name": "apply_patch"}}),
    ],
)
def test_every_event_and_response_validates_against_the_sdk_types(
    gateway: Any, model: str, extra: dict[str, Any]
) -> None:
    """The SDK parses leniently; validating with its pydantic types checks every required field."""
    from openai.types.responses import ResponseStreamEvent
    from pydantic import TypeAdapter

    body = {"model": model, "input": "Weather in Paris?", **extra}
    headers = {"Authorization": f"Bearer {gateway.key}"}
    whole = httpx.post(f"{gateway.url}/api/v1/responses", json=body, headers=headers, timeout=10)
    Response.model_validate(whole.json())
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    with httpx.stream(
        "POST", f"{gateway.url}/api/v1/responses", json={**body, "stream": True}, headers=headers, timeout=10
    ) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    events = [adapter.validate_python(json.loads(line[6:])) for line in lines]
    assert events[-1].type == "response.completed"
    Response.model_validate(events[-1].response.model_dump())
    if "include" in extra:
        done = next(e for e in events if e.type == "response.output_text.done")
        assert done.logprobs and done.logprobs[0].top_logprobs


def test_key_limits_hold_on_the_responses_route(gateway: Any) -> None:
    key = gateway.new_key("claude-only", models="anthropic/*")
    client = gateway.openai(key=key)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.responses.create(model=NANO, input="Hi")
    assert caught.value.code == "model_not_allowed"
    assert client.responses.create(model=HAIKU, input="Hi").output_text


@pytest.mark.parametrize("stream", [False, True])
def test_namespaced_custom_and_built_in_tools(gateway: Any, sim: Any, stream: bool) -> None:
    """What Codex CLI sends: functions in a namespace, a free-form custom tool, OpenAI's web search; to a
    provider that takes Chat Completions."""
    client = gateway.openai()

    def ask(**kw: Any) -> Any:
        if not stream:
            return client.responses.create(model=GPT_OSS, input="Go", extra_body=AT_GROQ, **kw)
        with client.responses.stream(model=GPT_OSS, input="Go", extra_body=AT_GROQ, **kw) as s:
            return s.get_final_response()

    tools: list[Any] = [NAMESPACE, PATCH_TOOL, {"type": "web_search", "external_web_access": False}]
    first = ask(tools=tools, tool_choice={"type": "function", "name": "agents__spawn_agent"})
    body = sim.requests("groq")[-1]["body"]
    assert [t["function"]["name"] for t in body["tools"]] == ["agents__spawn_agent", "apply_patch"]
    assert "web_search" not in body
    assert generation(gateway, first.id)["dropped_params"] == ["web_search"]
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.name == "spawn_agent" and call.namespace == "agents"
    patch = ask(tools=tools, tool_choice={"type": "custom", "name": "apply_patch"})
    (custom,) = [item for item in patch.output if item.type == "custom_tool_call"]
    assert custom.name == "apply_patch" and isinstance(custom.input, str) and custom.input
    history: list[Any] = [{"role": "user", "content": "Go"}]
    history += [item.model_dump(exclude_none=True) for item in [*first.output, *patch.output]]
    history += [
        {"type": "function_call_output", "call_id": call.call_id, "output": "spawned"},
        {"type": "custom_tool_call_output", "call_id": custom.call_id, "output": "applied"},
    ]
    last = client.responses.create(model=GPT_OSS, input=history, tools=tools, extra_body=AT_GROQ)
    assert last.output_text
    sent = sim.requests("groq")[-1]["body"]["messages"]
    calls = [c for m in sent if m["role"] == "assistant" for c in m.get("tool_calls", [])]
    assert [c["function"]["name"] for c in calls] == ["agents__spawn_agent", "apply_patch"]
    assert json.loads(calls[1]["function"]["arguments"]) == {"input": custom.input}
    assert [m["tool_call_id"] for m in sent if m["role"] == "tool"] == [call.call_id, custom.call_id]
