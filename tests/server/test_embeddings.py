"""``POST /api/v1/embeddings`` through the gateway, with the official openai SDK: float and base64 vectors,
dimensions, list and token-id input, routed across the endpoints of embedding models (OpenAI, Azure,
an OpenAI-compatible server, Gemini's own API), fallback, key limits, usage with cost and the record."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from test_retention import wait_stored

from gateway_support import NANO, Gateway, generation, make_key, sim_config
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer

SMALL = "openai/text-embedding-3-small"
GEMINI = "google/gemini-embedding-001"
MISTRAL = "mistralai/mistral-embed"


@pytest.fixture(scope="module")
def gateway(simulator: BackgroundServer, tmp_path_factory: Any) -> Iterator[Gateway]:
    folder = Path(tmp_path_factory.mktemp("embeddings"))
    url = f"sqlite:///{folder / 'gw.db'}"
    key = make_key(url)
    app = build_gateway(sim_config(simulator.url, spool_dir=str(folder / "spool")), database_url=url, env={})
    with BackgroundServer(app, graceful_timeout_s=2) as server:
        gw = Gateway(server, key, app)
        yield gw
        gw.close_clients()


def post(gateway: Gateway, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key or gateway.key}"}
    return httpx.post(f"{gateway.url}/api/v1/embeddings", json=body, headers=headers, timeout=10)


def test_float_and_base64_vectors_with_usage_cost_and_record(gateway: Gateway, sim: Any) -> None:
    client = gateway.openai()
    raw = client.embeddings.with_raw_response.create(model=SMALL, input="The food was delicious")
    packed = raw.parse()  # the SDK asked for base64 and decoded it
    floats = client.embeddings.create(model=SMALL, input="The food was delicious", encoding_format="float")

    vector = floats.data[0].embedding
    assert len(vector) == 1536 and math.isclose(math.fsum(v * v for v in vector), 1.0, rel_tol=1e-6)
    assert packed.data[0].embedding == pytest.approx(vector, abs=1e-6)
    assert floats.model == SMALL and (floats.model_extra or {})["provider"] == "openai"
    usage = floats.usage
    assert usage.prompt_tokens == usage.total_tokens == 5
    cost = (usage.model_extra or {})["cost"]
    assert cost == pytest.approx(5 * 0.02 / 1e6, rel=1e-9)
    record = generation(gateway, raw.headers["x-generation-id"])
    assert record["model"] == SMALL and record["provider"] == "openai" and record["status"] == "success"
    assert record["tokens_prompt"] == 5 and record["tokens_completion"] == 0
    assert record["usage"] == pytest.approx(cost, rel=1e-9)
    assert record["streamed"] is False
    sent = sim.requests("openai")[-1]
    assert sent["path"] == "/openai/v1/embeddings"
    assert sent["body"]["model"] == "text-embedding-3-small" and sent["body"]["encoding_format"] == "float"


def test_list_input_and_dimensions(gateway: Gateway) -> None:
    client = gateway.openai()
    answer = client.embeddings.create(model=SMALL, input=["first", "second", "first"], dimensions=256)

    assert [d.index for d in answer.data] == [0, 1, 2]
    assert all(len(d.embedding) == 256 for d in answer.data)
    assert answer.data[0].embedding == answer.data[2].embedding != answer.data[1].embedding


def test_token_id_input_reaches_openai_but_not_gemini(gateway: Gateway, sim: Any) -> None:
    client = gateway.openai()
    answer = client.embeddings.create(model=SMALL, input=[[15339, 1917], [9906]])

    assert len(answer.data) == 2 and answer.usage.prompt_tokens == 3
    assert sim.requests("openai")[-1]["body"]["input"] == [[15339, 1917], [9906]]
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model=GEMINI, input=[1, 2, 3])
    assert refused.value.body["code"] == "token_input_unsupported"  # type: ignore[index]
    assert refused.value.body["param"] == "input"  # type: ignore[index]


def test_gemini_model_goes_through_its_own_api(gateway: Gateway, sim: Any) -> None:
    client = gateway.openai()
    answer = client.embeddings.create(model=GEMINI, input=["one", "two"], dimensions=64)
    single = client.embeddings.create(model="gemini-embedding-001", input="one", dimensions=64)

    assert (answer.model_extra or {})["provider"] == "google" and answer.model == GEMINI
    assert [len(d.embedding) for d in answer.data] == [64, 64]
    assert single.data[0].embedding == pytest.approx(answer.data[0].embedding, abs=1e-6)
    assert answer.usage.prompt_tokens == 2
    assert (answer.usage.model_extra or {})["cost"] == pytest.approx(2 * 0.15 / 1e6, rel=1e-9)
    paths = [r["path"] for r in sim.requests("google")]
    assert paths == [
        "/google/v1beta/models/gemini-embedding-001:batchEmbedContents",
        "/google/v1beta/models/gemini-embedding-001:embedContent",
    ]


def test_openai_compatible_server(gateway: Gateway, sim: Any) -> None:
    answer = gateway.openai().embeddings.create(model=MISTRAL, input="bonjour")

    assert (answer.model_extra or {})["provider"] == "mistral" and len(answer.data[0].embedding) == 1536
    assert sim.requests("mistral")[-1]["body"]["model"] == "mistral-embed"


# One model each: the module's gateway keeps the cooldown a failure gives an endpoint.
@pytest.mark.parametrize(
    ("profile", "model", "azure_price"),
    [
        ({"error_rate": 1.0, "error_status": 503}, "openai/text-embedding-ada-002", 0.11),
        ({"rate_limit_rate": 1.0}, "openai/text-embedding-3-large", 0.143),
        ({"malformed_rate": 1.0}, SMALL, 0.022),
    ],
)
def test_a_failing_endpoint_falls_back(
    gateway: Gateway, sim: Any, profile: dict[str, Any], model: str, azure_price: float
) -> None:
    sim.profile("openai", **profile)
    raw = gateway.openai().embeddings.with_raw_response.create(model=model, input="hello", dimensions=8)
    answer = raw.parse()

    assert (answer.model_extra or {})["provider"] == "azure" and len(answer.data[0].embedding) == 8
    deployment = model.removeprefix("openai/")
    assert sim.requests("azure")[-1]["path"] == f"/azure/openai/deployments/{deployment}/embeddings"
    record = generation(gateway, raw.headers["x-generation-id"])
    assert [(a["provider"], a["outcome"]) for a in record["attempts"]] == [
        ("openai", "error"),
        ("azure", "success"),
    ]
    assert record["usage"] == pytest.approx(answer.usage.prompt_tokens * azure_price / 1e6, rel=1e-9)


def test_every_endpoint_failing_is_a_502_in_openai_shape(gateway: Gateway, sim: Any) -> None:
    sim.profile("google", error_rate=1.0, error_status=500)
    with pytest.raises(openai.APIStatusError) as failed:
        gateway.openai().embeddings.create(model=GEMINI, input="hello")

    assert failed.value.status_code == 502
    assert "every provider attempt failed" in failed.value.body["message"]  # type: ignore[index]


def test_key_limits_apply(gateway: Gateway) -> None:
    broke = gateway.new_key("broke", credit=0.0)
    openai_only = gateway.new_key("openai-only", models="openai/*")
    credit = gateway.new_key("credit", credit=1.0)

    with pytest.raises(openai.APIStatusError) as spent:
        gateway.openai(broke).embeddings.create(model=SMALL, input="hello")
    with pytest.raises(openai.APIStatusError) as other_model:
        gateway.openai(openai_only).embeddings.create(model=GEMINI, input="hello")
    answer = gateway.openai(credit).embeddings.create(model=SMALL, input="hello", encoding_format="float")
    key = httpx.get(f"{gateway.url}/api/v1/key", headers={"Authorization": f"Bearer {credit}"}, timeout=10)

    assert spent.value.status_code == 402
    assert other_model.value.status_code == 403
    assert gateway.openai(openai_only).embeddings.create(model=SMALL, input="hi").data
    cost = (answer.usage.model_extra or {})["cost"]
    assert cost > 0 and key.json()["data"]["usage"] == pytest.approx(cost, abs=1e-9)


def test_a_chat_model_is_refused_naming_the_chat_route(gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.openai().embeddings.create(model=NANO, input="hello")
    assert refused.value.body["param"] == "model"  # type: ignore[index]
    assert "/api/v1/chat/completions" in refused.value.body["message"]  # type: ignore[index]

    with pytest.raises(openai.BadRequestError) as chat:
        gateway.openai().chat.completions.create(model=SMALL, messages=[{"role": "user", "content": "hi"}])
    assert "/api/v1/embeddings" in chat.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": SMALL}, "input"),
        ({"model": SMALL, "input": []}, "input"),
        ({"model": SMALL, "input": ["a", 1]}, "input"),
        ({"model": SMALL, "input": [""]}, "input"),
        ({"model": SMALL, "input": "a", "dimensions": 0}, "dimensions"),
        ({"model": SMALL, "input": "a", "dimensions": "8"}, "dimensions"),
        ({"model": SMALL, "input": "a", "dimensions": 1537}, "dimensions"),
        ({"model": SMALL, "input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"model": SMALL, "input": "a", "temperature": 1}, "temperature"),
        ({"input": "a"}, "model"),
        ({"model": "openai/no-such-embedding", "input": "a"}, "model"),
    ],
)
def test_bad_requests_are_400_naming_the_parameter(
    gateway: Gateway, body: dict[str, Any], param: str
) -> None:
    response = post(gateway, body)

    assert response.status_code in (400, 404), response.text
    assert response.json()["error"]["param"] == param


def test_an_input_over_every_limit_is_refused(gateway: Gateway) -> None:
    response = post(gateway, {"model": GEMINI, "input": ["short", "word " * 3000]})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "context_length_exceeded"
    assert response.json()["error"]["param"] == "input"


def test_models_list_shows_embedding_models(gateway: Gateway) -> None:
    listed = {m.id: m for m in gateway.openai().models.list()}

    for model, dimensions in ((SMALL, 1536), ("openai/text-embedding-3-large", 3072), (GEMINI, 3072)):
        extra = listed[model].model_extra or {}
        assert extra["architecture"]["output_modalities"] == ["embeddings"]
        assert extra["dimensions"] == dimensions
    assert "dimensions" not in (listed[NANO].model_extra or {})


def test_a_key_that_keeps_prompts_keeps_the_inputs_not_the_vectors(gateway: Gateway) -> None:
    key = gateway.new_key("keeper", prompt_retention_days=7)
    raw = gateway.openai(key).embeddings.with_raw_response.create(model=SMALL, input=["a", "b"], dimensions=4)
    kept = wait_stored(gateway, raw.headers["x-generation-id"])

    assert json.loads(kept.request) == {"model": SMALL, "input": ["a", "b"], "dimensions": 4}
    assert json.loads(kept.response) == {"embeddings": 2, "dimensions": 4}


def test_a_large_body_is_planned_and_answered(gateway: Gateway) -> None:
    # Over 256 KB of inputs, each over the byte bound of Gemini's 2,048-token limit: planned off the loop,
    # each counted, each found within the limit.
    inputs = [f"{i} " + "word " * 1600 for i in range(40)]
    answer = gateway.openai().embeddings.create(model=GEMINI, input=inputs, dimensions=4)

    assert len(answer.data) == 40 and answer.usage.prompt_tokens == sum(len(t) // 4 for t in inputs)
