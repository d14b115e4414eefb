"""The ``google`` adapter over a MockTransport: what it sends, how it reads answers, streams and errors."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from adapter_helpers import Recorder, chat, collect, config, context

from tokenmux.errors import ProviderMalformed, ProviderRejected, ProviderUnreachable, StreamInterrupted
from tokenmux.providers import build_provider, provider_kinds
from tokenmux.providers.google import GoogleProvider
from tokenmux.providers.google_request import SKIP_SIGNATURE
from tokenmux.providers.redaction import RedactedProvider
from tokenmux.providers.transport import HttpRequest, MockResponse, MockTransport
from tokenmux.types import StreamEvent, Usage

MODEL = "gemini-2.5-flash"
BASE = "http://127.0.0.1:9100/google"
KEY = "gm-test-0123456789"
USAGE = {
    "promptTokenCount": 1200,
    "candidatesTokenCount": 40,
    "totalTokenCount": 1340,
    "cachedContentTokenCount": 1024,
    "thoughtsTokenCount": 100,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 1200}],
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "strict": True,
        "parameters": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}


def provider(handler: Any, **config_overrides: Any) -> GoogleProvider:
    values = {"base_url": BASE, "api_key": KEY, **config_overrides}
    return GoogleProvider(config("google", **values), MockTransport(handler))


def ctx(params: dict[str, Any] | None = None, model: str = MODEL, **kw: Any) -> Any:
    return context(params, upstream_model=model, provider="google", **kw)


def candidate(
    parts: list[dict[str, Any]], finish: str | None = "STOP", index: int = 0, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": index, **extra}
    if finish:
        body["finishReason"] = finish
    return body


def answer(*candidates: dict[str, Any], usage: dict[str, Any] | None = USAGE) -> dict[str, Any]:
    body: dict[str, Any] = {
        "candidates": list(candidates),
        "modelVersion": "gemini-2.5-flash-001",
        "responseId": "resp-1",
    }
    if usage is not None:
        body["usageMetadata"] = usage
    return body


def sse(*payloads: Any) -> MockResponse:
    """A Gemini stream: each chunk a ``data:`` event ended by a CRLF pair, no end marker."""
    chunks = [
        p if isinstance(p, bytes) else b"data: " + msgspec.json.encode(p) + b"\r\n\r\n" for p in payloads
    ]
    return MockResponse(200, {"content-type": "text/event-stream"}, chunks)


async def complete_with(
    params: dict[str, Any], messages: list[dict[str, Any]] | None = None, model: str = MODEL
) -> Any:
    """The body the adapter sends for ``params`` and ``messages``."""
    recorder = Recorder(MockResponse.json(answer(candidate([{"text": "ok"}]))))
    await provider(recorder).complete(chat(messages=messages), ctx(params, model=model))
    return recorder.body


# What goes out


async def test_request_goes_to_generate_content_with_the_key_in_a_header() -> None:
    recorder = Recorder(MockResponse.json(answer(candidate([{"text": "A cat."}]))))
    await provider(recorder, headers=(("x-goog-user-project", "p1"),)).complete(chat(), ctx(timeout_s=12.5))

    [sent] = recorder.requests
    assert sent.method == "POST"
    assert sent.url == f"{BASE}/v1beta/models/{MODEL}:generateContent"
    assert sent.headers == [
        ("x-goog-api-key", KEY),
        ("Content-Type", "application/json"),
        ("x-goog-user-project", "p1"),
    ]
    assert KEY not in sent.url and sent.timeout_s == 12.5
    assert msgspec.json.decode(sent.body) == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "What is in this picture?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                ],
            }
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }


async def test_stream_goes_to_stream_generate_content_with_alt_sse() -> None:
    recorder = Recorder(sse(answer(candidate([{"text": "hi"}]))))
    await collect(provider(recorder).stream(chat(stream=True), ctx()))

    assert recorder.requests[0].url == f"{BASE}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"


@pytest.mark.parametrize(
    ("base_url", "model", "url"),
    [
        (f"{BASE}/", MODEL, f"{BASE}/v1beta/models/{MODEL}:generateContent"),
        (
            "https://generativelanguage.googleapis.com/v1beta",
            MODEL,
            f"https://generativelanguage.googleapis.com/v1beta/models/{MODEL}:generateContent",
        ),
        (
            "https://generativelanguage.googleapis.com/v1",
            MODEL,
            f"https://generativelanguage.googleapis.com/v1beta/models/{MODEL}:generateContent",
        ),
        (BASE, f"models/{MODEL}", f"{BASE}/v1beta/models/{MODEL}:generateContent"),
    ],
)
async def test_base_url_and_model_name_forms(base_url: str, model: str, url: str) -> None:
    recorder = Recorder(MockResponse.json(answer(candidate([{"text": "ok"}]))))
    await provider(recorder, base_url=base_url).complete(chat(), ctx(model=model))

    assert recorder.requests[0].url == url


async def test_no_key_means_no_key_header() -> None:
    recorder = Recorder(MockResponse.json(answer(candidate([{"text": "ok"}]))))
    await provider(recorder, api_key=None).complete(chat(), ctx())

    assert recorder.requests[0].headers == [("Content-Type", "application/json")]


async def test_a_conversation_becomes_alternating_contents() -> None:
    messages = [
        {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
        {"role": "user", "content": "Look at these."},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/photo?id=3"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {
                    "type": "file",
                    "file": {"file_data": "data:application/pdf;base64,JVBERi0=", "filename": "a.pdf"},
                },
            ],
        },
        {"role": "assistant", "content": "Two pictures."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
    ]
    body = await complete_with({}, messages)

    assert body["systemInstruction"] == {
        "parts": [{"text": "Use metric units."}, {"text": "Answer in French."}]
    }
    assert body["contents"] == [
        {
            "role": "user",
            "parts": [
                {"text": "Look at these."},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo?id=3"}},
                {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                {"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}},
            ],
        },
        {"role": "model", "parts": [{"text": "Two pictures."}]},
        {"role": "user", "parts": [{"text": "Thanks"}]},
    ]


TOOL_TURNS: list[dict[str, Any]] = [
    {"role": "user", "content": "Weather in Paris and Rome?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                "extra_content": {"google": {"thought_signature": "c2lnbmVk"}},
            },
            {
                "id": "call_2",
                "type": "function",
                "function": {"name": "get_time", "arguments": '{"zone": "CET"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
    {
        "role": "tool",
        "tool_call_id": "call_2",
        "content": [{"type": "text", "text": "it is noon"}],
        "is_error": True,
    },
]


async def test_tool_calls_and_results_become_function_calls_and_responses() -> None:
    body = await complete_with({"tools": [WEATHER_TOOL]}, TOOL_TURNS)

    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
        {
            "role": "model",
            "parts": [
                {
                    "functionCall": {"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"},
                    "thoughtSignature": "c2lnbmVk",
                },
                {"functionCall": {"name": "get_time", "args": {"zone": "CET"}, "id": "call_2"}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"result": {"temp": 21}},
                        "id": "call_1",
                    }
                },
                {
                    "functionResponse": {
                        "name": "get_time",
                        "response": {"error": "it is noon"},
                        "id": "call_2",
                    }
                },
            ],
        },
    ]


async def test_unsigned_function_calls_get_the_placeholder_on_models_that_check_signatures() -> None:
    unsigned = [{**TOOL_TURNS[1], "tool_calls": [TOOL_TURNS[1]["tool_calls"][1]]}]
    messages = [TOOL_TURNS[0], *unsigned, TOOL_TURNS[3]]
    newer = await complete_with({}, messages, model="gemini-3-pro-preview")
    older = await complete_with({}, messages, model="gemini-2.5-pro")

    assert newer["contents"][1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE
    assert "thoughtSignature" not in older["contents"][1]["parts"][0]


async def test_a_result_without_its_call_is_named_after_the_call_id() -> None:
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "toolu_9", "content": "plain text"},
    ]
    body = await complete_with({}, messages)

    assert body["contents"][0]["parts"][1] == {
        "functionResponse": {"name": "toolu_9", "response": {"result": "plain text"}, "id": "toolu_9"}
    }


async def test_tools_are_function_declarations_with_their_json_schema() -> None:
    body = await complete_with({"tools": [WEATHER_TOOL, {"type": "function", "function": {"name": "now"}}]})

    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parametersJsonSchema": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                        "additionalProperties": False,
                    },
                },
                {"name": "now"},
            ]
        }
    ]
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("tool_choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("none", {"mode": "NONE"}),
        ("required", {"mode": "ANY"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
async def test_tool_choice_becomes_function_calling_config(tool_choice: Any, config: dict[str, Any]) -> None:
    body = await complete_with({"tools": [WEATHER_TOOL], "tool_choice": tool_choice})

    assert body["toolConfig"] == {"functionCallingConfig": config}


async def test_parameters_become_generation_config() -> None:
    params = {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "max_tokens": 100,
        "max_completion_tokens": 256,
        "stop": ["\n\n", "END"],
        "seed": 42,
        "presence_penalty": 0.5,
        "frequency_penalty": -0.5,
        "n": 2,
        "logprobs": True,
        "top_logprobs": 3,
        "response_format": {"type": "json_object"},
        # No Gemini equivalent: left out.
        "logit_bias": {"1": 5},
        "user": "u-1",
        "parallel_tool_calls": False,
    }
    body = await complete_with(params)

    assert set(body) == {"contents", "systemInstruction", "generationConfig"}
    assert body["generationConfig"] == {
        "temperature": 0.2,
        "topP": 0.9,
        "topK": 40,
        "seed": 42,
        "presencePenalty": 0.5,
        "frequencyPenalty": -0.5,
        "candidateCount": 2,
        "maxOutputTokens": 256,
        "stopSequences": ["\n\n", "END"],
        "responseMimeType": "application/json",
        "responseLogprobs": True,
        "logprobs": 3,
    }


async def test_a_single_stop_string_and_max_tokens() -> None:
    body = await complete_with({"stop": "END", "max_tokens": 10})

    assert body["generationConfig"] == {"stopSequences": ["END"], "maxOutputTokens": 10}


async def test_json_schema_output_goes_as_response_json_schema() -> None:
    schema = {"$schema": "x", "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    body = await complete_with(
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "answer", "strict": True, "schema": schema},
            }
        }
    )

    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
    }


@pytest.mark.parametrize(
    ("params", "thinking"),
    [
        ({"reasoning_effort": "low"}, {"thinkingBudget": 1024}),
        ({"reasoning_effort": "high"}, {"thinkingBudget": 24576}),
        ({"reasoning_effort": "none"}, {"thinkingBudget": 0}),
        ({"reasoning": {"max_tokens": 2000}}, {"thinkingBudget": 2000, "includeThoughts": True}),
        ({"reasoning": {"effort": "medium", "exclude": True}}, {"thinkingBudget": 8192}),
        ({"reasoning": {"enabled": True}}, {"includeThoughts": True}),
        ({"reasoning": {"enabled": False}}, {"thinkingBudget": 0}),
    ],
)
async def test_reasoning_becomes_thinking_config(params: dict[str, Any], thinking: dict[str, Any]) -> None:
    body = await complete_with(params)

    assert body["generationConfig"] == {"thinkingConfig": thinking}


# What comes back


async def test_answer_becomes_a_chat_response_with_usage() -> None:
    recorder = Recorder(
        MockResponse.json(
            answer(candidate([{"text": "Thinking...", "thought": True}, {"text": "A "}, {"text": "cat."}]))
        )
    )
    response = await provider(recorder).complete(chat(), ctx())

    assert response.id == "resp-1" and response.model == "gemini-2.5-flash-001"
    assert response.choices == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "A cat.", "reasoning": "Thinking..."},
            "finish_reason": "stop",
            "logprobs": None,
        }
    ]
    assert response.usage == Usage(
        prompt_tokens=1200, completion_tokens=140, cached_tokens=1024, reasoning_tokens=100
    )


async def test_usage_without_cache_or_thoughts_and_with_tool_use_prompt() -> None:
    usage = {
        "promptTokenCount": 10,
        "candidatesTokenCount": 5,
        "toolUsePromptTokenCount": 7,
        "totalTokenCount": 22,
    }
    recorder = Recorder(MockResponse.json(answer(candidate([{"text": "ok"}]), usage=usage)))
    response = await provider(recorder).complete(chat(), ctx())

    assert response.usage == Usage(prompt_tokens=17, completion_tokens=5)


async def test_function_calls_become_tool_calls_with_stable_ids() -> None:
    parts = [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "get_time", "args": {}, "id": "gemini-id-2"}},
    ]
    recorder = Recorder(
        MockResponse.json(answer(candidate(parts))), MockResponse.json(answer(candidate(parts)))
    )
    adapter = provider(recorder)
    first = await adapter.complete(chat(), ctx())
    again = await adapter.complete(chat(), ctx())

    [choice] = first.choices
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    weather, time_call = message["tool_calls"]
    assert weather["id"].startswith("call_") and len(weather["id"]) == 5 + 24
    assert weather["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert weather["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    assert time_call == {
        "id": "gemini-id-2",
        "type": "function",
        "function": {"name": "get_time", "arguments": "{}"},
    }
    assert again.choices[0]["message"]["tool_calls"][0]["id"] == weather["id"]


async def test_a_tool_round_trip_sends_the_ids_back() -> None:
    call = {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    recorder = Recorder(
        MockResponse.json(answer(candidate([call]))), MockResponse.json(answer(candidate([{"text": "21 C"}])))
    )
    adapter = provider(recorder)
    first = await adapter.complete(chat(), ctx({"tools": [WEATHER_TOOL]}))
    assistant = first.choices[0]["message"]
    [tool_call] = assistant["tool_calls"]
    turns = [
        {"role": "user", "content": "Weather?"},
        assistant,
        {"role": "tool", "tool_call_id": tool_call["id"], "content": "21"},
    ]
    await adapter.complete(chat(messages=turns), ctx({"tools": [WEATHER_TOOL]}))

    model_turn, result_turn = recorder.body["contents"][1:]
    assert model_turn["parts"][0]["functionCall"] == {
        "name": "get_weather",
        "args": {"city": "Paris"},
        "id": tool_call["id"],
    }
    assert result_turn["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"result": 21}, "id": tool_call["id"]}}
    ]


@pytest.mark.parametrize(
    ("gemini_reason", "finish_reason"),
    [
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("OTHER", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
    ],
)
async def test_finish_reasons(gemini_reason: str, finish_reason: str) -> None:
    recorder = Recorder(MockResponse.json(answer(candidate([{"text": "x"}], finish=gemini_reason))))
    response = await provider(recorder).complete(chat(), ctx())

    assert response.choices[0]["finish_reason"] == finish_reason


async def test_candidates_become_choices() -> None:
    recorder = Recorder(
        MockResponse.json(answer(candidate([{"text": "one"}]), candidate([{"text": "two"}], index=1)))
    )
    response = await provider(recorder).complete(chat(), ctx({"n": 2}))

    assert [(c["index"], c["message"]["content"]) for c in response.choices] == [(0, "one"), (1, "two")]


async def test_logprobs_in_openai_shape() -> None:
    result = {
        "chosenCandidates": [
            {"token": "A", "logProbability": -0.1},
            {"token": " cat", "logProbability": -0.5},
        ],
        "topCandidates": [
            {
                "candidates": [
                    {"token": "A", "logProbability": -0.1},
                    {"token": "The", "logProbability": -2.0},
                ]
            },
            {"candidates": [{"token": " cat", "logProbability": -0.5}]},
        ],
    }
    recorder = Recorder(MockResponse.json(answer(candidate([{"text": "A cat"}], logprobsResult=result))))
    response = await provider(recorder).complete(chat(), ctx({"logprobs": True, "top_logprobs": 2}))

    content = response.choices[0]["logprobs"]["content"]
    assert content[0] == {
        "token": "A",
        "logprob": -0.1,
        "bytes": [65],
        "top_logprobs": [
            {"token": "A", "logprob": -0.1, "bytes": [65]},
            {"token": "The", "logprob": -2.0, "bytes": [84, 104, 101]},
        ],
    }
    assert [entry["token"] for entry in content] == ["A", " cat"]


BLOCKED = {
    "promptFeedback": {
        "blockReason": "SAFETY",
        "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
        ],
    },
    "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
    "modelVersion": MODEL,
    "responseId": "resp-9",
}


async def test_a_blocked_prompt_is_rejected_with_400() -> None:
    with pytest.raises(ProviderRejected, match="the provider blocked the prompt: SAFETY") as caught:
        await provider(Recorder(MockResponse.json(BLOCKED))).complete(chat(), ctx())

    assert caught.value.upstream_status == 400 and not caught.value.retryable


# Streams


async def test_stream_gives_deltas_a_finish_and_the_last_usage() -> None:
    first_usage = {"promptTokenCount": 1200, "totalTokenCount": 1200}
    recorder = Recorder(
        sse(
            {**answer(candidate([{"text": "Hmm", "thought": True}], finish=None), usage=first_usage)},
            {**answer(candidate([{"text": "A "}], finish=None), usage=first_usage)},
            answer(candidate([{"text": "cat."}], finish="STOP")),
        )
    )
    events = await collect(provider(recorder).stream(chat(stream=True), ctx()))

    assert [(e.delta, e.finish_reason) for e in events[:-1]] == [
        ({"role": "assistant", "content": ""}, None),
        ({"reasoning": "Hmm"}, None),
        ({"content": "A "}, None),
        ({"content": "cat."}, None),
        (None, "stop"),
    ]
    assert all(e.id == "resp-1" for e in events[:-1])
    assert events[-1] == StreamEvent(usage=Usage(1200, 140, 1024, reasoning_tokens=100))


async def test_a_streamed_function_call_is_one_tool_calls_delta() -> None:
    calls = [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_time", "args": {"zone": "CET"}}},
    ]
    recorder = Recorder(
        sse(answer(candidate(calls[:1], finish=None)), answer(candidate(calls[1:], finish="STOP")))
    )
    events = await collect(provider(recorder).stream(chat(stream=True), ctx({"tools": [WEATHER_TOOL]})))

    deltas = [e.delta["tool_calls"][0] for e in events if e.delta and "tool_calls" in e.delta]
    assert [(d["index"], d["function"]["name"], d["function"]["arguments"]) for d in deltas] == [
        (0, "get_weather", '{"city":"Paris"}'),
        (1, "get_time", '{"zone":"CET"}'),
    ]
    assert all(d["id"].startswith("call_") and d["type"] == "function" for d in deltas)
    assert [e.finish_reason for e in events if e.finish_reason] == ["tool_calls"]


async def test_streamed_candidates_finish_each() -> None:
    recorder = Recorder(
        sse(
            answer(
                candidate([{"text": "one"}], finish=None), candidate([{"text": "two"}], finish=None, index=1)
            ),
            answer(candidate([], finish="STOP"), candidate([{"text": "!"}], finish="MAX_TOKENS", index=1)),
        )
    )
    events = await collect(provider(recorder).stream(chat(stream=True), ctx({"n": 2})))

    assert [(e.index, e.finish_reason) for e in events if e.finish_reason] == [(0, "stop"), (1, "length")]


async def test_a_blocked_streamed_prompt_is_rejected_before_any_output() -> None:
    with pytest.raises(ProviderRejected, match="blocked the prompt: SAFETY"):
        await collect(provider(Recorder(sse(BLOCKED))).stream(chat(stream=True), ctx()))


async def test_a_stream_cut_after_output_is_interrupted() -> None:
    recorder = Recorder(sse(answer(candidate([{"text": "A "}], finish=None))))
    events: list[StreamEvent] = []
    with pytest.raises(StreamInterrupted, match="ended before the answer was finished"):
        async for event in provider(recorder).stream(chat(stream=True), ctx()):
            events.append(event)

    assert events[-1].delta == {"content": "A "}


async def test_a_stream_without_an_answer_is_malformed() -> None:
    with pytest.raises(ProviderMalformed, match="ended without an answer"):
        await collect(provider(Recorder(sse())).stream(chat(stream=True), ctx()))


async def test_an_error_chunk_before_output_keeps_its_status() -> None:
    error = {"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}
    with pytest.raises(ProviderRejected, match="overloaded") as caught:
        await collect(provider(Recorder(sse(error))).stream(chat(stream=True), ctx()))

    assert caught.value.upstream_status == 503 and caught.value.retryable


async def test_an_error_chunk_after_output_interrupts_the_stream() -> None:
    error = {"error": {"message": "quota", "status": "RESOURCE_EXHAUSTED"}}
    recorder = Recorder(sse(answer(candidate([{"text": "A "}], finish=None)), error))
    with pytest.raises(StreamInterrupted, match="quota") as caught:
        await collect(provider(recorder).stream(chat(stream=True), ctx()))

    cause = caught.value.__cause__
    assert isinstance(cause, ProviderRejected) and cause.upstream_status == 429


async def test_a_chunk_that_is_not_json_is_malformed() -> None:
    with pytest.raises(ProviderMalformed, match="not JSON"):
        await collect(
            provider(Recorder(sse(b'data: {"candidates": [\r\n\r\n'))).stream(chat(stream=True), ctx())
        )


async def test_a_stream_split_anywhere_reads_the_same() -> None:
    whole = b"".join(
        b"data: " + msgspec.json.encode(p) + b"\r\n\r\n"
        for p in (answer(candidate([{"text": "A "}], finish=None)), answer(candidate([{"text": "cat."}])))
    )
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    recorder = Recorder(MockResponse(200, {"content-type": "text/event-stream"}, pieces))
    events = await collect(provider(recorder).stream(chat(stream=True), ctx()))

    assert "".join(e.delta.get("content") or "" for e in events if e.delta) == "A cat."


# Errors


async def test_429_takes_its_wait_from_retry_info() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "You exceeded your current quota.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"},
            ],
        }
    }
    with pytest.raises(ProviderRejected, match="exceeded your current quota") as caught:
        await provider(Recorder(MockResponse.json(body, status=429))).complete(chat(), ctx())

    error = caught.value
    assert error.upstream_status == 429 and error.retry_after == 37.0 and error.retryable
    assert error.upstream_type == "RESOURCE_EXHAUSTED" and error.error_class == "rate_limited"


async def test_a_retry_after_header_wins_over_retry_info() -> None:
    body = {
        "error": {
            "code": 429,
            "message": "slow down",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.5s"}],
        }
    }
    with pytest.raises(ProviderRejected) as caught:
        await (
            provider(Recorder(MockResponse.json(body, 429, {"retry-after": "3"})))
            .stream(chat(stream=True), ctx())
            .__anext__()
        )

    assert caught.value.retry_after == 3.0


async def test_an_invalid_request_is_not_retryable_and_hides_the_key() -> None:
    body = [{"error": {"code": 400, "message": f"API key not valid: {KEY}", "status": "INVALID_ARGUMENT"}}]
    with pytest.raises(ProviderRejected) as caught:
        adapter = build_provider(
            config("google", base_url=BASE, api_key=KEY),
            MockTransport(Recorder(MockResponse.json(body, status=400))),
        )
        await adapter.complete(chat(), ctx())

    error = caught.value
    assert error.upstream_status == 400 and not error.retryable and error.upstream_type == "INVALID_ARGUMENT"
    assert KEY not in error.message and "***" in error.message


async def test_an_error_body_that_is_not_json_is_quoted() -> None:
    response = MockResponse(502, {"content-type": "text/html"}, b"<html>Bad Gateway</html>")
    with pytest.raises(ProviderRejected, match=r"HTTP 502: <html>Bad Gateway") as caught:
        await provider(Recorder(response)).complete(chat(), ctx())

    assert caught.value.retryable


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b'{"modelVersion": "x"}', "unexpected shape"),
        (b'{"candidates": [{"content": {"parts": [{"functionCall": "x"}]}}]}', "unexpected shape"),
    ],
)
async def test_an_unreadable_answer_is_malformed(body: bytes, match: str) -> None:
    with pytest.raises(ProviderMalformed, match=match):
        await provider(Recorder(MockResponse(200, {}, body))).complete(chat(), ctx())


async def test_an_error_object_in_a_200_answer_is_a_rejection() -> None:
    body = {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}
    with pytest.raises(ProviderRejected, match="Internal error") as caught:
        await provider(Recorder(MockResponse.json(body))).complete(chat(), ctx())

    assert caught.value.upstream_status == 500


async def test_connection_errors_are_unreachable() -> None:
    def refuse(request: HttpRequest) -> MockResponse:
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(ProviderUnreachable, match="refused"):
        await provider(refuse).complete(chat(), ctx())


def test_the_google_kind_is_registered() -> None:
    adapter = build_provider(config("google", base_url=BASE), MockTransport(lambda request: MockResponse()))

    assert isinstance(adapter, RedactedProvider)
    assert type(adapter.adapter) is GoogleProvider and provider_kinds()["google"].adapter is GoogleProvider
