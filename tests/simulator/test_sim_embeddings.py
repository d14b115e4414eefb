"""Embeddings in the simulator: OpenAI's and Azure's format through the openai SDK, Gemini's through the
google-genai SDK; vectors seeded by their input, of the requested size, of unit length."""

from __future__ import annotations

import math
from collections.abc import Iterator

import httpx
import openai
import pytest
from google import genai
from google.genai import types

from tokenmux.server.runner import BackgroundServer
from tokenmux.simulator.control_client import PrefixControl, SimulatorControl


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(v * v for v in vector))


def test_openai_format_float_and_base64_agree(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="text-embedding-3-small", input="hello", encoding_format="float")
    # The SDK asks for base64 when not told otherwise, and decodes it into floats.
    packed = client.embeddings.create(model="text-embedding-3-small", input="hello")

    assert len(floats.data) == 1 and len(floats.data[0].embedding) == 1536
    assert _norm(floats.data[0].embedding) == pytest.approx(1.0)
    assert packed.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert floats.usage.prompt_tokens == floats.usage.total_tokens == 1
    assert floats.model == "text-embedding-3-small"


def test_openai_format_list_input_dimensions_and_determinism(client: openai.OpenAI) -> None:
    both = client.embeddings.create(
        model="text-embedding-3-large", input=["first text", "second text"], dimensions=256
    )
    again = client.embeddings.create(model="text-embedding-3-large", input="second text", dimensions=256)
    tokens = client.embeddings.create(model="text-embedding-3-large", input=[[1, 2, 3], [4, 5]])

    assert [d.index for d in both.data] == [0, 1]
    assert all(len(d.embedding) == 256 for d in both.data)
    assert both.data[0].embedding != both.data[1].embedding
    assert again.data[0].embedding == pytest.approx(both.data[1].embedding)
    assert both.usage.prompt_tokens == 4  # a token per four bytes of each text
    assert len(tokens.data[0].embedding) == 3072 and tokens.usage.prompt_tokens == 5


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "text-embedding-3-small"}, "input"),
        ({"model": "text-embedding-3-small", "input": []}, "input"),
        ({"model": "text-embedding-3-small", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "text-embedding-3-small", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "x"}, "model"),
    ],
)
def test_openai_format_refuses_bad_requests(
    http: httpx.Client, prefix: str, body: dict[str, object], param: str
) -> None:
    response = http.post(f"/{prefix}/v1/embeddings", json=body, headers={"Authorization": "Bearer k"})

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param


def test_openai_format_follows_the_profile(client: openai.OpenAI, control: PrefixControl) -> None:
    control.set(error_rate=1.0, error_status=503)

    with pytest.raises(openai.InternalServerError):
        client.embeddings.create(model="text-embedding-3-small", input="hello")
    assert control.requests()[-1]["path"].endswith("/v1/embeddings")


def test_azure_deployments_path(
    azure: openai.AzureOpenAI, azure_control: PrefixControl, http: httpx.Client
) -> None:
    answer = azure.embeddings.create(model="embed-prod", input=["a", "b"], dimensions=64)
    unversioned = http.post(
        "/azure/openai/deployments/embed-prod/embeddings", json={"input": "a"}, headers={"api-key": "k"}
    )

    assert answer.model == "embed-prod" and [len(d.embedding) for d in answer.data] == [64, 64]
    assert azure_control.requests()[0]["path"] == "/azure/openai/deployments/embed-prod/embeddings"
    assert unversioned.status_code == 400


@pytest.fixture
def google_control(sim_control: SimulatorControl) -> Iterator[PrefixControl]:
    control = sim_control.at("google")
    control.set()
    control.clear()
    yield control
    control.set()


def test_gemini_format_through_the_sdk(sim_server: BackgroundServer, google_control: PrefixControl) -> None:
    client = genai.Client(
        api_key="gemini-test-key",
        http_options=types.HttpOptions(base_url=f"{sim_server.url}/google", timeout=10_000),
    )
    config = types.EmbedContentConfig(output_dimensionality=128)
    answer = client.models.embed_content(model="gemini-embedding-001", contents=["one", "two"], config=config)
    full = client.models.embed_content(model="gemini-embedding-001", contents="one")

    assert answer.embeddings is not None and len(answer.embeddings) == 2
    values = [e.values or [] for e in answer.embeddings]
    assert [len(v) for v in values] == [128, 128] and _norm(values[0]) == pytest.approx(1.0)
    assert full.embeddings is not None and len(full.embeddings[0].values or []) == 3072
    paths = [r["path"] for r in google_control.requests()]
    assert paths[0].endswith("/models/gemini-embedding-001:batchEmbedContents")


def test_gemini_single_embed_content(http: httpx.Client, google_control: PrefixControl) -> None:
    body = {"content": {"parts": [{"text": "one"}]}, "outputDimensionality": 8}
    one = http.post(
        "/google/v1beta/models/gemini-embedding-001:embedContent", json=body, headers={"x-goog-api-key": "k"}
    )
    keyless = http.post("/google/v1beta/models/gemini-embedding-001:embedContent", json=body)

    assert one.status_code == 200
    assert len(one.json()["embedding"]["values"]) == 8
    assert one.json()["usageMetadata"]["promptTokenCount"] == 1
    assert keyless.status_code == 403
