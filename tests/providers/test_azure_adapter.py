"""The ``azure`` adapter: deployment URL, api-key header, no model in the body; the rest is OpenAI's."""

from __future__ import annotations

from typing import Any

import pytest
from adapter_helpers import MESSAGES, Recorder, chat, chunk, collect, completion, config, context, delta

from tokenmux.errors import ProviderRejected
from tokenmux.providers.azure import DEFAULT_API_VERSION, AzureProvider, AzureSettings
from tokenmux.providers.transport import MockResponse, MockTransport
from tokenmux.types import Usage


def azure(recorder: Recorder, **overrides: Any) -> AzureProvider:
    """The adapter; ``overrides`` are ProviderConfig fields or the settings of Azure's own."""
    own = {"api_version": "2024-10-21", "deployments": {}}
    own.update({name: overrides.pop(name) for name in own if name in overrides})
    values: dict[str, Any] = {"base_url": "https://my-resource.openai.azure.com", "api_key": "azure-key-1"}
    values.update(overrides)
    settings = AzureSettings(api_version=own["api_version"], deployments=own["deployments"])
    return AzureProvider(config("azure", settings=settings, **values), MockTransport(recorder))


async def test_request_names_the_deployment_in_the_url_and_authenticates_with_api_key() -> None:
    recorder = Recorder(MockResponse.json(completion()))
    params = {"temperature": 0.3, "max_completion_tokens": 64, "tools": [{"type": "function"}]}
    await azure(recorder).complete(chat(), context(params, provider="azure"))

    [sent] = recorder.requests
    assert sent.method == "POST"
    assert sent.url == (
        "https://my-resource.openai.azure.com/openai/deployments/gpt-4.1-nano/chat/completions"
        "?api-version=2024-10-21"
    )
    assert sent.headers == [("api-key", "azure-key-1"), ("Content-Type", "application/json")]
    assert all(name.lower() != "authorization" for name, _ in sent.headers)
    assert recorder.body == {"messages": MESSAGES, **params, "stream": False}


async def test_configured_deployment_names_replace_the_model_name() -> None:
    recorder = Recorder(MockResponse.json(completion()), MockResponse.json(completion()))
    adapter = azure(recorder, deployments={"gpt-4.1-nano": "nano prod/eu"})
    await adapter.complete(chat(), context())
    await adapter.complete(chat(), context(upstream_model="gpt-4.1"))
    assert [r.url.split("/deployments/")[1] for r in recorder.requests] == [
        "nano%20prod%2Feu/chat/completions?api-version=2024-10-21",
        "gpt-4.1/chat/completions?api-version=2024-10-21",
    ]


@pytest.mark.parametrize(
    "base_url",
    ["http://127.0.0.1:9100/azure", "http://127.0.0.1:9100/azure/", "http://127.0.0.1:9100/azure/openai"],
)
async def test_base_url_with_or_without_the_openai_segment(base_url: str) -> None:
    recorder = Recorder(MockResponse.json(completion()))
    await azure(recorder, base_url=base_url, api_version=None).complete(chat(), context())
    assert recorder.requests[0].url == (
        "http://127.0.0.1:9100/azure/openai/deployments/gpt-4.1-nano/chat/completions"
        f"?api-version={DEFAULT_API_VERSION}"
    )


async def test_stream_skips_the_prompt_filter_chunk_and_reads_usage() -> None:
    prompt_filter = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
    }
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 0}}
    payloads = [
        prompt_filter,
        chunk([delta(role="assistant", content="")]),
        chunk([delta(content="Hi")]),
        chunk([delta(finish_reason="stop")]),
        chunk([], usage=usage),
    ]
    recorder = Recorder(MockResponse.sse(payloads))
    events = await collect(azure(recorder).stream(chat(stream=True), context()))
    assert recorder.body == {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    assert [e.delta for e in events[:3]] == [{"role": "assistant", "content": ""}, {"content": "Hi"}, {}]
    assert events[2].finish_reason == "stop"
    assert events[3].usage == Usage(prompt_tokens=10, completion_tokens=2)


async def test_content_filter_rejection_is_not_retryable() -> None:
    error = {
        "message": "The response was filtered due to the prompt triggering Azure OpenAI's content policy.",
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
    }
    recorder = Recorder(MockResponse.json({"error": error}, status=400))
    with pytest.raises(ProviderRejected) as caught:
        await azure(recorder).complete(chat(), context())
    assert not caught.value.retryable
    assert caught.value.message == error["message"]
    assert "azure-key-1" not in str(caught.value)
