"""The simulator's Responses API (OpenAI's /v1/responses, Azure's /openai/v1/responses), read by the
official SDK and validated with its types."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tokenmux.server.runner import BackgroundServer
from tokenmux.simulator.control_client import PrefixControl

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_text_with_reasoning_whole_and_streamed(client: openai.OpenAI, control: PrefixControl) -> None:
    args: dict[str, Any] = {
        "model": "gpt-5",
        "input": "Hi",
        "reasoning": {"effort": "low", "summary": "auto"},
    }
    whole = client.responses.create(**args)
    Response.model_validate(whole.model_dump())
    assert [item.type for item in whole.output] == ["reasoning", "message"] and whole.output_text
    with client.responses.stream(**args) as stream:
        final = stream.get_final_response()
    events = list(client.responses.create(**args, stream=True))
    adapter: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
    for event in events:
        adapter.validate_python(event.model_dump())
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == whole.output_text
    assert control.requests()[0]["path"] == f"/{control.prefix}/v1/responses"


@pytest.mark.parametrize("stream", [False, True])
def test_tool_kinds(client: openai.OpenAI, stream: bool) -> None:
    namespace = {"type": "namespace", "name": "agents", "description": "d", "tools": [WEATHER]}
    custom = {"type": "custom", "name": "apply_patch"}
    args: dict[str, Any] = {"model": "gpt-5", "input": "Go", "tools": [namespace, custom]}
    for choice, kind in ((None, None), ({"type": "custom", "name": "apply_patch"}, "custom_tool_call")):
        kw = {**args, "tool_choice": choice} if choice else {**args, "tool_choice": "required"}
        if stream:
            with client.responses.stream(**kw) as s:
                response = s.get_final_response()
        else:
            response = client.responses.create(**kw)
        item = response.output[-1]
        if kind is None:
            assert item.type in ("function_call", "custom_tool_call")
        else:
            assert item.type == kind and item.input


def test_reasoning_it_did_not_write_is_refused(client: openai.OpenAI) -> None:
    items: list[Any] = [
        {"role": "user", "content": "Hi"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAAother"},
    ]
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-5", input=items)


def test_azure_v1_responses(sim_server: BackgroundServer, azure_control: PrefixControl) -> None:
    with openai.OpenAI(
        base_url=f"{sim_server.url}/azure/openai/v1",
        api_key="unused",
        default_headers={"api-key": "azure-test-key"},
        max_retries=0,
    ) as azure:
        assert azure.responses.create(model="my-deployment", input="Hi").output_text
    assert azure_control.requests()[-1]["body"]["model"] == "my-deployment"
