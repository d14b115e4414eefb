"""The ``google`` adapter on the real transport against the simulator's Gemini format: the two sides of
the Gemini wire format agree (requests the simulator accepts, answers and streams the adapter reads)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import msgspec
import pytest
from adapter_helpers import collect, config, context

from tokenmux.errors import ProviderRejected
from tokenmux.providers.aiohttp_transport import AiohttpTransport
from tokenmux.providers.google import GoogleProvider
from tokenmux.server.runner import BackgroundServer
from tokenmux.simulator.app import create_app
from tokenmux.simulator.control_client import SimulatorControl
from tokenmux.types import ChatRequest, StreamEvent

pytestmark = pytest.mark.timeout(30)

MODEL = "gemini-2.5-flash"
HELLO: list[dict[str, Any]] = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
            },
            "required": ["city", "days"],
            "additionalProperties": False,
        },
    },
}


@pytest.fixture(scope="module")
def sim() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(seed=3), graceful_timeout_s=1) as server:
        yield server


@pytest.fixture
def control(sim: BackgroundServer) -> Iterator[SimulatorControl]:
    with SimulatorControl(sim.url) as control:
        control.reset("google")
        yield control


@pytest.fixture
async def gemini(sim: BackgroundServer, control: SimulatorControl) -> AsyncIterator[GoogleProvider]:
    transport = AiohttpTransport()
    yield GoogleProvider(config("google", base_url=f"{sim.url}/google", api_key="gm-key"), transport)
    await transport.aclose()


def request(messages: list[dict[str, Any]] = HELLO, stream: bool = False) -> ChatRequest:
    return ChatRequest(model="google/gemini-2.5-flash", messages=messages, params={}, stream=stream)


def ctx(params: dict[str, Any] | None = None) -> Any:
    return context(params, upstream_model=MODEL, provider="google")


def streamed_text(events: list[StreamEvent]) -> str:
    return "".join(e.delta.get("content") or "" for e in events if e.delta)


async def test_a_streamed_answer_is_the_non_streamed_one(gemini: GoogleProvider) -> None:
    whole = await gemini.complete(request(), ctx({"max_tokens": 100}))
    events = await collect(gemini.stream(request(stream=True), ctx({"max_tokens": 100})))

    [choice] = whole.choices
    assert choice["finish_reason"] == "stop" and choice["message"]["content"].endswith(".")
    # The stream flag is in Gemini's URL, not its body: the same body gets the same answer.
    assert streamed_text(events) == choice["message"]["content"]
    assert [e.finish_reason for e in events if e.finish_reason] == ["stop"]
    assert events[-1].usage == whole.usage
    assert whole.usage is not None and whole.usage.completion_tokens == 24 and whole.usage.prompt_tokens > 0


async def test_a_tool_round_trip(gemini: GoogleProvider, control: SimulatorControl) -> None:
    tools = {"tools": [WEATHER_TOOL], "tool_choice": "required"}
    first = await gemini.complete(request(), ctx(tools))
    assistant = first.choices[0]["message"]
    [call] = assistant["tool_calls"]
    arguments = msgspec.json.decode(call["function"]["arguments"])
    assert call["function"]["name"] == "get_weather" and set(arguments) == {"city", "days"}
    assert 1 <= arguments["days"] <= 7 and first.choices[0]["finish_reason"] == "tool_calls"

    turns = [*HELLO, assistant, {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": 21}'}]
    events = await collect(gemini.stream(request(turns, stream=True), ctx({"tools": [WEATHER_TOOL]})))

    assert streamed_text(events) and [e.finish_reason for e in events if e.finish_reason] == ["stop"]
    sent = control.requests("google")[-1]["body"]["contents"]
    assert sent[1]["parts"][0]["functionCall"]["id"] == call["id"]
    assert sent[2]["parts"][0]["functionResponse"] == {
        "name": "get_weather",
        "response": {"result": {"temp": 21}},
        "id": call["id"],
    }


async def test_json_schema_output_fits_the_schema(gemini: GoogleProvider) -> None:
    schema = WEATHER_TOOL["function"]["parameters"]
    response_format = {"type": "json_schema", "json_schema": {"name": "w", "strict": True, "schema": schema}}
    response = await gemini.complete(request(), ctx({"response_format": response_format}))

    document = msgspec.json.decode(response.choices[0]["message"]["content"])
    assert set(document) == {"city", "days"} and isinstance(document["city"], str)


async def test_thoughts_and_cached_tokens(gemini: GoogleProvider, control: SimulatorControl) -> None:
    control.profile("google", reasoning_tokens=12, cached_ratio=0.5)
    response = await gemini.complete(request(), ctx({"reasoning": {"enabled": True}}))
    events = await collect(gemini.stream(request(stream=True), ctx({"reasoning": {"enabled": True}})))

    message = response.choices[0]["message"]
    assert message["reasoning"] and message["content"]
    usage = response.usage
    assert usage is not None and usage.reasoning_tokens == 12 and usage.completion_tokens == 24 + 12
    assert usage.cached_tokens == usage.prompt_tokens // 2
    assert "".join(e.delta.get("reasoning") or "" for e in events if e.delta) == message["reasoning"]


async def test_a_blocked_prompt_and_provider_errors(
    gemini: GoogleProvider, control: SimulatorControl
) -> None:
    control.profile("google", block_rate=1)
    with pytest.raises(ProviderRejected, match="blocked the prompt: SAFETY") as blocked:
        await collect(gemini.stream(request(stream=True), ctx()))
    control.profile("google", rate_limit_rate=1, retry_after_s=2)
    with pytest.raises(ProviderRejected, match="Rate limit") as limited:
        await gemini.complete(request(), ctx())

    assert blocked.value.upstream_status == 400 and not blocked.value.retryable
    assert limited.value.upstream_status == 429 and limited.value.retry_after == 2.0
    assert limited.value.upstream_type == "RESOURCE_EXHAUSTED"
