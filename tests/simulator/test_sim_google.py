"""The Gemini format, driven by the official ``google-genai`` SDK and checked with its types.

The format has one prefix for the whole session (``/google``): every test starts from the defaults."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pydantic
import pytest
from google import genai
from google.genai import errors, types

from tokenmux.server.runner import BackgroundServer
from tokenmux.simulator.control_client import PrefixControl, SimulatorControl

MODEL = "gemini-2.5-flash"
PATH = f"/google/v1beta/models/{MODEL}:generateContent"
STREAM_PATH = f"/google/v1beta/models/{MODEL}:streamGenerateContent"
HELLO = "Hello there"
HELLO_BODY: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": HELLO}]}]}
HELLO_PROMPT_TOKENS = 3 + 3 + len(HELLO) // 4
KEY = {"x-goog-api-key": "gemini-test-key"}

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Weather at a place",
    parameters_json_schema={
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
)
TIME = types.FunctionDeclaration(
    name="get_time",
    parameters=types.Schema(
        type=types.Type.OBJECT, properties={"zone": types.Schema(type=types.Type.STRING)}, required=["zone"]
    ),
)
NO_AUTOMATIC_CALLS = types.AutomaticFunctionCallingConfig(disable=True)


class Person(pydantic.BaseModel):
    name: str
    age: int


@pytest.fixture
def control(sim_control: SimulatorControl) -> Iterator[PrefixControl]:
    control = sim_control.at("google")
    control.set()
    control.clear()
    yield control
    control.set()


@pytest.fixture(scope="module")
def gemini_client(sim_server: BackgroundServer) -> genai.Client:
    return genai.Client(
        api_key="gemini-test-key",
        http_options=types.HttpOptions(base_url=f"{sim_server.url}/google", timeout=10_000),
    )


@pytest.fixture
def gemini(gemini_client: genai.Client, control: PrefixControl) -> genai.Client:
    return gemini_client


def _config(**fields: Any) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(automatic_function_calling=NO_AUTOMATIC_CALLS, **fields)


def _tools(*declarations: types.FunctionDeclaration) -> list[types.Tool]:
    return [types.Tool(function_declarations=list(declarations))]


def _parts(response: types.GenerateContentResponse, index: int = 0) -> list[types.Part]:
    assert response.candidates is not None
    content = response.candidates[index].content
    assert content is not None and content.parts is not None
    return content.parts


# -- answers ------------------------------------------------------------------------------------------


def test_answer_is_a_valid_generate_content_response(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(model=MODEL, contents=HELLO)

    assert response.text and response.text.endswith(".")
    assert response.model_version == MODEL and response.response_id
    assert response.candidates is not None
    [candidate] = response.candidates
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content is not None and candidate.content.role == "model"
    usage = response.usage_metadata
    assert usage is not None
    assert usage.prompt_token_count == HELLO_PROMPT_TOKENS
    assert usage.candidates_token_count == 24
    assert usage.total_token_count == HELLO_PROMPT_TOKENS + 24
    assert usage.cached_content_token_count is None and usage.thoughts_token_count is None


def test_request_log_keeps_the_body_and_redacts_the_key(gemini: genai.Client, control: PrefixControl) -> None:
    gemini.models.generate_content(
        model=MODEL, contents=HELLO, config=_config(system_instruction="Be brief.", temperature=0.5)
    )

    [logged] = control.requests()
    assert logged["path"].endswith(f"/models/{MODEL}:generateContent")
    assert logged["headers"]["x-goog-api-key"] == "<redacted>"
    body = logged["body"]
    assert body["contents"] == [{"parts": [{"text": HELLO}], "role": "user"}]
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert body["generationConfig"] == {"temperature": 0.5}


def test_the_key_may_come_in_the_query(http: httpx.Client, control: PrefixControl) -> None:
    response = http.post(PATH, params={"key": "gemini-test-key"}, json=HELLO_BODY)

    assert response.status_code == 200
    assert response.json()["candidates"][0]["finishReason"] == "STOP"


def test_max_output_tokens_and_stop_sequences(gemini: genai.Client) -> None:
    capped = gemini.models.generate_content(model=MODEL, contents=HELLO, config=_config(max_output_tokens=5))
    stopped = gemini.models.generate_content(
        model=MODEL, contents=HELLO, config=_config(stop_sequences=[" "])
    )

    assert (
        capped.candidates is not None and capped.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    )
    assert capped.usage_metadata is not None and capped.usage_metadata.candidates_token_count == 5
    assert stopped.candidates is not None and stopped.candidates[0].finish_reason == types.FinishReason.STOP
    assert stopped.text is not None and " " not in stopped.text


def test_candidate_count_gives_that_many_different_candidates(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(model=MODEL, contents=HELLO, config=_config(candidate_count=3))

    assert response.candidates is not None
    assert [c.index for c in response.candidates] == [0, 1, 2]
    texts = {"".join(p.text or "" for p in _parts(response, i)) for i in range(3)}
    assert len(texts) == 3
    assert response.usage_metadata is not None and response.usage_metadata.candidates_token_count == 72


def test_json_schema_output_is_parsed_by_the_sdk(gemini: genai.Client) -> None:
    typed = gemini.models.generate_content(
        model=MODEL,
        contents=HELLO,
        config=_config(response_mime_type="application/json", response_schema=Person),
    )
    schema = {
        "type": "object",
        "properties": {"tags": {"type": "array", "items": {"type": "string"}, "minItems": 1}},
        "required": ["tags"],
    }
    plain = gemini.models.generate_content(
        model=MODEL,
        contents=HELLO,
        config=_config(response_mime_type="application/json", response_json_schema=schema),
    )

    assert isinstance(typed.parsed, Person)
    assert plain.text is not None
    document = json.loads(plain.text)
    assert (
        list(document) == ["tags"] and document["tags"] and all(isinstance(t, str) for t in document["tags"])
    )


def test_thoughts_are_parts_when_asked_for_and_counted_always(
    gemini: genai.Client, control: PrefixControl
) -> None:
    control.set(reasoning_tokens=40, cached_ratio=0.5)
    shown = gemini.models.generate_content(
        model=MODEL,
        contents=HELLO,
        config=_config(thinking_config=types.ThinkingConfig(include_thoughts=True)),
    )
    hidden = gemini.models.generate_content(model=MODEL, contents=HELLO)

    thought, answer = _parts(shown)
    assert thought.thought is True and thought.text
    assert answer.thought is None and answer.text == shown.text
    for response in (shown, hidden):
        usage = response.usage_metadata
        assert usage is not None
        assert usage.thoughts_token_count == 40 and usage.candidates_token_count == 24
        assert usage.cached_content_token_count == HELLO_PROMPT_TOKENS // 2
        assert usage.total_token_count == HELLO_PROMPT_TOKENS + 64
    assert len(_parts(hidden)) == 1


def test_logprobs_cover_every_token(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model=MODEL, contents=HELLO, config=_config(response_logprobs=True, logprobs=2)
    )

    assert response.candidates is not None
    result = response.candidates[0].logprobs_result
    assert result is not None and result.chosen_candidates is not None and result.top_candidates is not None
    assert len(result.chosen_candidates) == 24 and len(result.top_candidates) == 24
    assert all(len(top.candidates or []) == 2 for top in result.top_candidates)
    assert "".join(c.token or "" for c in result.chosen_candidates) == response.text


def test_a_blocked_prompt_has_prompt_feedback_and_no_candidates(
    gemini: genai.Client, control: PrefixControl
) -> None:
    control.set(block_rate=1)
    response = gemini.models.generate_content(model=MODEL, contents=HELLO)
    chunks = list(gemini.models.generate_content_stream(model=MODEL, contents=HELLO))

    for blocked in (response, *chunks):
        assert blocked.candidates is None and blocked.text is None
        assert blocked.prompt_feedback is not None
        assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
        assert (
            blocked.usage_metadata is not None
            and blocked.usage_metadata.prompt_token_count == HELLO_PROMPT_TOKENS
        )
    assert len(chunks) == 1


# -- function calling ---------------------------------------------------------------------------------


def test_tools_get_a_function_call_with_args_from_the_schema(gemini: genai.Client) -> None:
    response = gemini.models.generate_content(
        model=MODEL, contents=HELLO, config=_config(tools=_tools(WEATHER))
    )

    [call] = response.function_calls or []
    assert call.name == "get_weather" and call.args is not None
    assert {"city", "unit"} <= set(call.args) and call.args["unit"] in ("celsius", "fahrenheit")
    assert response.candidates is not None and response.candidates[0].finish_reason == types.FinishReason.STOP


def test_mode_any_with_allowed_names_calls_that_function(gemini: genai.Client) -> None:
    tool_config = types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_time"]
        )
    )
    response = gemini.models.generate_content(
        model=MODEL, contents=HELLO, config=_config(tools=_tools(WEATHER, TIME), tool_config=tool_config)
    )
    both = gemini.models.generate_content(
        model=MODEL,
        contents=HELLO,
        config=_config(
            tools=_tools(WEATHER, TIME),
            tool_config=types.ToolConfig(
                function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY)
            ),
        ),
    )

    [call] = response.function_calls or []
    assert call.name == "get_time" and call.args is not None and isinstance(call.args["zone"], str)
    assert sorted(c.name or "" for c in both.function_calls or []) == ["get_time", "get_weather"]


def test_mode_none_answers_with_text(gemini: genai.Client) -> None:
    tool_config = types.ToolConfig(
        function_calling_config=types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.NONE)
    )
    response = gemini.models.generate_content(
        model=MODEL, contents=HELLO, config=_config(tools=_tools(WEATHER), tool_config=tool_config)
    )

    assert response.function_calls is None and response.text


def test_a_function_response_ends_the_round_trip_with_text(gemini: genai.Client) -> None:
    config = _config(tools=_tools(WEATHER))
    first = gemini.models.generate_content(model=MODEL, contents=HELLO, config=config)
    [call] = first.function_calls or []
    assert first.candidates is not None and first.candidates[0].content is not None
    turns = [
        types.Content(role="user", parts=[types.Part(text=HELLO)]),
        first.candidates[0].content,
        types.Content(
            role="user",
            parts=[types.Part.from_function_response(name=call.name or "", response={"result": "21 C"})],
        ),
    ]
    second = gemini.models.generate_content(model=MODEL, contents=turns, config=config)

    assert second.function_calls is None and second.text


def test_a_thinking_model_signs_its_first_function_call(gemini: genai.Client, control: PrefixControl) -> None:
    control.set(reasoning_tokens=10)
    response = gemini.models.generate_content(
        model=MODEL, contents=HELLO, config=_config(tools=_tools(WEATHER))
    )

    [part] = _parts(response)
    assert part.function_call is not None and part.thought_signature


# -- streams ------------------------------------------------------------------------------------------


def test_stream_sends_a_chunk_per_token_then_the_finish_with_usage(gemini: genai.Client) -> None:
    chunks = list(gemini.models.generate_content_stream(model=MODEL, contents=HELLO))

    *content, last = chunks
    assert len(content) == 24
    assert all(c.candidates and c.candidates[0].finish_reason is None for c in content)
    assert (
        content[0].usage_metadata is not None
        and content[0].usage_metadata.prompt_token_count == HELLO_PROMPT_TOKENS
    )
    assert content[0].usage_metadata.candidates_token_count is None
    assert last.candidates is not None and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None and last.usage_metadata.candidates_token_count == 24
    text = "".join(c.text or "" for c in chunks)
    assert len(text.split()) == 24 and text.endswith(".")
    assert len({c.response_id for c in chunks}) == 1


def test_raw_stream_is_server_sent_events_with_crlf(http: httpx.Client, control: PrefixControl) -> None:
    response = http.post(STREAM_PATH, params={"alt": "sse"}, json=HELLO_BODY, headers=KEY)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\r\n\r\n")
    assert events[-1] == "" and all(e.startswith("data: {") for e in events[:-1])
    assert json.loads(events[-2].removeprefix("data: "))["candidates"][0]["finishReason"] == "STOP"


def test_stream_with_thoughts_and_a_function_call(gemini: genai.Client) -> None:
    config = _config(tools=_tools(WEATHER), thinking_config=types.ThinkingConfig(include_thoughts=True))
    chunks = list(gemini.models.generate_content_stream(model=MODEL, contents=HELLO, config=config))

    parts = [part for chunk in chunks if chunk.candidates for part in _parts(chunk)]
    thoughts = [p for p in parts if p.thought]
    calls = [p.function_call for p in parts if p.function_call]
    assert len(thoughts) == 16
    [call] = calls  # a function call arrives whole, in one chunk
    assert call.name == "get_weather" and call.args is not None and "city" in call.args
    assert chunks[-1].usage_metadata is not None and chunks[-1].usage_metadata.thoughts_token_count == 16


def test_stream_with_candidates_interleaves_their_chunks(gemini: genai.Client) -> None:
    chunks = list(
        gemini.models.generate_content_stream(model=MODEL, contents=HELLO, config=_config(candidate_count=2))
    )

    texts = ["", ""]
    for chunk in chunks:
        for candidate in chunk.candidates or []:
            assert candidate.index is not None and candidate.content is not None
            texts[candidate.index] += "".join(p.text or "" for p in candidate.content.parts or [])
    assert len(chunks) == 2 * 24 + 1 and texts[0] != texts[1]
    assert chunks[-1].candidates is not None and len(chunks[-1].candidates) == 2


# -- errors and behaviour -----------------------------------------------------------------------------


def test_missing_key_is_403_in_gemini_error_shape(http: httpx.Client, control: PrefixControl) -> None:
    response = http.post(PATH, json=HELLO_BODY)

    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == 403 and error["status"] == "PERMISSION_DENIED" and "API Key" in error["message"]


def test_a_stream_without_alt_sse_is_refused(http: httpx.Client, control: PrefixControl) -> None:
    response = http.post(STREAM_PATH, json=HELLO_BODY, headers=KEY)

    assert response.status_code == 400 and "alt=sse" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({}, "contents"),
        ({"contents": [{"role": "user", "parts": []}]}, "parts"),
        ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "role"),
        ({**HELLO_BODY, "generationConfig": {"candidateCount": 9}}, "candidate_count"),
        (
            {**HELLO_BODY, "generationConfig": {"stopSequences": ["a", "b", "c", "d", "e", "f"]}},
            "stop_sequences",
        ),
        ({**HELLO_BODY, "generationConfig": {"responseSchema": {"type": "OBJECT"}}}, "responseMimeType"),
        ({**HELLO_BODY, "generationConfig": {"logprobs": 3}}, "responseLogprobs"),
    ],
)
def test_invalid_requests_are_400_invalid_argument(
    http: httpx.Client, control: PrefixControl, body: dict[str, Any], named: str
) -> None:
    response = http.post(PATH, json=body, headers=KEY)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and named in error["message"]


def test_sdk_raises_server_error_and_client_error(gemini: genai.Client, control: PrefixControl) -> None:
    control.set(error_rate=1, error_status=503)
    with pytest.raises(errors.ServerError) as server:
        gemini.models.generate_content(model=MODEL, contents=HELLO)
    control.set(rate_limit_rate=1)
    with pytest.raises(errors.ClientError) as client:
        gemini.models.generate_content(model=MODEL, contents=HELLO)

    assert server.value.code == 503 and server.value.status == "UNAVAILABLE"
    assert client.value.code == 429 and client.value.status == "RESOURCE_EXHAUSTED"
    assert client.value.response.headers["retry-after"] == "1"


def test_a_malformed_answer_fails_in_the_sdk(gemini: genai.Client, control: PrefixControl) -> None:
    control.set(malformed_rate=1)
    # No documented class for a whole answer the SDK cannot read: today the JSON parser's error reaches the
    # caller; a release may raise its APIError or UnknownApiResponseError (what a stream raises), as right.
    with pytest.raises((json.JSONDecodeError, errors.APIError, errors.UnknownApiResponseError)):
        gemini.models.generate_content(model=MODEL, contents=HELLO)
    with pytest.raises(errors.UnknownApiResponseError):
        list(gemini.models.generate_content_stream(model=MODEL, contents=HELLO))


def test_a_dropped_stream_breaks_after_that_many_chunks(http: httpx.Client, control: PrefixControl) -> None:
    control.set(drop_after_chunks=3)
    received: list[bytes] = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", STREAM_PATH, params={"alt": "sse"}, json=HELLO_BODY, headers=KEY) as response,
    ):
        received.extend(response.iter_bytes())

    assert b"".join(received).count(b"data: ") == 3


def test_unknown_routes_and_methods(http: httpx.Client, control: PrefixControl) -> None:
    for path in (
        f"/google/v1beta/models/{MODEL}:countTokens",
        "/google/v1beta/models",
        "/google/v1/chat/completions",
    ):
        response = http.post(path, json=HELLO_BODY, headers=KEY)
        assert response.status_code == 404 and response.json()["error"]["status"] == "NOT_FOUND"
    wrong_method = http.get(PATH, headers=KEY)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == 405
