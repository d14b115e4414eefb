"""The Responses API to OpenAI and Azure, which speak it themselves: the request goes up as it came and
the answer comes back as they sent it, encrypted reasoning included (the simulator refuses reasoning it
did not write)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from gateway_support import NANO, generation

# Tests that name their provider share a gateway; those that read which endpoint an unpinned request
# reached have their own (see own_gateway).
pytestmark = pytest.mark.shared_gateway

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
REASONING = {"effort": "low", "summary": "auto"}


def ask(client: Any, stream: bool, **kw: Any) -> Any:
    if not stream:
        return client.responses.create(**kw)
    with client.responses.stream(**kw) as s:
        return s.get_final_response()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", ["openai", "azure"])
def test_encrypted_reasoning_round_trips(gateway: Any, sim: Any, stream: bool, provider: str) -> None:
    client = gateway.openai()
    only = {"provider": {"only": [provider]}}
    args: dict[str, Any] = {"model": NANO, "tools": [WEATHER], "reasoning": REASONING, "extra_body": only}
    first = ask(client, stream, input="Weather in Paris?", **args)
    reasoning = next(item for item in first.output if item.type == "reasoning")
    call = next(item for item in first.output if item.type == "function_call")
    assert reasoning.summary[0].text and reasoning.encrypted_content
    # OpenAI's own item ids come through; the response id is the gateway's generation id.
    assert reasoning.id.startswith("rs_") and first.id.startswith("gen-")
    history: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "21 C"})
    second = ask(client, stream, input=history, **args)
    assert second.output_text
    sent = sim.requests(provider)[-1]
    assert sent["path"].endswith("/responses")
    assert sent["body"]["input"][1]["encrypted_content"] == reasoning.encrypted_content
    assert sent["body"]["store"] is False and "provider" not in sent["body"]
    if provider == "azure":
        assert sent["path"] == "/azure/openai/v1/responses" and sent["body"]["model"] == "gpt-4.1-nano"
    # Reasoning changed on the way is refused by the provider, and the client is told.
    history[1] = {**history[1], "encrypted_content": "tampered"}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(input=history, **args)
    assert "could not be verified" in caught.value.message


# Compares two answers to unpinned requests: the endpoint each reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_the_stream_is_the_providers_under_the_gateways_numbers(gateway: Any, sim: Any) -> None:
    body = {"model": NANO, "input": "Weather?", "tools": [WEATHER], "reasoning": REASONING, "stream": True}
    headers = {"Authorization": f"Bearer {gateway.key}"}
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    with httpx.stream("POST", f"{gateway.url}/api/v1/responses", json=body, headers=headers, timeout=10) as r:
        gen_id = r.headers["x-generation-id"]
        events = [
            adapter.validate_python(json.loads(line[6:]))
            for line in r.iter_lines()
            if line.startswith("data: ")
        ]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert kinds.count("response.created") == 1 and kinds.count("response.completed") == 1
    assert (
        "response.reasoning_summary_text.delta" in kinds and "response.function_call_arguments.delta" in kinds
    )
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert final.id == events[0].response.id == gen_id and final.model == NANO
    # The same request whole (its fields in the same order: the simulator's answer depends on them).
    plain = {k: v for k, v in body.items() if k != "stream"}
    whole = Response.model_validate(
        httpx.post(f"{gateway.url}/api/v1/responses", json=plain, headers=headers, timeout=10).json()
    )
    assert [i.type for i in final.output] == [i.type for i in whole.output] == ["reasoning", "function_call"]
    assert final.output[1].arguments == whole.output[1].arguments
    usage = final.usage
    assert usage is not None and usage.output_tokens_details.reasoning_tokens > 0
    record = generation(gateway, gen_id)
    assert record["tokens_completion"] == usage.output_tokens and record["usage"] > 0


# Which of o3's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
def test_what_an_endpoint_does_not_take_is_left_out(gateway: Any, sim: Any) -> None:
    response = gateway.openai().responses.create(
        model="openai/o3",
        input="Hi",
        temperature=0.5,
        tools=[WEATHER, {"type": "web_search"}],
        tool_choice="none",
        max_output_tokens=500,
    )
    body = sim.requests("openai")[-1]["body"]
    assert "temperature" not in body and body["max_output_tokens"] == 500 and body["model"] == "o3"
    assert body["include"] == ["reasoning.encrypted_content"]  # o3 reasons: its reasoning must travel
    assert [t["type"] for t in body["tools"]] == ["function"]
    assert generation(gateway, response.id)["dropped_params"] == ["temperature", "web_search"]


# Which of NANO's endpoints it reaches depends on what routing has measured.
@pytest.mark.own_gateway
@pytest.mark.parametrize("stream", [False, True])
def test_namespaces_and_custom_tools_go_as_they_are(gateway: Any, sim: Any, stream: bool) -> None:
    client = gateway.openai()
    namespace = {"type": "namespace", "name": "agents", "description": "Sub-agents", "tools": [WEATHER]}
    first = ask(client, stream, model=NANO, input="Go", tools=[namespace], tool_choice="required")
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert call.namespace == "agents" and call.name == "get_weather"
    assert sim.requests("openai")[-1]["body"]["tools"] == [namespace]
    patch = {"type": "custom", "name": "apply_patch", "description": "Apply a patch"}
    second = ask(
        client,
        stream,
        model=NANO,
        input="Go",
        tools=[patch],
        tool_choice={"type": "custom", "name": "apply_patch"},
    )
    (custom,) = [item for item in second.output if item.type == "custom_tool_call"]
    assert custom.name == "apply_patch" and custom.input


def test_whole_answer_validates_against_the_sdk_types(gateway: Any) -> None:
    r = httpx.post(
        f"{gateway.url}/api/v1/responses",
        json={
            "model": NANO,
            "input": "Hi",
            "reasoning": REASONING,
            "include": ["message.output_text.logprobs"],
            "top_logprobs": 2,
        },
        headers={"Authorization": f"Bearer {gateway.key}"},
        timeout=10,
    )
    response = Response.model_validate(r.json())
    assert response.output_text and (response.model_extra or {})["provider"] in ("openai", "azure")
    message = next(item for item in response.output if item.type == "message")
    assert message.content[0].type == "output_text" and message.content[0].logprobs
