"""The sample code on a model page: the official SDKs and cURL pointed at this server for one model.

Only the base URL and the model id change between pages; everything else is what a user would paste.
The text is escaped by the template like any other text, so a hostile model id cannot become markup.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

KEY_PLACEHOLDER = "<TOKENMUX_API_KEY>"
QUESTION = "What is the meaning of life?"


@dataclass(frozen=True, slots=True)
class CodeSample:
    slug: str  # element id suffix: "openai-python"
    label: str  # tab label
    language: str
    code: str


def _quoted(text: str) -> str:
    """A string literal valid in Python, TypeScript and JSON alike."""
    return json.dumps(text)


def code_samples(base_url: str, model_id: str) -> tuple[CodeSample, ...]:
    openai_url = _quoted(f"{base_url}/api/v1")
    anthropic_url = _quoted(f"{base_url}/api/anthropic")
    model = _quoted(model_id)
    key = _quoted(KEY_PLACEHOLDER)
    question = _quoted(QUESTION)
    curl_body = json.dumps({"model": model_id, "messages": [{"role": "user", "content": QUESTION}]}, indent=2)
    curl_url = shlex.quote(f"{base_url}/api/v1/chat/completions")
    return (
        CodeSample(
            "openai-python",
            "OpenAI Python",
            "python",
            f"""from openai import OpenAI

client = OpenAI(
    base_url={openai_url},
    api_key={key},
)

completion = client.chat.completions.create(
    model={model},
    messages=[{{"role": "user", "content": {question}}}],
)
print(completion.choices[0].message.content)
""",
        ),
        CodeSample(
            "anthropic-python",
            "Anthropic Python",
            "python",
            f"""from anthropic import Anthropic

client = Anthropic(
    base_url={anthropic_url},
    api_key={key},
)

message = client.messages.create(
    model={model},
    max_tokens=1024,
    messages=[{{"role": "user", "content": {question}}}],
)
print(message.content[0].text)
""",
        ),
        CodeSample(
            "typescript",
            "TypeScript",
            "typescript",
            f"""import OpenAI from "openai";

const client = new OpenAI({{
  baseURL: {openai_url},
  apiKey: {key},
}});

const completion = await client.chat.completions.create({{
  model: {model},
  messages: [{{ role: "user", content: {question} }}],
}});
console.log(completion.choices[0].message.content);
""",
        ),
        CodeSample(
            "curl",
            "cURL",
            "shell",
            f"""curl {curl_url} \\
  -H "Content-Type: application/json" \\
  -H "Authorization: Bearer $TOKENMUX_API_KEY" \\
  -d {shlex.quote(curl_body)}
""",
        ),
    )
