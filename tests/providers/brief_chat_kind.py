"""A provider kind defined outside the package, the way any new kind is added: an adapter, the settings
its section of ``providers:`` takes, and one ``register`` call.

``brief-chat`` speaks a small part of Chat Completions (text messages in, one text answer out; a streamed
request is answered from one whole upstream answer) and sends its own setting, ``tag``, as a header, so
a test can see that the setting reached the upstream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import msgspec

from tokenmux.errors import ProviderMalformed, ProviderRejected
from tokenmux.providers.base import CallContext, ProviderConfig, ProviderSettings
from tokenmux.providers.common import send_and_read, snippet
from tokenmux.providers.registry import ProviderKind, register
from tokenmux.providers.transport import HttpRequest, Transport
from tokenmux.types import ChatRequest, ChatResponse, StreamEvent, Usage


class BriefChatSettings(ProviderSettings, frozen=True, kw_only=True, forbid_unknown_fields=True):
    tag: str = "untagged"


class BriefChatProvider:
    kind: ClassVar[str] = "brief-chat"

    def __init__(self, config: ProviderConfig, transport: Transport) -> None:
        self.config = config
        self._transport = transport
        settings = config.settings
        tag = settings.tag if isinstance(settings, BriefChatSettings) else BriefChatSettings().tag
        self._headers = [
            ("Authorization", f"Bearer {config.api_key}"),
            ("Content-Type", "application/json"),
            ("X-Brief-Tag", tag),
            *config.headers,
        ]

    async def complete(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        body: dict[str, Any] = {"model": ctx.endpoint.upstream_model, "messages": request.messages}
        if "max_tokens" in ctx.params:
            body["max_tokens"] = ctx.params["max_tokens"]
        url = f"{self.config.base_url}/chat/completions"
        http = HttpRequest("POST", url, list(self._headers), msgspec.json.encode(body), ctx.timeout_s)
        response, raw = await send_and_read(self._transport, http)
        if response.status != 200:
            raise ProviderRejected(
                f"brief-chat answered {response.status}: {snippet(raw)}", upstream_status=response.status
            )
        try:
            answer = msgspec.json.decode(raw)
            choice = answer["choices"][0]
            usage = answer["usage"]
            return ChatResponse(
                id=str(answer["id"]),
                created=int(answer["created"]),
                model=str(answer["model"]),
                choices=[
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": str(choice["message"]["content"])},
                        "finish_reason": choice["finish_reason"],
                        "logprobs": None,
                    }
                ],
                usage=Usage(
                    prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"]
                ),
            )
        except (msgspec.DecodeError, KeyError, IndexError, TypeError, ValueError) as e:
            raise ProviderMalformed(f"brief-chat's answer cannot be read: {e}") from None

    async def stream(self, request: ChatRequest, ctx: CallContext) -> AsyncIterator[StreamEvent]:
        answer = await self.complete(request, ctx)
        choice = answer.choices[0]
        yield StreamEvent(delta={"role": "assistant", "content": choice["message"]["content"]}, id=answer.id)
        yield StreamEvent(delta={}, finish_reason=choice["finish_reason"])
        yield StreamEvent(usage=answer.usage)

    async def aclose(self) -> None:
        return None


register(ProviderKind("brief-chat", BriefChatProvider, BriefChatSettings))
