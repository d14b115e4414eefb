"""The answer to one request, planned before any wire format renders it.

A wire format parses its request into an ``AnswerSpec`` (what the client asked for, in neutral terms);
``plan`` turns that and the prefix's behaviour into an ``Answer`` (text tokens or tool calls per choice,
finish reasons, usage); the wire format renders the ``Answer`` as a body or a stream. Formats that come
later (Anthropic, Gemini) reuse the planning and only add parsing and rendering.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import msgspec

from tokenmux.simulator.content import (
    SchemaValueGenerator,
    cut_at_stop,
    json_pieces,
    small_object,
    text_tokens,
    token_logprobs,
)
from tokenmux.simulator.profile import Behaviour

_EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


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
    finish_reason: str
    tool_calls: list[PlannedToolCall] = field(default_factory=list)
    # (token, logprob, [(alternative, logprob), ...]) per token, when the client asked for logprobs.
    logprobs: list[tuple[str, float, list[Any]]] | None = None

    @property
    def content(self) -> str | None:
        return None if self.tool_calls else "".join(self.tokens)

    @property
    def chunk_count(self) -> int:
        """Content chunks this choice takes in a stream: one per token, or per tool call start and
        argument piece."""
        if self.tool_calls:
            return sum(1 + len(call.pieces) for call in self.tool_calls)
        return len(self.tokens)


@dataclass(slots=True)
class Answer:
    choices: list[PlannedChoice]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def steps(self) -> int:
        """How many token times the longest choice takes; the pacing unit."""
        return max((c.chunk_count for c in self.choices), default=0)


def plan(spec: AnswerSpec, behaviour: Behaviour, content_seed: int) -> Answer:
    """The deterministic answer to ``spec``: the same seed and spec give the same answer."""
    choices = [
        _plan_choice(spec, behaviour, content_seed if i == 0 else (content_seed << 8) | i, i)
        for i in range(spec.n)
    ]
    reasoning = behaviour.reasoning_tokens
    completion = sum(c.chunk_count for c in choices) + reasoning
    return Answer(
        choices=choices,
        prompt_tokens=spec.prompt_tokens,
        completion_tokens=completion,
        cached_tokens=int(spec.prompt_tokens * behaviour.cached_ratio),
        reasoning_tokens=reasoning,
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
    stopped = False
    if spec.stop:
        tokens, stopped = cut_at_stop(tokens, spec.stop)
    finish_reason = "length" if capped and not stopped else "stop"
    logprobs = token_logprobs(rng, tokens, spec.top_logprobs) if rng is not None and spec.logprobs else None
    return PlannedChoice(index, tokens, finish_reason, logprobs=logprobs)


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
