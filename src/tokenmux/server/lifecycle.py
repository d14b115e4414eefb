"""Starting and stopping the gateway's services, in order, and whether it is ready to serve."""

from __future__ import annotations

import asyncio
import logging

from tokenmux.errors import StoreUnavailable
from tokenmux.routing.tokens import encodings_of, warm_up
from tokenmux.server.parts import Parts

log = logging.getLogger("tokenmux.server")


class Lifecycle:
    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.ready = False
        self._opening: asyncio.Task[None] | None = None
        self._drain_end: asyncio.TimerHandle | None = None

    async def startup(self) -> None:
        parts = self.parts
        try:
            await parts.store.open()
        except StoreUnavailable as exc:
            # Serve anyway: keys seen before are unknown yet (503 until the database answers), records
            # wait in memory, and the database is opened as soon as it answers.
            log.warning("the database is unavailable (%s); serving while retrying", exc)
            self._opening = asyncio.create_task(self._open_when_back(), name="tokenmux-open-store")
        else:
            await self._start_with_store()
        await parts.ledger.start()
        await parts.contents.start()
        if parts.shared_health is not None:
            await parts.shared_health.start()
        if parts.settings.gateway.preload_tokenizers:
            await self._load_tokenizers()
        self.ready = True

    async def _load_tokenizers(self) -> None:
        """The vocabularies that counting a prompt for a configured provider's model can need, before the
        server takes a connection (uvicorn listens once startup is done)."""
        parts = self.parts
        families = {
            model.tokenizer
            for model in parts.catalog.models.values()
            if any(endpoint.provider in parts.providers for endpoint in model.endpoints)
        }
        encodings = encodings_of(families)
        try:
            await asyncio.to_thread(warm_up, encodings)
        except Exception as exc:  # serve anyway: a prompt that needs a count tries to load it again then
            log.warning(
                "could not load the tokenizer vocabularies %s before start: %r", ", ".join(encodings), exc
            )
            return
        log.info("tokenizer vocabularies loaded: %s", ", ".join(encodings) or "none")

    async def _start_with_store(self) -> None:
        self.parts.recorder.start()
        await self.parts.stats.start()

    async def _open_when_back(self) -> None:
        while True:
            await asyncio.sleep(2.0)
            try:
                await self.parts.store.open()
            except StoreUnavailable:
                continue
            log.info("the database answers again; writing the request records kept meanwhile")
            await self._start_with_store()
            return

    def begin_drain(self) -> None:
        """The server stopped taking connections (SIGTERM): /ready says so, and what still runs when the
        drain period ends is ended by ``Attempts.end_all``."""
        self.ready = False
        drain_s = self.parts.settings.gateway.drain_s
        self._drain_end = asyncio.get_running_loop().call_later(drain_s, self._end_drain, drain_s)

    def _end_drain(self, drain_s: float) -> None:
        ended = self.parts.attempts.end_all()
        if ended:
            log.warning("drain period of %g s over: ended %d requests still running", drain_s, ended)

    async def shutdown(self) -> None:
        parts = self.parts
        self.ready = False
        if self._drain_end is not None:
            self._drain_end.cancel()
        if self._opening is not None and not self._opening.done():
            self._opening.cancel()
        await parts.stats.aclose()
        if parts.shared_health is not None:
            await parts.shared_health.close()
        await parts.ledger.close()
        await parts.contents.close()
        if parts.redis_link is not None:
            await parts.redis_link.aclose()
        await parts.recorder.close()
        for provider in parts.providers.values():
            await provider.aclose()
        await parts.transport.aclose()
        await parts.store.close()
