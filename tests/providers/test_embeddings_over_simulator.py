"""``embed`` of each adapter that has it, on the real transport against the simulator's formats: OpenAI,
Azure (deployments path), an OpenAI-compatible server and Gemini (``:embedContent``,
``:batchEmbedContents``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from adapter_helpers import config, context

from tokenmux.errors import ProviderRejected
from tokenmux.providers.aiohttp_transport import AiohttpTransport
from tokenmux.providers.azure import AzureProvider, AzureSettings
from tokenmux.providers.google import GoogleProvider
from tokenmux.providers.openai import OpenAIProvider
from tokenmux.providers.openai_compatible import OpenAICompatibleProvider
from tokenmux.server.runner import BackgroundServer
from tokenmux.simulator.app import create_app
from tokenmux.simulator.control_client import SimulatorControl
from tokenmux.types import EmbeddingRequest

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def sim() -> Iterator[BackgroundServer]:
    with BackgroundServer(create_app(seed=5), graceful_timeout_s=1) as server:
        yield server


@pytest.fixture
def control(sim: BackgroundServer) -> Iterator[SimulatorControl]:
    with SimulatorControl(sim.url) as control:
        control.reset("openai", "azure", "google", "vllm")
        yield control


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    transport = AiohttpTransport()
    yield transport
    await transport.aclose()


async def test_openai_embeds_in_input_order_with_dimensions(
    sim: BackgroundServer, control: SimulatorControl, transport: AiohttpTransport
) -> None:
    provider = OpenAIProvider(config("openai", base_url=f"{sim.url}/openai/v1"), transport)
    request = EmbeddingRequest(model="openai/text-embedding-3-small", inputs=["a b c d", "e"], dimensions=32)

    result = await provider.embed(request, context(upstream_model="text-embedding-3-small"))
    single = await provider.embed(
        EmbeddingRequest(model="m", inputs=["e"], dimensions=32),
        context(upstream_model="text-embedding-3-small"),
    )

    assert [len(v) for v in result.vectors] == [32, 32]
    assert result.vectors[1] == pytest.approx(single.vectors[0])
    assert result.usage.prompt_tokens == 2 and result.model == "text-embedding-3-small"
    sent = control.requests("openai")[0]
    assert sent["path"] == "/openai/v1/embeddings"
    assert sent["body"] == {
        "model": "text-embedding-3-small",
        "input": ["a b c d", "e"],
        "encoding_format": "float",
        "dimensions": 32,
    }


async def test_azure_embeds_at_the_deployment(
    sim: BackgroundServer, control: SimulatorControl, transport: AiohttpTransport
) -> None:
    settings = AzureSettings(deployments={"text-embedding-3-large": "embed-large"})
    provider = AzureProvider(config("azure", base_url=f"{sim.url}/azure", settings=settings), transport)

    result = await provider.embed(
        EmbeddingRequest(model="m", inputs=[[1, 2, 3]]),
        context(upstream_model="text-embedding-3-large", provider="azure"),
    )

    assert len(result.vectors[0]) == 3072 and result.usage.prompt_tokens == 3
    sent = control.requests("azure")[0]
    assert sent["path"] == "/azure/openai/deployments/embed-large/embeddings"
    assert "model" not in sent["body"]


async def test_openai_compatible_refusal_keeps_its_status(
    sim: BackgroundServer, control: SimulatorControl, transport: AiohttpTransport
) -> None:
    provider = OpenAICompatibleProvider(config("vllm", base_url=f"{sim.url}/vllm/v1"), transport)
    control.at("vllm").set(error_rate=1.0, error_status=429)

    with pytest.raises(ProviderRejected) as caught:
        await provider.embed(EmbeddingRequest(model="m", inputs=["x"]), context(upstream_model="bge-m3"))

    assert caught.value.upstream_status == 429 and caught.value.retryable


@pytest.mark.parametrize("inputs", [["only one"], ["one", "two", "three"]])
async def test_google_embeds_through_its_own_api(
    sim: BackgroundServer, control: SimulatorControl, transport: AiohttpTransport, inputs: list[str]
) -> None:
    provider = GoogleProvider(config("google", base_url=f"{sim.url}/google", api_key="gm-key"), transport)
    request = EmbeddingRequest(model="google/gemini-embedding-001", inputs=inputs, dimensions=16)

    result = await provider.embed(request, context(upstream_model="gemini-embedding-001", provider="google"))

    assert [len(v) for v in result.vectors] == [16] * len(inputs)
    assert result.usage.prompt_tokens == sum(max(1, len(t) // 4) for t in inputs)
    sent = control.requests("google")[0]
    method = "embedContent" if len(inputs) == 1 else "batchEmbedContents"
    assert sent["path"] == f"/google/v1beta/models/gemini-embedding-001:{method}"
    assert sent["headers"]["x-goog-api-key"] != "gm-key"  # redacted in the log, but sent
    if len(inputs) > 1:
        assert sent["body"]["requests"][0]["model"] == "models/gemini-embedding-001"
        assert sent["body"]["requests"][2]["outputDimensionality"] == 16
