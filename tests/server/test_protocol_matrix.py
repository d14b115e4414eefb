"""Every pair works: {OpenAI Chat Completions in, Anthropic in, OpenAI Responses in, Gemini in} x {openai,
azure, openai-compatible, anthropic, google out}, streamed and not, for plain text, a tool round trip, an
image, JSON output and stop sequences (which the Responses API does not have). OpenAI and Azure take a
Responses request as Responses; every other pair is translated.

Each cell goes through the official SDK of the inbound protocol, and checks what reached the simulated
provider in that provider's own wire format.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from gateway_support import NANO, generation

# Every cell names its one provider and finds its record by id: nothing a cell leaves in the gateway
# (health, affinity, records) changes what another sees.
pytestmark = pytest.mark.shared_gateway

# provider slug -> (model served there, simulator prefix)
TARGETS = {
    "openai": (NANO, "openai"),
    "azure": (NANO, "azure"),
    "groq": ("openai/gpt-oss-20b", "groq"),  # openai-compatible
    "anthropic": ("anthropic/claude-haiku-4.5", "anthropic"),
    "google": ("google/gemini-2.5-flash", "google"),
}
WEATHER_TOOL_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
IMAGE_URL = "https://example.com/cat.png"


class Answer:
    """What a client got, whichever protocol it spoke."""

    def __init__(
        self, *, id: str, text: str, tool_calls: list[tuple[str, str, dict[str, Any]]], provider: str
    ) -> None:
        self.id = id
        self.text = text
        self.tool_calls = tool_calls  # (id, name, arguments)
        self.provider = provider


def openai_client(gateway: Any) -> openai.OpenAI:
    """As ``gateway.openai()`` builds it, but closed by whoever opened it rather than when a test ends."""
    return openai.OpenAI(base_url=f"{gateway.url}/api/v1", api_key=gateway.key, max_retries=0)


class OpenAIClient:
    name = "openai"

    def __init__(self, gateway: Any) -> None:
        self.client = openai_client(gateway)

    def ask(self, model: str, provider: str, stream: bool, messages: list[Any], **kw: Any) -> Answer:
        extra = {"provider": {"only": [provider]}}
        tools = kw.pop("tools", None)
        if tools:
            kw["tools"] = [
                {"type": "function", "function": {"name": t["name"], "parameters": t["schema"]}}
                for t in tools
            ]
        if "json_schema" in kw:
            kw["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": kw.pop("json_schema")},
            }
        if "stop" in kw:
            kw["stop"] = kw.pop("stop")
        msgs = [self._message(m) for m in messages]
        if not stream:
            out = self.client.chat.completions.create(model=model, messages=msgs, extra_body=extra, **kw)
            message = out.choices[0].message
            calls = [
                (c.id, c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls or []
            ]
            return Answer(
                id=out.id, text=message.content or "", tool_calls=calls, provider=out.model_extra["provider"]
            )
        chunks = list(
            self.client.chat.completions.create(
                model=model, messages=msgs, extra_body=extra, stream=True, **kw
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        calls: dict[int, list[Any]] = {}
        for c in chunks:
            for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
                entry = calls.setdefault(tc.index, [None, None, ""])
                if tc.id:
                    entry[0] = tc.id
                if tc.function and tc.function.name:
                    entry[1] = tc.function.name
                if tc.function and tc.function.arguments:
                    entry[2] += tc.function.arguments
        parsed = [(i, n, json.loads(a)) for i, n, a in calls.values()]
        return Answer(
            id=chunks[0].id, text=text, tool_calls=parsed, provider=chunks[0].model_extra["provider"]
        )

    @staticmethod
    def _message(m: dict[str, Any]) -> dict[str, Any]:
        if m["kind"] == "user":
            return {"role": "user", "content": m["text"]}
        if m["kind"] == "image":
            return {
                "role": "user",
                "content": [
                    {"type": "text", "text": m["text"]},
                    {"type": "image_url", "image_url": {"url": m["url"]}},
                ],
            }
        if m["kind"] == "tool_call":
            return {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": m["id"],
                        "type": "function",
                        "function": {"name": m["name"], "arguments": json.dumps(m["args"])},
                    }
                ],
            }
        return {"role": "tool", "tool_call_id": m["id"], "content": m["text"]}


class AnthropicClient:
    name = "anthropic"

    def __init__(self, gateway: Any) -> None:
        self.client = anthropic.Anthropic(
            base_url=f"{gateway.url}/api/anthropic", api_key=gateway.key, max_retries=0
        )

    def ask(self, model: str, provider: str, stream: bool, messages: list[Any], **kw: Any) -> Answer:
        extra: dict[str, Any] = {"provider": {"only": [provider]}}
        args: dict[str, Any] = {
            "model": model,
            "max_tokens": 200,
            "messages": [self._message(m) for m in messages],
        }
        if kw.get("tools"):
            args["tools"] = [{"name": t["name"], "input_schema": t["schema"]} for t in kw["tools"]]
        if "json_schema" in kw:
            extra["output_config"] = {"format": {"type": "json_schema", "schema": kw["json_schema"]}}
        if "stop" in kw:
            args["stop_sequences"] = kw["stop"]
        if stream:
            with self.client.messages.stream(**args, extra_body=extra) as s:
                message = s.get_final_message()
        else:
            message = self.client.messages.create(**args, extra_body=extra)
        text = "".join(b.text for b in message.content if b.type == "text")
        calls = [(b.id, b.name, dict(b.input)) for b in message.content if b.type == "tool_use"]
        return Answer(
            id=message.id,
            text=text,
            tool_calls=calls,
            provider=(message.model_extra or {}).get("provider", ""),
        )

    @staticmethod
    def _message(m: dict[str, Any]) -> dict[str, Any]:
        if m["kind"] == "user":
            return {"role": "user", "content": m["text"]}
        if m["kind"] == "image":
            return {
                "role": "user",
                "content": [
                    {"type": "text", "text": m["text"]},
                    {"type": "image", "source": {"type": "url", "url": m["url"]}},
                ],
            }
        if m["kind"] == "tool_call":
            return {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": m["id"], "name": m["name"], "input": m["args"]}],
            }
        return {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": m["id"], "content": m["text"]}],
        }


class ResponsesClient:
    """The OpenAI Responses API, through the openai SDK's ``responses`` resource."""

    name = "responses"

    def __init__(self, gateway: Any) -> None:
        self.client = openai_client(gateway)

    def ask(self, model: str, provider: str, stream: bool, messages: list[Any], **kw: Any) -> Answer:
        args: dict[str, Any] = {
            "model": model,
            "input": [item for m in messages for item in self._items(m)],
            "max_output_tokens": 200,
            "extra_body": {"provider": {"only": [provider]}},
        }
        if kw.get("tools"):
            args["tools"] = [
                {"type": "function", "name": t["name"], "parameters": t["schema"]} for t in kw["tools"]
            ]
        if "json_schema" in kw:
            args["text"] = {"format": {"type": "json_schema", "name": "person", "schema": kw["json_schema"]}}
        if stream:
            with self.client.responses.stream(**args) as s:
                deltas = "".join(e.delta for e in s if e.type == "response.output_text.delta")
                response = s.get_final_response()
            assert deltas == response.output_text
        else:
            response = self.client.responses.create(**args)
        calls = [
            (item.call_id, item.name, json.loads(item.arguments))
            for item in response.output
            if item.type == "function_call"
        ]
        return Answer(
            id=response.id,
            text=response.output_text,
            tool_calls=calls,
            provider=(response.model_extra or {}).get("provider", ""),
        )

    @staticmethod
    def _items(m: dict[str, Any]) -> list[dict[str, Any]]:
        if m["kind"] == "user":
            return [{"role": "user", "content": m["text"]}]
        if m["kind"] == "image":
            content = [
                {"type": "input_text", "text": m["text"]},
                {"type": "input_image", "image_url": m["url"]},
            ]
            return [{"role": "user", "content": content}]
        if m["kind"] == "tool_call":
            arguments = json.dumps(m["args"])
            return [{"type": "function_call", "call_id": m["id"], "name": m["name"], "arguments": arguments}]
        return [{"type": "function_call_output", "call_id": m["id"], "output": m["text"]}]


class GeminiClient:
    """The Gemini API, through the google-genai SDK with its base URL on the gateway."""

    name = "gemini"

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway
        self.client = genai.Client(
            api_key=gateway.key,
            http_options=types.HttpOptions(base_url=f"{gateway.url}/api/gemini", api_version="v1beta"),
        )

    def ask(self, model: str, provider: str, stream: bool, messages: list[Any], **kw: Any) -> Answer:
        config: dict[str, Any] = {
            "max_output_tokens": 200,
            "http_options": types.HttpOptions(extra_body={"provider": {"only": [provider]}}),
        }
        if kw.get("tools"):
            declarations = [
                types.FunctionDeclaration(name=t["name"], parameters_json_schema=t["schema"])
                for t in kw["tools"]
            ]
            config["tools"] = [types.Tool(function_declarations=declarations)]
        if "json_schema" in kw:
            config["response_mime_type"] = "application/json"
            config["response_json_schema"] = kw["json_schema"]
        if "stop" in kw:
            config["stop_sequences"] = kw["stop"]
        args = {
            "model": model,
            "contents": [self._content(m) for m in messages],
            "config": types.GenerateContentConfig(**config),
        }
        if stream:
            chunks = list(self.client.models.generate_content_stream(**args))
            text = "".join(c.text or "" for c in chunks)
            calls = [call for c in chunks for call in c.function_calls or ()]
            response_id = chunks[0].response_id
            last = chunks[-1]
        else:
            last = self.client.models.generate_content(**args)
            text, calls, response_id = last.text or "", last.function_calls or [], last.response_id
        headers = (last.sdk_http_response.headers if last.sdk_http_response else None) or {}
        assert headers.get("x-generation-id") == response_id
        return Answer(
            id=response_id or "",
            text=text,
            tool_calls=[(c.id or "", c.name or "", dict(c.args or {})) for c in calls],
            # The SDK keeps no field it does not know (the answer's "provider"): the record says it.
            provider=generation(self.gateway, response_id or "")["provider"],
        )

    @staticmethod
    def _content(m: dict[str, Any]) -> types.Content:
        if m["kind"] == "user":
            return types.Content(role="user", parts=[types.Part(text=m["text"])])
        if m["kind"] == "image":
            image = types.Part(file_data=types.FileData(file_uri=m["url"], mime_type="image/png"))
            return types.Content(role="user", parts=[types.Part(text=m["text"]), image])
        if m["kind"] == "tool_call":
            call = types.FunctionCall(id=m["id"], name=m["name"], args=m["args"])
            return types.Content(role="model", parts=[types.Part(function_call=call)])
        response = types.FunctionResponse(id=m["id"], name="get_weather", response={"output": m["text"]})
        return types.Content(role="user", parts=[types.Part(function_response=response)])


CLIENTS = {
    "openai": OpenAIClient,
    "anthropic": AnthropicClient,
    "responses": ResponsesClient,
    "gemini": GeminiClient,
}


def upstream_body(sim: Any, prefix: str) -> dict[str, Any]:
    received = sim.requests(prefix)
    assert received, f"nothing reached {prefix}"
    return received[-1]["body"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def sdk_clients(module_gateway: Any) -> Iterator[dict[str, Any]]:
    # One of each for the module: building an SDK client (its TLS context) costs 0.1-0.25 s, more than
    # most cells take.
    clients = {name: make(module_gateway) for name, make in CLIENTS.items()}
    yield clients
    for each in clients.values():
        each.client.close()


@pytest.fixture(params=sorted(CLIENTS))
def client(request: pytest.FixtureRequest, gateway: Any, sdk_clients: dict[str, Any]) -> Any:
    # Through ``gateway``, the module's: the simulator is reset for every cell.
    return sdk_clients[request.param]


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_plain_text_streamed_equals_non_streamed(client: Any, gateway: Any, sim: Any, target: str) -> None:
    model, _ = TARGETS[target]
    messages = [{"kind": "user", "text": "Say something about tokens."}]
    whole = client.ask(model, target, False, messages)
    streamed = client.ask(model, target, True, messages)
    assert whole.text and whole.provider == target and streamed.provider == target
    assert streamed.text == whole.text
    record = generation(gateway, whole.id)
    assert record["provider"] == target and record["model"] == model and record["tokens_completion"] > 0


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_tool_round_trip_keeps_the_call_id(client: Any, sim: Any, target: str, stream: bool) -> None:
    model, prefix = TARGETS[target]
    tools = [{"name": "get_weather", "schema": WEATHER_TOOL_SCHEMA}]
    messages: list[dict[str, Any]] = [{"kind": "user", "text": "Weather in Paris?"}]
    first = client.ask(model, target, stream, messages, tools=tools)
    assert len(first.tool_calls) >= 1, first.text
    call_id, name, args = first.tool_calls[0]
    assert name == "get_weather" and isinstance(args.get("city"), str) and call_id
    messages += [
        {"kind": "tool_call", "id": call_id, "name": name, "args": args},
        {"kind": "tool_result", "id": call_id, "text": "21 degrees"},
    ]
    second = client.ask(model, target, stream, messages, tools=tools)
    assert second.text and not second.tool_calls
    assert call_id in json.dumps(upstream_body(sim, prefix))  # the id the provider gave came back to it


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_image_reaches_the_provider(client: Any, sim: Any, target: str, stream: bool) -> None:
    model, prefix = TARGETS[target]
    answer = client.ask(model, target, stream, [{"kind": "image", "text": "What is this?", "url": IMAGE_URL}])
    assert answer.text
    assert IMAGE_URL in json.dumps(upstream_body(sim, prefix))  # passed on, never fetched by the gateway


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_json_schema_output(client: Any, target: str, stream: bool) -> None:
    model, _ = TARGETS[target]
    answer = client.ask(
        model, target, stream, [{"kind": "user", "text": "A person."}], json_schema=PERSON_SCHEMA
    )
    data = json.loads(answer.text)
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


STOP_FIELD = {"openai": "stop", "azure": "stop", "groq": "stop", "anthropic": "stop_sequences"}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_stop_sequences_reach_the_provider(client: Any, sim: Any, target: str, stream: bool) -> None:
    if client.name == "responses":
        pytest.skip("the Responses API has no stop sequences")
    model, prefix = TARGETS[target]
    answer = client.ask(model, target, stream, [{"kind": "user", "text": "Hi"}], stop=["\n\nEND"])
    assert answer.provider == target
    body = upstream_body(sim, prefix)
    if target == "google":
        assert body["generationConfig"]["stopSequences"] == ["\n\nEND"]
    else:
        assert body[STOP_FIELD[target]] == ["\n\nEND"]
