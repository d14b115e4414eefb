"""Prompt fitting: the byte bound, the offline exact count, and the decision per endpoint."""

from __future__ import annotations

import math
import re

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fresh_process import run_fresh
from tokenmux.catalog.model import Endpoint, Price
from tokenmux.errors import CountStopped
from tokenmux.routing import tokens
from tokenmux.routing.fit import (
    MESSAGE_FRAMING_TOKENS,
    MIN_OUTPUT_RESERVE,
    REPLY_PRIMING_TOKENS,
    PromptSize,
    check_fit,
)
from tokenmux.routing.tokens import RunningCount, count_tokens
from tokenmux.types import ChatRequest

FAMILIES = ("o200k", "cl100k", "claude", "gemini", "llama3", "mistral", "some-new-family")
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(autouse=True, scope="module")
def _loaded_tokenizers() -> None:
    tokens.warm_up()  # once, so that no example pays the extension's import


def endpoint(context: int, max_output: int = 32_768) -> Endpoint:
    return Endpoint("test/model", "test", "model", context, max_output, Price(0.1, 0.4), frozenset())


def chat(*messages: dict[str, object], **params: object) -> ChatRequest:
    return ChatRequest(model="test/model", messages=list(messages), params=dict(params))


def user(content: object) -> dict[str, object]:
    return {"role": "user", "content": content}


# Texts rich in what decides pre-tokenization: whitespace runs of every kind, punctuation before newlines
# and slashes, digits, contractions, letters of several scripts, emoji, control characters.
_FRAGMENTS = (
    " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", " \n", "\u00a0", "\u3000", "\u2028", "\x1c", "\x0b",
    "a", "Z", "word", "Hello", "'s", "'LL", "é", "naïve", "你好", "こんにちは", "Привет", "🙂", "👩‍💻",
    "1", "23", "4567", ".", ",", "!?", "/", "//", "...", "(", ")", "{", "}", "-", "_", "=", "<|endoftext|>",
)  # fmt: skip
tricky_text = st.one_of(
    st.lists(st.sampled_from(_FRAGMENTS), max_size=120).map("".join),
    st.text(max_size=300),
)


# --- exact counts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "o200k", "cl100k"),
    [
        ("", 0, 0),
        ("hello world", 2, 2),
        ("Hello, world!", 4, 4),
        ("héllo wörld 你好", 7, 9),
        ("<|endoftext|>", 7, 7),  # special-token text in a prompt is plain text
    ],
)
def test_counts_of_known_strings(text: str, o200k: int, cl100k: int) -> None:
    assert count_tokens(text, "o200k") == o200k
    assert count_tokens(text, "cl100k") == cl100k


def test_families_without_a_shipped_vocabulary_scale_cl100k_upwards() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 20
    base = count_tokens(text, "cl100k")
    assert count_tokens(text, "claude") == math.ceil(base * 1.5)
    assert count_tokens(text, "llama3") == math.ceil(base * 1.05)
    assert count_tokens(text, "never-heard-of-it") == math.ceil(base * 1.5)
    for name in FAMILIES:
        assert count_tokens(text, name) >= base


def test_lone_surrogates_are_counted_not_raised() -> None:
    assert count_tokens("abc\ud800def", "o200k") == count_tokens("abc\ufffddef", "o200k")
    size = PromptSize(chat(user("x\udfff" * 10)))
    assert size.text_bytes == 40
    assert size.exact("o200k") <= size.upper_bound("o200k")


def test_loading_the_tokenizer_waits_for_the_first_count() -> None:
    code = (
        "import sys, tokenmux.routing.fit as f, tokenmux.routing.tokens as t\n"
        "before = 'bpe_openai._bindings' in sys.modules\n"
        "t.count_tokens('hi', 'o200k')\n"
        "print(before, 'bpe_openai._bindings' in sys.modules)\n"
    )
    assert run_fresh(code).split() == ["False", "True"]


# --- counting in chunks -----------------------------------------------------------------------------------


@PROPERTY
@given(text=tricky_text, chunk_chars=st.integers(min_value=1, max_value=40))
def test_counting_in_chunks_gives_the_count_of_the_whole(text: str, chunk_chars: int) -> None:
    text = tokens.clean_text(text)
    for encoding in (tokens.O200K, tokens.CL100K):
        whole = tokens.tokenizer(encoding).count(text)
        running = RunningCount(encoding, [text], tokens.utf8_length(text), chunk_chars=chunk_chars)
        assert running.total() == whole
        assert running.unread_bytes == 0
        assert running.read_chars == len(text)


def test_cut_points_never_follow_whitespace() -> None:
    # Unicode's White_Space property: every one of these must count as whitespace for Python's regex
    # engine too, or a cut could land inside an all-whitespace pre-tokenizer piece.
    white_space = (
        "\t\n\x0b\x0c\r \x85\xa0\u1680"
        + "".join(map(chr, range(0x2000, 0x200B)))
        + ("\u2028\u2029\u202f\u205f\u3000")
    )
    for ch in white_space:
        assert re.fullmatch(r"\s", ch), hex(ord(ch))
        if ch != " ":
            assert tokens._CUT.search(f"a{ch} b") is None, hex(ord(ch))
    assert tokens._CUT.search("a  b") is not None and tokens._CUT.search("a  b").start() == 1


def test_a_count_stops_once_the_answer_is_certain() -> None:
    text = "hello " * 10_000  # 60,000 bytes, 10,000 tokens in o200k
    exact = tokens.tokenizer(tokens.O200K).count(text)
    fits = RunningCount(tokens.O200K, [text], len(text), chunk_chars=1000)
    assert fits.at_most(50_000)  # proven by count so far + bytes left, long before the end
    assert fits.read_chars < len(text) // 2
    over = RunningCount(tokens.O200K, [text], len(text), chunk_chars=1000)
    assert not over.at_most(2_000)
    assert over.read_chars < len(text) // 2
    # Later questions resume where the earlier ones stopped.
    assert over.at_most(exact) and not over.at_most(exact - 1)
    assert over.total() == exact and over.read_chars == len(text)


def test_repeated_chunks_come_from_the_cache_and_stay_exact() -> None:
    tokens.clear_cache()
    a, b = "a" * 8000, "a b " * 2000  # same length, very different counts
    enc = tokens.tokenizer(tokens.O200K)
    for text in (a, b, a, b):
        assert RunningCount(tokens.O200K, [text], len(text)).total() == enc.count(text)


def test_the_next_turn_of_a_conversation_of_short_messages_counts_only_its_last_chunk() -> None:
    # 400 messages of about 2,000 characters (each too short to be a chunk of its own): runs of them are
    # cached as chunks, so the same messages again with one more cost one chunk of counting, not 800 kB.
    tokens.clear_cache()
    turns = [f"Turn {i}: " + "we went over the figures once more. " * 55 for i in range(400)]
    exact = RunningCount(tokens.O200K, turns, sum(map(len, turns)))
    assert exact.at_most_known(10**9) is True  # the bytes bound it: no count needed
    assert exact.at_most_known(1_000) is None  # first seen: only a count can tell
    first = exact.total()
    nxt = [*turns, "One more question."]
    counted = tokens.tokenized_chars()
    again = RunningCount(tokens.O200K, nxt, sum(map(len, nxt)))
    assert again.total() == first + tokens.tokenizer(tokens.O200K).count("One more question.")
    assert tokens.tokenized_chars() - counted <= tokens.CHUNK_CHARS + len(turns[0]) + 100
    # Decided from the cache alone, as far as the earlier turns settle it.
    known = RunningCount(tokens.O200K, nxt, sum(map(len, nxt)))
    assert known.at_most_known(first // 2) is False


def test_a_stopped_count_ends_at_its_next_chunk() -> None:
    text = "hello there " * 20_000
    count = RunningCount(tokens.O200K, [text], len(text), chunk_chars=1000)
    assert not count.at_most(100)
    count.stop()
    with pytest.raises(CountStopped):
        count.total()


# --- the bound ----------------------------------------------------------------------------------------------

message_strategy = st.one_of(
    st.builds(user, tricky_text),
    st.builds(lambda t, n: {"role": "user", "name": n, "content": t}, tricky_text, st.text(max_size=10)),
    st.builds(
        lambda parts: user([{"type": "text", "text": p} for p in parts]), st.lists(tricky_text, max_size=4)
    ),
    st.builds(
        lambda args, name: {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": name, "arguments": args}}],
        },
        tricky_text,
        st.text(max_size=20),
    ),
    st.builds(lambda t: {"role": "tool", "tool_call_id": "c1", "content": t}, tricky_text),
)


@PROPERTY
@given(messages=st.lists(message_strategy, min_size=1, max_size=5), family=st.sampled_from(FAMILIES))
def test_the_bound_is_never_below_the_exact_count(messages: list[dict[str, object]], family: str) -> None:
    size = PromptSize(chat(*messages))
    exact = size.exact(family)
    assert exact <= size.upper_bound(family)
    assert size.bounds(family) == (exact, exact)


@PROPERTY
@given(text=st.text(max_size=500))
def test_text_bytes_bound_the_tokens_of_any_text(text: str) -> None:
    for family in ("o200k", "cl100k"):
        assert count_tokens(text, family) <= len(text.encode())


def test_framing_is_counted_per_message_in_the_bound_and_the_exact_count() -> None:
    size = PromptSize(chat({"role": "system", "content": "hello world"}, user("hello world")))
    fixed = 2 * MESSAGE_FRAMING_TOKENS + REPLY_PRIMING_TOKENS
    assert size.exact("o200k") == 2 + 2 + fixed
    assert size.upper_bound("o200k") == 22 + fixed


def test_image_data_urls_are_not_counted_as_text() -> None:
    data_url = "data:image/png;base64," + "iVBORw0KGgo" * 200_000  # 2.2 MB of base64
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": data_url}},
    ]
    size = PromptSize(chat(user(content)))
    assert size.text_bytes == len("What is in this picture?")
    assert size.media_items == 1
    image = tokens.family("o200k").image_tokens
    assert (
        size.upper_bound("o200k") == size.text_bytes + image + MESSAGE_FRAMING_TOKENS + REPLY_PRIMING_TOKENS
    )
    result = check_fit(size, endpoint(128_000), 1000, "o200k")
    assert result.fits and not result.tokenized


def test_tools_and_json_schema_count_as_their_json() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city " * 50,
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    schema = {"name": "answer", "schema": {"type": "object", "properties": {"text": {"type": "string"}}}}
    plain = PromptSize(chat(user("hi")))
    with_tools = PromptSize(chat(user("hi"), tools=tools))
    with_schema = PromptSize(chat(user("hi"), response_format={"type": "json_schema", "json_schema": schema}))
    assert with_tools.text_bytes == plain.text_bytes + len(msgspec.json.encode(tools))
    assert with_schema.text_bytes == plain.text_bytes + len(msgspec.json.encode(schema))
    assert with_tools.exact("o200k") > plain.exact("o200k") + count_tokens(
        "Weather for a city " * 50, "o200k"
    )
    assert with_schema.exact("o200k") > plain.exact("o200k")


# --- the decision -------------------------------------------------------------------------------------------


def test_small_prompts_fit_without_tokenizing() -> None:
    size = PromptSize(chat(user("hello world")))
    result = check_fit(size, endpoint(8192), 1024, "o200k")
    assert result.fits and result.reason == "" and not result.tokenized
    assert result.prompt_tokens == size.upper_bound("o200k")


def test_near_the_limit_the_exact_count_decides() -> None:
    text = "The gateway counts tokens only when it must. " * 2000  # ~90 kB, ~18k tokens
    size = PromptSize(chat(user(text)))
    exact = size.exact("o200k")
    assert size.upper_bound("o200k") > 4 * exact  # the bound alone would reject all of these
    out = 1000
    at_limit = check_fit(size, endpoint(exact + out), out, "o200k")
    assert at_limit.fits and at_limit.tokenized and at_limit.prompt_tokens == exact
    one_short = check_fit(size, endpoint(exact + out - 1), out, "o200k")
    assert not one_short.fits
    assert one_short.reason == (
        f"prompt too large: ~{exact:,} tokens + {out:,} output > context {exact + out - 1:,}"
    )


def test_a_prompt_far_over_the_limit_is_rejected_before_the_count_ends() -> None:
    text = "word " * 400_000  # 2 MB, 400k tokens: several chunks
    size = PromptSize(chat(user(text)))
    result = check_fit(size, endpoint(100_000), 1000, "o200k")
    assert not result.fits and result.tokenized
    assert result.reason.startswith("prompt too large: at least ~")
    assert result.reason.endswith("tokens + 1,000 output > context 100,000")
    assert 99_000 < result.prompt_tokens < 400_000
    assert size.tokenized_chars("o200k") < len(text)


def test_without_max_output_one_token_of_room_is_enough() -> None:
    text = "short prompts are common " * 500
    size = PromptSize(chat(user(text)))
    exact = size.exact("o200k")
    assert check_fit(size, endpoint(exact + MIN_OUTPUT_RESERVE), None, "o200k").fits
    result = check_fit(size, endpoint(exact), None, "o200k")
    assert not result.fits
    assert (
        result.reason == f"prompt too large: ~{exact:,} tokens leave no room for output in context {exact:,}"
    )


def test_max_output_above_the_endpoint_maximum_is_rejected_naming_both() -> None:
    result = check_fit(PromptSize(chat(user("hi"))), endpoint(1_047_576, 32_768), 40_000, "o200k")
    assert not result.fits
    assert result.reason == "max output 40,000 > endpoint max output 32,768"
    assert check_fit(PromptSize(chat(user("hi"))), endpoint(1_047_576, 32_768), 32_768, "o200k").fits


def test_scaled_families_decide_on_the_scaled_count() -> None:
    text = "Claude counts differently. " * 1000
    size = PromptSize(chat(user(text)))
    claude = size.exact("claude")
    assert claude > size.exact("cl100k")
    assert check_fit(size, endpoint(claude + 10), 10, "claude").fits
    assert not check_fit(size, endpoint(claude + 9), 10, "claude").fits


def test_each_text_is_tokenized_at_most_once_per_request() -> None:
    texts = ["Some context to route. " * 3000, "More of it, in another message. " * 3000]
    size = PromptSize(chat(*(user(t) for t in texts)))
    total_chars = sum(map(len, texts))
    exact = size.exact("o200k")
    size = PromptSize(chat(*(user(t) for t in texts)))  # fresh: nothing counted yet
    for context in (exact // 2, exact + 5000, exact + 1000, exact + 100, 10 * exact):
        check_fit(size, endpoint(context), 10, "o200k")
    assert size.exact("o200k") == exact
    assert size.exact("o200k") == exact
    assert size.tokenized_chars("o200k") == total_chars
    # Families counted with the same vocabulary share one count.
    size.exact("claude")
    size.exact("gemini")
    assert size.tokenized_chars("claude") == size.tokenized_chars("gemini") == total_chars
