"""The Gemini API in front of every catalog model, driven by the official google-genai SDK with only its
base URL changed."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import errors, types

from gateway_support import NANO, Gateway, generation

HAIKU = "anthropic/claude-haiku-4.5"
GEMINI = "google/gemini-2.5-flash"
GPT_OSS = "openai/gpt-oss-20b"  # at OpenAI-compatible servers (Groq first)
MODELS = [NANO, GPT_OSS, HAIKU, GEMINI]
PREFIX = {NANO: "openai", GPT_OSS: "groq", HAIKU: "anthropic", GEMINI: "google"}
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather for a city",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
# A 1x1 PNG.
PIXEL = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def gateway(module_gateway: Gateway) -> Gateway:
    return module_gateway


def gemini_client(gateway: Gateway, key: str | None = None) -> genai.Client:
    return genai.Client(
        api_key=key or gateway.key,
        http_options=types.HttpOptions(base_url=f"{gateway.url}/api/gemini", api_version="v1beta"),
    )


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> Iterator[genai.Client]:
    # One for the module's gateway: building a google-genai client (its TLS context) costs about 0.2 s.
    with gemini_client(gateway) as c:
        yield c


def only(provider: str) -> types.HttpOptions:
    """The routing extension ``provider`` in the body, as the SDK sends extra fields."""
    return types.HttpOptions(extra_body={"provider": {"only": [provider]}})


def at(model: str, **config: Any) -> types.GenerateContentConfig:
    """A config that sends ``model`` to the simulated provider the test looks at."""
    return types.GenerateContentConfig(http_options=only(PREFIX[model]), **config)


def test_text_answer_with_usage_cost_and_record(client: genai.Client, gateway: Gateway, sim: Any) -> None:
    response = client.models.generate_content(
        model=NANO,
        contents="Hello",
        config=at(
            NANO,
            system_instruction="Be brief.",
            temperature=0.3,
            max_output_tokens=60,
            stop_sequences=["\n\nEND"],
        ),
    )
    assert response.text
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    usage = response.usage_metadata
    assert usage is not None and usage.prompt_token_count and usage.candidates_token_count
    assert usage.total_token_count == usage.prompt_token_count + usage.candidates_token_count
    assert response.model_version == NANO and response.response_id
    headers = response.sdk_http_response.headers if response.sdk_http_response else {}
    assert (headers or {}).get("x-generation-id") == response.response_id
    body = sim.requests("openai")[-1]["body"]
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
    ]
    assert body["temperature"] == 0.3 and body["stop"] == ["\n\nEND"] and body["model"] == "gpt-4.1-nano"
    assert body["max_completion_tokens"] == 60 or body.get("max_tokens") == 60
    record = generation(gateway, response.response_id)
    assert record["model"] == NANO and record["tokens_completion"] == usage.candidates_token_count
    assert record["usage"] == pytest.approx(
        (usage.prompt_token_count * 0.10 + usage.candidates_token_count * 0.40) / 1e6, rel=1e-9
    )


@pytest.mark.parametrize("model", MODELS)
def test_streamed_text_equals_the_whole_answer(client: genai.Client, gateway: Gateway, model: str) -> None:
    config = at(model, max_output_tokens=80)
    whole = client.models.generate_content(model=model, contents="Tell me something", config=config)
    chunks = list(
        client.models.generate_content_stream(model=model, contents="Tell me something", config=config)
    )
    streamed = "".join(c.text or "" for c in chunks)
    assert whole.text and streamed == whole.text
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata and last.usage_metadata.candidates_token_count
    assert all(c.response_id == chunks[0].response_id for c in chunks)
    record = generation(gateway, chunks[0].response_id or "")
    assert record["model"] == model and record["provider"] == PREFIX[model]


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_function_call_round_trip_keeps_the_call_id(
    client: genai.Client, sim: Any, model: str, stream: bool
) -> None:
    config = at(model, tools=[types.Tool(function_declarations=[WEATHER])])
    contents: list[Any] = [types.Content(role="user", parts=[types.Part(text="Weather in Paris?")])]

    def ask() -> types.GenerateContentResponse:
        if not stream:
            return client.models.generate_content(model=model, contents=contents, config=config)
        chunks = list(client.models.generate_content_stream(model=model, contents=contents, config=config))
        parts = [
            p
            for c in chunks
            if c.candidates and c.candidates[0].content
            for p in c.candidates[0].content.parts or ()
        ]
        return types.GenerateContentResponse(
            candidates=[types.Candidate(content=types.Content(role="model", parts=parts))]
        )

    first = ask()
    calls = first.function_calls or []
    assert calls and calls[0].name == "get_weather" and isinstance((calls[0].args or {}).get("city"), str)
    assert calls[0].id
    assert first.candidates and first.candidates[0].content
    contents.append(first.candidates[0].content)
    contents.append(
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        id=c.id, name=c.name, response={"output": "21 C"}
                    )
                )
                for c in calls
            ],
        )
    )
    second = ask()
    assert second.text and not second.function_calls
    upstream = json.dumps(sim.requests(PREFIX[model])[-1]["body"])
    assert calls[0].id in upstream and "21 C" in upstream


def test_function_response_without_ids_answers_the_call_of_its_name(client: genai.Client, sim: Any) -> None:
    """Gemini's own calls may come without ids: a response then answers the open call of its name."""
    contents = [
        types.Content(role="user", parts=[types.Part(text="Weather in Paris?")]),
        types.Content(
            role="model",
            parts=[types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": "Paris"}))],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(name="get_weather", response={"output": "21 C"})
                )
            ],
        ),
    ]
    config = at(NANO, tools=[types.Tool(function_declarations=[WEATHER])])
    answer = client.models.generate_content(model=NANO, contents=contents, config=config)
    assert answer.text
    messages = sim.requests("openai")[-1]["body"]["messages"]
    call_id = messages[1]["tool_calls"][0]["id"]
    assert messages[2] == {"role": "tool", "tool_call_id": call_id, "content": "21 C"}


def test_function_calling_config_any_names_the_function(client: genai.Client, sim: Any) -> None:
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER, types.FunctionDeclaration(name="get_time")])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"]
            )
        ),
    )
    answer = client.models.generate_content(model=HAIKU, contents="Paris?", config=config)
    assert answer.function_calls and answer.function_calls[0].name == "get_weather"
    body = sim.requests("anthropic")[-1]["body"]
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert [t["name"] for t in body["tools"]] == ["get_weather"]


@pytest.mark.parametrize("model", [NANO, HAIKU, GEMINI])
def test_inline_image_reaches_the_provider(client: genai.Client, sim: Any, model: str) -> None:
    contents = [types.Part.from_bytes(data=PIXEL, mime_type="image/png"), "What is this?"]
    answer = client.models.generate_content(model=model, contents=contents, config=at(model))
    assert answer.text
    data = base64.b64encode(PIXEL).decode()
    assert data in json.dumps(sim.requests(PREFIX[model])[-1]["body"])


@pytest.mark.parametrize("model", [NANO, HAIKU, GEMINI])
@pytest.mark.parametrize("which", ["response_json_schema", "response_schema"])
def test_json_schema_output(client: genai.Client, model: str, which: str) -> None:
    schema: Any = (
        PERSON
        if which == "response_json_schema"
        else types.Schema(
            type=types.Type.OBJECT,
            properties={
                "name": types.Schema(type=types.Type.STRING),
                "age": types.Schema(type=types.Type.INTEGER),
            },
            required=["name", "age"],
        )
    )
    config = types.GenerateContentConfig(response_mime_type="application/json", **{which: schema})
    answer = client.models.generate_content(model=model, contents="A person.", config=config)
    data = json.loads(answer.text or "")
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


def test_thinking_budget_and_thoughts(client: genai.Client, sim: Any) -> None:
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(thinking_budget=2048, include_thoughts=True)
    )
    answer = client.models.generate_content(model=HAIKU, contents="Think about it", config=config)
    body = sim.requests("anthropic")[-1]["body"]
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert answer.candidates and answer.candidates[0].content
    parts = answer.candidates[0].content.parts or []
    assert parts[0].thought and parts[0].text and answer.text
    usage = answer.usage_metadata
    assert usage is not None and usage.thoughts_token_count


def test_thinking_budget_and_thoughts_from_gemini(client: genai.Client, sim: Any) -> None:
    """To Google the budget goes as it came, and the thoughts Gemini shows come back as thought parts."""
    config = at(GEMINI, thinking_config=types.ThinkingConfig(thinking_budget=2048, include_thoughts=True))
    answer = client.models.generate_content(model=GEMINI, contents="Think about it", config=config)
    body = sim.requests("google")[-1]["body"]
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 2048, "includeThoughts": True}
    assert answer.candidates and answer.candidates[0].content
    parts = answer.candidates[0].content.parts or []
    assert parts[0].thought and parts[0].text and answer.text
    hidden = client.models.generate_content(
        model=GEMINI,
        contents="Think about it",
        config=at(GEMINI, thinking_config=types.ThinkingConfig(thinking_budget=2048)),
    )
    body = sim.requests("google")[-1]["body"]
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 2048}
    assert hidden.candidates and hidden.candidates[0].content
    assert not any(p.thought for p in hidden.candidates[0].content.parts or [])


def test_count_tokens(client: genai.Client, sim: Any) -> None:
    short = client.models.count_tokens(model=NANO, contents="Hello")
    longer = client.models.count_tokens(model=GEMINI, contents="Hello " * 200)
    assert short.total_tokens and longer.total_tokens and longer.total_tokens > short.total_tokens
    assert not sim.requests("openai") and not sim.requests("google")  # counted offline


def test_models_list_and_get(client: genai.Client) -> None:
    names = [m.name for m in client.models.list()]
    assert f"models/{NANO}" in names and f"models/{GEMINI}" in names
    model = client.models.get(model=NANO)
    assert model.name == f"models/{NANO}" and model.input_token_limit and model.output_token_limit
    assert "generateContent" in (model.supported_actions or [])
    for native in ("gemini-2.5-flash", "models/gemini-2.5-flash"):
        assert client.models.get(model=native).name == f"models/{GEMINI}"


@pytest.mark.parametrize("name", ["gemini-2.5-flash", "models/gemini-2.5-flash", f"models/{NANO}"])
def test_native_and_prefixed_model_names_resolve(client: genai.Client, name: str) -> None:
    answer = client.models.generate_content(model=name, contents="Hi")
    assert answer.text and answer.model_version in (GEMINI, NANO)


def test_routing_extension_and_dropped_safety_settings(client: genai.Client, gateway: Gateway) -> None:
    config = types.GenerateContentConfig(
        safety_settings=[
            types.SafetySetting(
                category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                threshold=types.HarmBlockThreshold.BLOCK_ONLY_HIGH,
            )
        ],
        http_options=only("groq"),
    )
    answer = client.models.generate_content(model=GPT_OSS, contents="Hi", config=config)
    record = generation(gateway, answer.response_id or "")
    assert record["provider"] == "groq" and "safetySettings" in record["dropped_params"]


def test_errors_are_gemini_shaped(client: genai.Client, gateway: Gateway) -> None:
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="no-such-model", contents="Hi")
    assert caught.value.code == 404 and caught.value.status == "NOT_FOUND"
    with gemini_client(gateway, key="sk-wrong") as wrong, pytest.raises(errors.ClientError) as caught:
        wrong.models.generate_content(model=NANO, contents="Hi")
    assert caught.value.code == 401 and caught.value.status == "UNAUTHENTICATED"
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(
            model=NANO, contents="Hi", config=types.GenerateContentConfig(candidate_count=2)
        )
    assert caught.value.code == 400 and "candidateCount" in (caught.value.message or "")


def raw(gateway: Gateway, method: str, path: str, **kw: Any) -> httpx.Response:
    return httpx.request(method, f"{gateway.url}/api/gemini/v1beta/{path}", timeout=10, **kw)


HELLO = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


def test_key_in_query_or_bearer(gateway: Gateway) -> None:
    path = f"models/{NANO}:generateContent"
    by_query = raw(gateway, "POST", path, params={"key": gateway.key}, json=HELLO)
    by_bearer = raw(gateway, "POST", path, headers={"Authorization": f"Bearer {gateway.key}"}, json=HELLO)
    assert by_query.status_code == 200 and by_bearer.status_code == 200, by_query.text
    missing = raw(gateway, "POST", path, json=HELLO)
    assert missing.status_code == 401 and missing.json()["error"]["status"] == "UNAUTHENTICATED"


def test_unknown_routes_and_streams_without_sse(gateway: Gateway) -> None:
    auth = {"x-goog-api-key": gateway.key}
    for method, path in [("POST", f"models/{NANO}:embedContent"), ("GET", "tunedModels"), ("POST", "models")]:
        r = raw(gateway, method, path, headers=auth, json=HELLO)
        assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND", (path, r.text)
    r = httpx.get(f"{gateway.url}/api/gemini/v9/models", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["code"] == 404
    r = raw(gateway, "POST", f"models/{NANO}:streamGenerateContent", headers=auth, json=HELLO)
    assert r.status_code == 400 and "alt=sse" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "contents"),
        ({"contents": [{"role": "robot", "parts": [{"text": "Hi"}]}]}, "role"),
        ({"contents": [{"role": "user", "parts": [{"fileData": {"fileUri": "files/abc"}}]}]}, "inlineData"),
        ({**HELLO, "cachedContent": "cachedContents/x"}, "cachedContent"),
        ({**HELLO, "generationConfig": {"responseMimeType": "text/x.enum"}}, "x.enum"),
        (
            {
                "contents": [
                    {
                        "role": "user",
                        "parts": [{"functionResponse": {"name": "f", "response": {"output": 1}}}],
                    }
                ]
            },
            "functionResponse",
        ),
    ],
)
def test_bad_requests_get_a_gemini_400(gateway: Gateway, body: dict[str, Any], says: str) -> None:
    r = raw(
        gateway, "POST", f"models/{NANO}:generateContent", headers={"x-goog-api-key": gateway.key}, json=body
    )
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400 and says in error["message"]
