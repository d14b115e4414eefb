"""The simulated prompt cache: a prompt that repeats the prefix of a recent one reports that prefix as
cached, in each wire format's own usage field, in OpenAI's steps, and forgets it after five idle minutes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from clock_support import Clock
from tokenmux.server.runner import BackgroundServer
from tokenmux.simulator.control_client import PrefixControl, SimulatorControl
from tokenmux.simulator.prompt_cache import PromptCache, cacheable, prompt_parts

# About 1,500 tokens at the simulator's four bytes a token: over the 1,024 a prompt needs to be cached.
LONG_SYSTEM = "You are a careful assistant who answers in one short paragraph. " * 94


def _chat(system: str, *turns: str) -> list[Any]:
    messages: list[Any] = [{"role": "system", "content": system}]
    for i, text in enumerate(turns):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": text})
    return messages


# -- the cache itself ---------------------------------------------------------------------------------


def test_the_longest_remembered_prefix_is_read_in_steps_of_128() -> None:
    cache = PromptCache(Clock())
    first = prompt_parts({"messages": _chat(LONG_SYSTEM, "one")}, "m")
    second = prompt_parts({"messages": _chat(LONG_SYSTEM, "one", "answer", "two")}, "m")

    assert cache.read(first, 2000) == 0
    read = cache.read(second, 2000)

    shared = sum(len(p) for p in first)
    expected = 2000 * shared // sum(len(p) for p in second)
    assert read == cacheable(expected) and read % 128 == 0 and 1024 <= read < 2000
    # The same prompt again: all of it was cached by the last call.
    assert cache.read(second, 2000) == 1920


def test_short_prompts_are_neither_read_nor_remembered() -> None:
    cache = PromptCache(Clock())
    parts = prompt_parts({"messages": _chat("short", "hi")}, "m")

    assert cache.read(parts, 1023) == 0 and cache.read(parts, 1023) == 0
    assert len(cache) == 0
    assert cacheable(1023) == 0 and cacheable(1024) == 1024 and cacheable(1300) == 1280


def test_prefixes_expire_after_their_time_to_live_unless_used() -> None:
    clock = Clock()
    cache = PromptCache(clock)
    parts = prompt_parts({"messages": _chat(LONG_SYSTEM, "one")}, "m")
    cache.read(parts, 1500)

    clock.now += 299
    assert cache.read(parts, 1500) == 1408  # used: five more minutes from now
    clock.now += 299
    assert cache.read(parts, 1500) == 1408
    clock.now += 301
    assert cache.read(parts, 1500, ttl_s=3600) == 0  # expired; now kept for an hour (Anthropic's "1h")
    clock.now += 3599
    assert cache.read(parts, 1500) == 1408


def test_another_model_or_other_tools_or_system_share_nothing() -> None:
    cache = PromptCache(Clock())
    cache.read(prompt_parts({"messages": _chat(LONG_SYSTEM, "one")}, "m"), 1500)

    assert cache.read(prompt_parts({"messages": _chat(LONG_SYSTEM, "one")}, "other"), 1500) == 0
    tools = [{"type": "function", "function": {"name": "f"}}]
    assert cache.read(prompt_parts({"messages": _chat(LONG_SYSTEM, "one"), "tools": tools}, "m"), 1500) == 0
    assert cache.read(prompt_parts({"messages": _chat(LONG_SYSTEM + ".", "one")}, "m"), 1500) == 0


def test_cache_control_marks_do_not_change_the_prefix() -> None:
    cache = PromptCache(Clock())
    mark = {"type": "ephemeral"}
    first = {
        "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": mark}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "one", "cache_control": mark}]}],
    }
    # The next turn moves the mark to its newest message, as Claude Code does.
    second = {
        "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": mark}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "one"}]},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": [{"type": "text", "text": "two", "cache_control": mark}]},
        ],
    }
    cache.read(prompt_parts(first, "m"), 1500)

    assert cache.read(prompt_parts(second, "m"), 1500) >= 1280


def test_the_cache_holds_at_most_its_bound_forgetting_the_least_recently_used() -> None:
    cache = PromptCache(Clock(), max_prefixes=4)
    old = prompt_parts({"messages": _chat(LONG_SYSTEM, "old")}, "m")  # 2 prefixes
    cache.read(old, 1500)
    for n in range(3):
        cache.read(prompt_parts({"messages": _chat(LONG_SYSTEM + str(n), "x")}, "m"), 1500)

    assert len(cache) == 4
    assert cache.read(old, 1500) == 0


# -- through the wire formats -------------------------------------------------------------------------


def test_a_conversation_reads_more_of_its_prompt_from_the_cache_each_turn(
    client: openai.OpenAI, control: PrefixControl
) -> None:
    turns = ["What is a prompt cache?", "It keeps prefixes.", "How long?", "Five minutes.", "Thanks."]
    cached = []
    for n in (1, 3, 5):
        completion = client.chat.completions.create(
            model="gpt-4.1-nano", messages=_chat(LONG_SYSTEM, *turns[:n])
        )
        usage = completion.usage
        assert usage is not None and usage.prompt_tokens_details is not None
        cached.append(usage.prompt_tokens_details.cached_tokens)
        assert usage.prompt_tokens >= 1024

    assert cached[0] == 0 and 1024 <= cached[1] <= cached[2]
    assert all(c % 128 == 0 for c in cached)

    # A new profile empties the cache, so a test's figures do not depend on the ones before it.
    control.set()
    again = client.chat.completions.create(model="gpt-4.1-nano", messages=_chat(LONG_SYSTEM, *turns))
    assert again.usage is not None and again.usage.prompt_tokens_details is not None
    assert again.usage.prompt_tokens_details.cached_tokens == 0

    control.set(prompt_cache=False)
    for _ in range(2):
        off = client.chat.completions.create(model="gpt-4.1-nano", messages=_chat(LONG_SYSTEM, *turns))
        assert off.usage is not None and off.usage.prompt_tokens_details is not None
        assert off.usage.prompt_tokens_details.cached_tokens == 0


def test_responses_report_cached_input_tokens(client: openai.OpenAI, control: PrefixControl) -> None:
    first = client.responses.create(model="gpt-4.1-nano", instructions=LONG_SYSTEM, input="one")
    second = client.responses.create(
        model="gpt-4.1-nano",
        instructions=LONG_SYSTEM,
        input=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": "two"},
        ],
    )

    assert first.usage is not None and first.usage.input_tokens_details.cached_tokens == 0
    assert second.usage is not None and second.usage.input_tokens_details.cached_tokens >= 1024


@pytest.fixture
def anthropic_control(sim_control: SimulatorControl) -> Iterator[PrefixControl]:
    control = sim_control.at("anthropic")
    control.set()
    yield control
    control.set()


def test_anthropic_caches_only_prompts_marked_for_it(
    sim_server: BackgroundServer, anthropic_control: PrefixControl
) -> None:
    mark: Any = {"type": "ephemeral"}
    unmarked: Any = [{"type": "text", "text": LONG_SYSTEM}]
    marked: Any = [{"type": "text", "text": LONG_SYSTEM, "cache_control": mark}]
    hello: Any = [{"role": "user", "content": "Hello there"}]
    with anthropic.Anthropic(
        base_url=f"{sim_server.url}/anthropic", api_key="sk-ant-test", max_retries=0, timeout=10
    ) as claude:
        usages = [
            claude.messages.create(
                model="claude-haiku-4-5", max_tokens=64, system=system, messages=hello
            ).usage
            for system in (unmarked, unmarked, marked, marked)
        ]

    assert [u.cache_read_input_tokens for u in usages[:3]] == [0, 0, 0]
    written = usages[2].cache_creation_input_tokens
    assert written is not None and written >= 1024 and usages[2].input_tokens == 0
    read = usages[3].cache_read_input_tokens
    assert read is not None and read >= 1024
    # Anthropic's input_tokens leaves out what was read from or written to the cache.
    assert usages[3].input_tokens + read + (usages[3].cache_creation_input_tokens or 0) == written


@pytest.fixture
def google_control(sim_control: SimulatorControl) -> Iterator[PrefixControl]:
    control = sim_control.at("google")
    control.set()
    yield control
    control.set()


def test_gemini_reports_cached_content_tokens(
    sim_server: BackgroundServer, google_control: PrefixControl
) -> None:
    gemini = genai.Client(
        api_key="gemini-test-key",
        http_options=types.HttpOptions(base_url=f"{sim_server.url}/google", timeout=10_000),
    )
    config = types.GenerateContentConfig(system_instruction=LONG_SYSTEM)
    first = gemini.models.generate_content(model="gemini-2.5-flash", contents="one", config=config)
    chunks = list(
        gemini.models.generate_content_stream(
            model="gemini-2.5-flash",
            contents=[
                types.Content(role="user", parts=[types.Part(text="one")]),
                types.Content(role="model", parts=[types.Part(text="answer")]),
                types.Content(role="user", parts=[types.Part(text="two")]),
            ],
            config=config,
        )
    )

    assert first.usage_metadata is not None and not first.usage_metadata.cached_content_token_count
    last = chunks[-1].usage_metadata
    assert last is not None and (last.cached_content_token_count or 0) >= 1024
