"""The ``azure`` adapter: Azure OpenAI, which is Chat Completions with the deployment in the URL.

``POST {base_url}/openai/deployments/{deployment}/chat/completions?api-version=V`` (``/embeddings`` for
embeddings) with an ``api-key`` header; a request that came as Responses goes to
``{base_url}/openai/v1/responses`` with the deployment as its model. The deployment is the one configured
for the endpoint's upstream model, else the model name itself (operators usually name deployments after
models). Everything else is the OpenAI adapter's.

Its section of ``providers:`` takes two settings of its own: ``api_version`` (else the environment's
``AZURE_OPENAI_API_VERSION``, else ``DEFAULT_API_VERSION``) and ``deployments``.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

import msgspec

from tokenmux.catalog.model import Endpoint
from tokenmux.providers.base import ProviderConfig, ProviderSettings
from tokenmux.providers.openai import OpenAIProvider
from tokenmux.providers.registry import ProviderKind, register
from tokenmux.providers.transport import Transport

# The newest generally available data-plane version when none is configured.
DEFAULT_API_VERSION = "2024-10-21"


class AzureSettings(ProviderSettings, frozen=True, forbid_unknown_fields=True, kw_only=True):
    api_version: str | None = None
    deployments: dict[str, str] = msgspec.field(default_factory=dict)  # upstream model -> deployment


class AzureProvider(OpenAIProvider):
    kind: ClassVar[str] = "azure"

    def __init__(self, config: ProviderConfig, transport: Transport) -> None:
        super().__init__(config, transport)
        settings = config.settings if isinstance(config.settings, AzureSettings) else AzureSettings()
        self._deployments = settings.deployments
        base = self._base_url
        # Accept the resource URL with or without the "/openai" path segment that the Azure portal shows.
        self._deployments_url = f"{base.removesuffix('/openai')}/openai/deployments"
        self._version_query = f"api-version={quote(settings.api_version or DEFAULT_API_VERSION, safe='')}"
        self._urls: dict[str, str] = {}
        self._embedding_urls: dict[str, str] = {}
        # The v1 API (GA since August 2025) takes the deployment in the body and no api-version.
        self._v1_responses_url = f"{base.removesuffix('/openai')}/openai/v1/responses"

    def _auth_headers(self) -> list[tuple[str, str]]:
        key = self.config.api_key
        return [("api-key", key)] if key else []

    def _url(self, endpoint: Endpoint) -> str:
        return self._deployment_url(endpoint.upstream_model, "chat/completions", self._urls)

    def _embeddings_url(self, endpoint: Endpoint) -> str:
        return self._deployment_url(endpoint.upstream_model, "embeddings", self._embedding_urls)

    def _deployment_url(self, model: str, operation: str, cache: dict[str, str]) -> str:
        url = cache.get(model)
        if url is None:
            deployment = self._deployments.get(model, model)
            url = f"{self._deployments_url}/{quote(deployment, safe='')}/{operation}?{self._version_query}"
            cache[model] = url
        return url

    def _native_responses(self, endpoint: Endpoint) -> tuple[str, str]:
        model = endpoint.upstream_model
        return self._v1_responses_url, self._deployments.get(model, model)

    def _body_head(self, endpoint: Endpoint) -> dict[str, Any]:
        return {}  # the deployment in the URL names the model


register(
    ProviderKind(
        AzureProvider.kind,
        AzureProvider,
        AzureSettings,
        env_fallbacks={"api_version": "AZURE_OPENAI_API_VERSION"},
    )
)
