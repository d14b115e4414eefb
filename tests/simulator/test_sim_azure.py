"""The Azure OpenAI variant, driven by the SDK's AzureOpenAI client."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletion

from tokenmux.simulator.control_client import PrefixControl

HELLO: list[Any] = [{"role": "user", "content": "Hello there"}]
DEPLOYMENT = "nano-prod"
PATH = f"/azure/openai/deployments/{DEPLOYMENT}/chat/completions"


def test_completion_reports_the_deployment_and_content_filter_results(azure: openai.AzureOpenAI) -> None:
    completion = azure.chat.completions.create(model=DEPLOYMENT, messages=HELLO)

    assert isinstance(completion, ChatCompletion)
    assert completion.model == DEPLOYMENT
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop"
    extra = completion.model_dump()
    assert extra["prompt_filter_results"][0]["content_filter_results"]["hate"]["filtered"] is False
    assert extra["choices"][0]["content_filter_results"]["violence"]["severity"] == "safe"
    assert completion.usage is not None and completion.usage.completion_tokens == 24


def test_stream_opens_with_azure_empty_choices_chunk(azure: openai.AzureOpenAI) -> None:
    chunks = list(
        azure.chat.completions.create(
            model=DEPLOYMENT, messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )

    filter_chunk, role, *content, finish, usage = chunks
    assert filter_chunk.choices == [] and filter_chunk.model == ""
    assert role.choices[0].delta.role == "assistant" and role.model == DEPLOYMENT
    assert len(content) == 24
    assert finish.choices[0].finish_reason == "stop"
    assert usage.usage is not None and usage.usage.total_tokens == usage.usage.prompt_tokens + 24


def test_request_log_keeps_the_query_and_redacts_the_key(
    azure: openai.AzureOpenAI, azure_control: PrefixControl
) -> None:
    azure.chat.completions.create(model=DEPLOYMENT, messages=HELLO, temperature=0.5)

    [logged] = azure_control.requests()
    assert logged["path"] == PATH
    assert logged["query"] == "api-version=2024-10-21"
    assert logged["headers"]["api-key"] == "<redacted>"
    assert logged["body"] == {"model": DEPLOYMENT, "messages": HELLO, "temperature": 0.5}


def test_per_deployment_overrides_apply_to_that_deployment_only(
    azure: openai.AzureOpenAI, azure_control: PrefixControl
) -> None:
    azure_control.set(models={DEPLOYMENT: {"error_rate": 1, "error_status": 503}})

    with pytest.raises(openai.InternalServerError) as caught:
        azure.chat.completions.create(model=DEPLOYMENT, messages=HELLO)
    other = azure.chat.completions.create(model="another-deployment", messages=HELLO)

    assert caught.value.status_code == 503
    assert isinstance(caught.value.body, dict) and set(caught.value.body) == {"code", "message"}
    assert other.model == "another-deployment"


def test_missing_api_version_is_400_in_azure_error_shape(
    http: httpx.Client, azure_control: PrefixControl
) -> None:
    response = http.post(PATH, json={"messages": HELLO}, headers={"api-key": "k"})

    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "code": "MissingApiVersionParameter",
            "message": "The api-version query parameter (?api-version=) is required for all requests.",
        }
    }


@pytest.mark.parametrize("headers", [{}, {"api-key": ""}, {"Authorization": "Bearer k"}])
def test_without_an_api_key_header_it_is_401(
    http: httpx.Client, azure_control: PrefixControl, headers: dict[str, str]
) -> None:
    response = http.post(f"{PATH}?api-version=2024-10-21", json={"messages": HELLO}, headers=headers)

    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message"}


def test_other_azure_paths_are_404(http: httpx.Client, azure_control: PrefixControl) -> None:
    response = http.post(
        "/azure/openai/deployments/x/images/generations?api-version=1", json={}, headers={"api-key": "k"}
    )

    assert response.status_code == 404
