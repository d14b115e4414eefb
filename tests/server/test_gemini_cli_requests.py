"""Requests shaped exactly as Gemini CLI 0.61.0 sends them (captured at the gateway's door; the texts here
are our own), sent to the Gemini route for OpenAI, Claude and Gemini models: a streamed turn with the
CLI's headers, system instruction, function declarations in ``parametersJsonSchema``, sampling settings and
a thinking budget with thoughts asked for; the next turn giving back the model's function call (with the
placeholder thought signature the CLI puts on calls that had none) and its functionResponse; and a utility
call of its web search tool, not streamed, with Google's own ``googleSearch`` tool."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from gateway_support import NANO, Gateway, generation

HEADERS = {
    "user-agent": "GeminiCLI-tui/0.61.0/gemini-2.5-flash (linux; x64; terminal)",
    "x-goog-api-client": "google-genai-sdk/1.30.0 gl-node/v20.20.2",
    "content-type": "application/json",
    "accept": "*/*",
}
SYSTEM = {"parts": [{"text": "You are a command-line assistant. Be brief."}]}
TOOLS = [
    {
        "functionDeclarations": [
            {
                "name": "read_file",
                "description": "Reads a file.",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"file_path": {"type": "string", "description": "The file."}},
                    "required": ["file_path"],
                },
            },
            {
                "name": "google_web_search",
                "description": "Searches the web.",
                "parametersJsonSchema": {
                    "type": "object",
                    "properties": {"query": {"type": "string"}},
                    "required": ["query"],
                },
            },
        ]
    }
]
CONFIG = {
    "temperature": 1,
    "topP": 0.95,
    "topK": 64,
    "thinkingConfig": {"includeThoughts": True, "thinkingBudget": 8192},
}
ASK = {
    "role": "user",
    "parts": [{"text": "<session_context>\nA folder.\n</session_context>"}, {"text": "Hi"}],
}
CALL_ID = "call_5a1d0c9e2b7f4a3c8d6e0f12"
CALLED = {
    "role": "model",
    "parts": [
        {
            "functionCall": {"id": CALL_ID, "args": {"query": "tokens"}, "name": "google_web_search"},
            "thoughtSignature": "skip_thought_signature_validator",
        }
    ],
}
ANSWERED = {
    "role": "user",
    "parts": [
        {
            "functionResponse": {
                "name": "google_web_search",
                "response": {"output": 'Web search results for "tokens": none.'},
                "id": CALL_ID,
            }
        }
    ],
}
MODELS = {NANO: "openai", "anthropic/claude-haiku-4.5": "anthropic", "gemini-2.5-flash": "google"}


@pytest.fixture(scope="module")
def gateway(module_gateway: Gateway) -> Gateway:
    return module_gateway


def post(gateway: Gateway, model: str, method: str, body: dict[str, Any], provider: str) -> httpx.Response:
    query = "?alt=sse" if method == "streamGenerateContent" else ""
    return httpx.post(
        f"{gateway.url}/api/gemini/v1beta/models/{model}:{method}{query}",
        headers={**HEADERS, "x-goog-api-key": gateway.key},
        json={**body, "provider": {"only": [provider]}},
        timeout=10,
    )


def chunks(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [json.loads(line[6:]) for line in response.text.split("\r\n") if line.startswith("data: ")]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_a_turn_and_the_next_with_a_function_response(gateway: Gateway, sim: Any, model: str) -> None:
    prefix = MODELS[model]
    first = {"contents": [ASK], "systemInstruction": SYSTEM, "tools": TOOLS, "generationConfig": CONFIG}
    frames = chunks(post(gateway, model, "streamGenerateContent", first, prefix))
    assert frames[-1]["candidates"][0]["finishReason"] in ("STOP", "MAX_TOKENS")
    assert frames[-1]["usageMetadata"]["totalTokenCount"] > 0
    upstream = sim.requests(prefix)[-1]["body"]
    if prefix == "google":
        assert upstream["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 8192
    if prefix == "anthropic":
        assert upstream["thinking"] == {"type": "enabled", "budget_tokens": 8192}
    second = {**first, "contents": [ASK, CALLED, ANSWERED]}
    frames = chunks(post(gateway, model, "streamGenerateContent", second, prefix))
    assert all("error" not in f for f in frames), frames
    sent = json.dumps(sim.requests(prefix)[-1]["body"])
    assert CALL_ID in sent and "none." in sent
    # The placeholder signature says nothing: not sent on, and Gemini 2.5 checks no signatures.
    assert "skip_thought_signature_validator" not in sent


def test_the_placeholder_signature_goes_back_to_gemini_3(gateway: Gateway, sim: Any) -> None:
    body = {"contents": [ASK, CALLED, ANSWERED], "tools": TOOLS}
    frames = chunks(post(gateway, "gemini-3-flash-preview", "streamGenerateContent", body, "google"))
    assert all("error" not in f for f in frames), frames
    parts = [p for c in sim.requests("google")[-1]["body"]["contents"] for p in c["parts"]]
    call = next(p for p in parts if "functionCall" in p)
    assert call["functionCall"]["id"] == CALL_ID
    assert call["thoughtSignature"] == "skip_thought_signature_validator"


@pytest.mark.parametrize("model", ["gemini-3-flash-preview", NANO])
def test_the_web_search_utility_call(gateway: Gateway, model: str) -> None:
    provider = "openai" if model == NANO else "google"
    body = {
        "contents": [{"role": "user", "parts": [{"text": "tokens"}]}],
        "systemInstruction": SYSTEM,
        "tools": [{"googleSearch": {}}],
        "generationConfig": {"temperature": 0, "topP": 1},
    }
    response = post(gateway, model, "generateContent", body, provider)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["candidates"][0]["content"]["parts"][0]["text"]
    record = generation(gateway, answer["responseId"])
    assert "googleSearch" in record["dropped_params"]
