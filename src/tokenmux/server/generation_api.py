"""``GET /api/v1/generation?id=...``: one generation's record, for the key that made it (or an admin key)."""

from __future__ import annotations

from tokenmux.asgi import Receive, Scope, Send, header, query_value, send_bytes
from tokenmux.errors import InvalidRequest, NotFound
from tokenmux.json_codec import encode_json
from tokenmux.server.auth import KeyRing
from tokenmux.store.recorder import Recorder
from tokenmux.store.records import GenerationRecord, KeyRecord


class GenerationRoute:
    def __init__(self, *, keys: KeyRing, recorder: Recorder) -> None:
        self.keys = keys
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = await self.keys.authenticate(header(scope, b"authorization"))
        wanted = query_value(scope, "id")
        if not wanted:
            raise InvalidRequest("pass the generation id: GET /api/v1/generation?id=gen-...", param="id")
        record = await self.recorder.get_generation(wanted)
        if record is None or not _may_see(key, record):
            raise NotFound(
                f"no generation {wanted!r} for this key; the id is in the X-Generation-Id header of a response",
                code="generation_not_found",
            )
        await send_bytes(send, 200, encode_json({"data": record.to_api()}))


def _may_see(key: KeyRecord, record: GenerationRecord) -> bool:
    return key.is_admin or record.key_id == key.id
