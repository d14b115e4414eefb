"""The simulated Anthropic API takes system messages inside ``messages`` as Anthropic does: on Opus 4.8 and
later only, never first, right after a user turn, last or before an assistant turn, text only."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

PATH = "/anthropic/v1/messages"
HEADERS = {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}
USER = {"role": "user", "content": "List the files."}
SYSTEM = {"role": "system", "content": [{"type": "text", "text": "Answer briefly."}]}
ASSISTANT = {"role": "assistant", "content": "Sure."}


def post(http: httpx.Client, model: str, messages: list[Any]) -> httpx.Response:
    return http.post(PATH, json={"model": model, "max_tokens": 32, "messages": messages}, headers=HEADERS)


@pytest.mark.parametrize(
    "messages",
    [[USER, SYSTEM], [USER, SYSTEM, ASSISTANT, USER]],
)
@pytest.mark.parametrize("model", ["claude-opus-4-8", "claude-opus-5-5"])
def test_opus_4_8_and_later_take_a_system_message_where_anthropic_allows_one(
    http: httpx.Client, model: str, messages: list[Any]
) -> None:
    response = post(http, model, messages)
    assert response.status_code == 200, response.text
    assert response.json()["content"][0]["text"]


@pytest.mark.parametrize(
    ("model", "messages", "named"),
    [
        ("claude-sonnet-4-5", [USER, SYSTEM], "not supported"),
        ("claude-opus-4-7", [USER, SYSTEM], "not supported"),
        ("claude-opus-4-8", [SYSTEM, USER], "top-level 'system'"),
        ("claude-opus-4-8", [USER, ASSISTANT, SYSTEM], "follow a user message"),
        ("claude-opus-4-8", [USER, SYSTEM, USER], "followed by an assistant"),
        ("claude-opus-4-8", [USER, SYSTEM, SYSTEM], "followed by an assistant"),
        (
            "claude-opus-4-8",
            [USER, {"role": "system", "content": [{"type": "image", "source": {}}]}],
            "text blocks only",
        ),
    ],
)
def test_a_system_message_elsewhere_is_refused(
    http: httpx.Client, model: str, messages: list[Any], named: str
) -> None:
    response = post(http, model, messages)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and named in error["message"]
