"""Zero retention by default; a key that opts in keeps its prompts and answers until its retention ends."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from gateway_support import HELLO, NANO
from tokenmux.store.contents import DAY_S, ContentKeeper
from tokenmux.store.records import ContentRecord
from tokenmux.store.url import open_store


def stored(gw: Any, gen_id: str) -> ContentRecord | None:
    async def read() -> ContentRecord | None:
        async with open_store(gw.app.parts.settings.database_url) as store:
            return await store.get_contents(gen_id)

    return asyncio.run(read())


def wait_stored(gw: Any, gen_id: str) -> ContentRecord:
    for _ in range(100):
        found = stored(gw, gen_id)
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError("the prompt was never stored")


def test_prompts_are_not_stored_by_default(gateway: Any) -> None:
    answer = gateway.openai().chat.completions.create(model=NANO, messages=HELLO, max_tokens=5)
    time.sleep(1.0)  # longer than the keeper's flush interval
    assert stored(gateway, answer.id) is None


def test_a_key_that_opts_in_keeps_prompt_and_answer_streamed_or_not(gateway: Any) -> None:
    key = gateway.new_key("keeper", prompt_retention_days=7)
    client = gateway.openai(key)
    whole = client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=20)
    kept = wait_stored(gateway, whole.id)
    assert json.loads(kept.request)["messages"] == HELLO
    assert json.loads(kept.response)["choices"][0]["message"]["content"] == whole.choices[0].message.content
    stream = client.chat.completions.create(model=NANO, messages=HELLO, max_tokens=20, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    kept = wait_stored(gateway, chunks[0].id)
    assert json.loads(kept.response)["text"] == text


async def test_the_cleanup_enforces_each_keys_retention(tmp_path: Any) -> None:
    from tokenmux.store.keys import new_key

    async with open_store(f"sqlite:///{tmp_path}/c.db") as store:
        _, week = new_key("week")
        week.prompt_retention_days = 7
        _, gone = new_key("opted-out")  # had opted in, then the opt-in was removed
        await store.create_key(week)
        await store.create_key(gone)
        now = time.time()
        await store.write_contents(
            [
                ContentRecord(
                    id="old", key_id=week.id, created_at=now - 8 * DAY_S, request="{}", response="{}"
                ),
                ContentRecord(
                    id="new", key_id=week.id, created_at=now - 6 * DAY_S, request="{}", response="{}"
                ),
                ContentRecord(id="other", key_id=gone.id, created_at=now, request="{}", response="{}"),
            ]
        )
        keeper = ContentKeeper(store)
        assert await keeper.cleanup(now) == 2
        assert await store.get_contents("new") is not None
        assert await store.get_contents("old") is None and await store.get_contents("other") is None
