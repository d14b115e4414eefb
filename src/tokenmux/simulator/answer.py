"""The answer to one request, planned before any wire format renders it.

A wire format parses its request into an ``AnswerSpec`` (what the client asked for, in neutral terms);
``plan`` turns that and the prefix's behaviour into an ``Answer`` (text tokens or tool calls per choice,
finish reasons, usage); the wire format renders the ``Answer`` as a body or a stream. Formats that come
(Anthropic, Gemini) reuse the planning and only add parsing and rendering.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tokenmux.simulator.content import (
    SchemaValueGenerator,
    cut_at_stop_sequence,
    json_pieces,
    small_object,
    text_tokens,
    token_logprobs,
)
from tokenmux.simulator.profile import Behaviour

_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
# Reasoning a client asked to see when the profile sets no reasoning_tokens: some, so there is some to show.
_SHOWN_REASONING_TOKENS = 16
_REASONING_SEED = 0x7E0C  # makes a choice's reasoning a different text from its answer


@dataclass(slots=True, frozen=True)
class ToolSpec:
    name: str
    parameters: dict[str, Any]  # JSON schema of the arguments


@dataclass(slots=True)
class AnswerSpec:
    """What the client asked for."""

    model: str
    prompt_tokens: int
    n: int = 1
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str = "auto"  # "none" | "auto" | "required" | "named"
    named_tool: str | None = None
    parallel_tool_calls: bool = True
    output: str = "text"  # "text" | "json_object" | "json_schema"
    json_schema: dict[str, Any] | None = None
    logprobs: bool = False
    top_logprobs: int = 0
    after_tool_result: bool = False  # the last message is a tool's result: the round trip ends in text
    stream: bool = False
    include_usage: bool = False
    show_reasoning: bool = (
        False  # the client asked to see the reasoning (Anthropic thinking, Gemini thoughts)
    )
    omit_reasoning: bool = False  # ...as blocks without their text (Anthropic's display "omitted")
    # Prompt parts marked for caching (Anthropic's cache_control) with this time to live, "5m" or "1h":
    # the part of the prompt not read from the cache is written to it.
    cache_ttl: str | None = None


@dataclass(slots=True)
class PlannedToolCall:
    id: str
    name: str
    arguments: str  # JSON text
    pieces: list[str]  # the arguments in stream-sized pieces


@dataclass(slots=True)
class PlannedChoice:
    index: int
    tokens: list[str]
    finish_reason: str  # "stop" | "length" | "tool_calls" | "content_filter" (the prompt was blocked)
    tool_calls: list[PlannedToolCall] = field(default_factory=list)
    # (token, logprob, [(alternative, logprob), ...]) per token, when the client asked for logprobs.
    logprobs: list[tuple[str, float, list[Any]]] | None = None
    reasoning: list[str] = field(default_factory=list)  # reasoning tokens shown before the answer
    reasoning_omitted: bool = False  # Anthropic's display "omitted": the block comes signed but empty
    stop_sequence: str | None = None  # the stop sequence that ended the text, if one did

    @property
    def content(self) -> str | None:
        return None if self.tool_calls else "".join(self.tokens)

    @property
    def chunk_count(self) -> int:
        """Content chunks this choice takes in a stream: one per reasoning token, then one per token or
        per tool call start and argument piece."""
        if self.tool_calls:
            return len(self.reasoning) + sum(1 + len(call.pieces) for call in self.tool_calls)
        return len(self.reasoning) + len(self.tokens)


@dataclass(slots=True)
class Answer:
    choices: list[PlannedChoice]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    prompt_blocked: bool = False  # the provider's safety filter refused the prompt; choices are empty
    cache_write_tokens: int = 0  # prompt tokens written to the cache (included in prompt_tokens)
    cache_write_ttl: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def steps(self) -> int:
        """How many token times the longest choice takes; the pacing unit."""
        return max((c.chunk_count for c in self.choices), default=0)


def plan(
    spec: AnswerSpec,
    behaviour: Behaviour,
    content_seed: int,
    *,
    blocked: bool = False,
    cached_tokens: int | None = None,
) -> Answer:
    """The deterministic answer to ``spec``: the same seed and spec give the same answer. A ``blocked``
    prompt gets empty choices that finish with ``content_filter``. ``cached_tokens`` is what the prompt
    cache read, else the profile's ``cached_ratio`` of the prompt is."""
    cached = int(spec.prompt_tokens * behaviour.cached_ratio) if cached_tokens is None else cached_tokens
    written = spec.prompt_tokens - cached if spec.cache_ttl else 0
    if blocked:
        choices = [PlannedChoice(i, [], "content_filter") for i in range(spec.n)]
        return Answer(choices, spec.prompt_tokens, 0, cached, 0, True, written, spec.cache_ttl)
    seeds = [content_seed if i == 0 else (content_seed << 8) | i for i in range(spec.n)]
    choices = [_plan_choice(spec, behaviour, seed, i) for i, seed in enumerate(seeds)]
    if spec.show_reasoning:
        # Shown reasoning is streamed, so it is counted with the choices' chunks.
        count = behaviour.reasoning_tokens or _SHOWN_REASONING_TOKENS
        for choice, seed in zip(choices, seeds, strict=True):
            choice.reasoning = text_tokens(seed ^ _REASONING_SEED, count, complete=True)
            choice.reasoning_omitted = spec.omit_reasoning
        reasoning, hidden = count * len(choices), 0
    else:
        reasoning = hidden = behaviour.reasoning_tokens
    return Answer(
        choices=choices,
        prompt_tokens=spec.prompt_tokens,
        completion_tokens=sum(c.chunk_count for c in choices) + hidden,
        cached_tokens=cached,
        reasoning_tokens=reasoning,
        cache_write_tokens=written,
        cache_write_ttl=spec.cache_ttl,
    )


def _plan_choice(spec: AnswerSpec, behaviour: Behaviour, seed: int, index: int) -> PlannedChoice:
    # Plain text needs no generator (see content.text_tokens); everything else draws from one.
    if spec.tools and spec.tool_choice != "none" and not spec.after_tool_result:
        return PlannedChoice(index, [], "tool_calls", tool_calls=_tool_calls(spec, random.Random(seed)))
    rng = random.Random(seed) if spec.output != "text" or spec.logprobs else None
    capped = False
    if rng is None or spec.output == "text":
        count = behaviour.completion_tokens
        if spec.max_tokens is not None and spec.max_tokens < count:
            count, capped = spec.max_tokens, True
        tokens = text_tokens(seed, count, complete=not capped)
    else:
        if spec.output == "json_schema" and spec.json_schema is not None:
            document = SchemaValueGenerator(spec.json_schema, rng).value(spec.json_schema)
        else:
            document = small_object(rng)
        tokens = json_pieces(msgspec.json.encode(document).decode())
        if spec.max_tokens is not None and spec.max_tokens < len(tokens):
            tokens, capped = tokens[: spec.max_tokens], True
    stop_sequence = None
    if spec.stop:
        tokens, stop_sequence = cut_at_stop_sequence(tokens, spec.stop)
    finish_reason = "length" if capped and stop_sequence is None else "stop"
    logprobs = token_logprobs(rng, tokens, spec.top_logprobs) if rng is not None and spec.logprobs else None
    return PlannedChoice(index, tokens, finish_reason, logprobs=logprobs, stop_sequence=stop_sequence)


def _tool_calls(spec: AnswerSpec, rng: random.Random) -> list[PlannedToolCall]:
    if spec.tool_choice == "named":
        chosen = [t for t in spec.tools if t.name == spec.named_tool][:1]
    else:
        parallel = spec.tool_choice == "required" and spec.parallel_tool_calls and len(spec.tools) >= 2
        chosen = rng.sample(spec.tools, 2 if parallel else 1)
    calls = []
    for tool in chosen:
        schema = tool.parameters or _EMPTY_PARAMETERS
        value = SchemaValueGenerator(schema, rng).value(schema)
        # Arguments are always an object, even when a tool declares its parameters loosely.
        arguments = msgspec.json.encode(value if isinstance(value, dict) else {}).decode()
        call_id = f"call_{rng.getrandbits(96):024x}"
        calls.append(PlannedToolCall(call_id, tool.name, arguments, json_pieces(arguments)))
    return calls
