"""Reading an Anthropic Messages request: the checks Anthropic makes that the simulator relies on, with
Anthropic's messages (``field: problem``), and what the request asks for as an ``AnswerSpec``."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from tokenmux.simulator.answer import AnswerSpec, ToolSpec
from tokenmux.simulator.wire import RequestRejected

_ROLES = frozenset({"user", "assistant", "system"})
# Models that take {"role": "system"} inside messages (mid-conversation system messages): Opus 4.8 on.
_MID_CONVERSATION_SYSTEM = re.compile(r"claude-opus-(?:4-(?:[89]|\d\d)|[5-9]|\d\d)(?!\d)")
_IMAGE_TOKENS = 1600  # Anthropic bills an image by its size; a mid-sized one is about this
_THINKING_TYPES = frozenset({"enabled", "disabled", "adaptive"})
_MIN_THINKING_BUDGET = 1024


def parse_messages_request(body: Any) -> AnswerSpec:
    """Check a Messages request the way Anthropic does (the parts the simulator relies on)."""
    if not isinstance(body, dict):
        raise _invalid("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if max_tokens is None:
        raise _invalid("max_tokens: Field required")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise _invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages: Field required (a non-empty list of messages)")
    for position, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in _ROLES:
            raise _invalid(f"messages.{position}.role: Input should be 'user', 'assistant' or 'system'")
        content = message.get("content")
        if not isinstance(content, str | list):
            raise _invalid(f"messages.{position}.content: Input should be a valid string or list")
        if message["role"] == "system":
            _check_system_message(model, messages, position)
    system = body.get("system")
    if system is not None and not isinstance(system, str | list):
        raise _invalid("system: Input should be a valid string or a list of text blocks")
    _number(body, "temperature", 0.0, 1.0)
    _number(body, "top_p", 0.0, 1.0)
    tools = _tools(body.get("tools"))
    tool_choice, named_tool, parallel = _tool_choice(body.get("tool_choice"), tools)
    output, schema = _output_format(body)
    last = messages[-1]
    return AnswerSpec(
        model=model,
        prompt_tokens=estimate_prompt_tokens(system, messages, body.get("tools")),
        max_tokens=max_tokens,
        stop=_stop_sequences(body.get("stop_sequences")),
        tools=tools,
        tool_choice=tool_choice,
        named_tool=named_tool,
        parallel_tool_calls=parallel,
        output=output,
        json_schema=schema,
        after_tool_result=last.get("role") == "user" and _has_block(last.get("content"), "tool_result"),
        stream=_boolean(body, "stream"),
        include_usage=True,
        show_reasoning=_thinking(body.get("thinking"), max_tokens),
        omit_reasoning=isinstance(body.get("thinking"), dict)
        and body["thinking"].get("display") == "omitted",
        cache_ttl=_cache_ttl(body, system, messages),
    )


def _check_system_message(model: str, messages: list[Any], position: int) -> None:
    """Anthropic's rules for a system message inside ``messages``: only on the models that have them, never
    first, right after a user turn, and last or before an assistant turn, text only."""
    where = f"messages.{position}"
    if not _MID_CONVERSATION_SYSTEM.search(model):
        raise _invalid(f"{where}.role: system messages inside messages are not supported on {model}")
    if position == 0:
        raise _invalid(f"{where}: use the top-level 'system' parameter for the initial system prompt")
    if messages[position - 1].get("role") != "user":
        raise _invalid(f"{where}: a system message must immediately follow a user message")
    following = messages[position + 1] if position + 1 < len(messages) else None
    if following is not None and following.get("role") != "assistant":
        raise _invalid(f"{where}: a system message must be last or followed by an assistant message")
    content = messages[position]["content"]
    if isinstance(content, list) and not all(
        isinstance(block, dict) and block.get("type") == "text" for block in content
    ):
        raise _invalid(f"{where}.content: a system message takes text blocks only")


def estimate_prompt_tokens(system: Any, messages: list[Any], tools: Any) -> int:
    """A cheap, deterministic estimate: a token per 4 bytes of text, 3 tokens of framing per message."""
    text_bytes = _text_bytes(system)
    images = 0
    for message in messages:
        content = message.get("content")
        text_bytes += _text_bytes(content)
        if isinstance(content, list):
            images += sum(1 for block in content if isinstance(block, dict) and block.get("type") == "image")
    if tools:
        text_bytes += len(msgspec.json.encode(tools))
    return 3 * len(messages) + 3 + text_bytes // 4 + _IMAGE_TOKENS * images


def _text_bytes(content: Any) -> int:
    if isinstance(content, str):
        return len(content.encode())
    total = 0
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                total += len(block["text"].encode())
            elif kind == "tool_use":
                total += len(msgspec.json.encode(block.get("input")))
            elif kind == "tool_result":
                total += _text_bytes(block.get("content"))
    return total


def _has_block(content: Any, kind: str) -> bool:
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == kind for b in content)


def _cache_ttl(body: dict[str, Any], system: Any, messages: list[Any]) -> str | None:
    """The time to live of the first cache breakpoint: top-level, in tools, system, then messages."""
    marks: list[Any] = [body.get("cache_control")]
    for blocks in (body.get("tools"), system, *(m.get("content") for m in messages)):
        if isinstance(blocks, list):
            marks.extend(b.get("cache_control") for b in blocks if isinstance(b, dict))
    for mark in marks:
        if isinstance(mark, dict):
            return "1h" if mark.get("ttl") == "1h" else "5m"
    return None


def _invalid(message: str) -> RequestRejected:
    return RequestRejected(400, message)


def _number(body: dict[str, Any], name: str, low: float, high: float) -> None:
    value = body.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise _invalid(f"{name}: Input should be a valid number")
    if value < low:
        raise _invalid(f"{name}: Input should be greater than or equal to {low:g}")
    if value > high:
        raise _invalid(f"{name}: Input should be less than or equal to {high:g}")


def _boolean(body: dict[str, Any], name: str) -> bool:
    value = body.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _invalid(f"{name}: Input should be a valid boolean")
    return value


def _stop_sequences(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _invalid("stop_sequences: Input should be a valid list of strings")
    return tuple(s for s in value if s)


def _tools(value: Any) -> tuple[ToolSpec, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _invalid("tools: Input should be a valid list")
    tools = []
    for position, tool in enumerate(value):
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str) or not name:
            raise _invalid(f"tools.{position}.name: Field required")
        assert isinstance(tool, dict)
        if tool.get("type") not in (None, "custom"):
            continue  # a server tool (web search, ...): the simulator never calls those
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _invalid(f"tools.{position}.custom.input_schema: Field required")
        tools.append(ToolSpec(name, schema))
    return tuple(tools)


def _tool_choice(value: Any, tools: tuple[ToolSpec, ...]) -> tuple[str, str | None, bool]:
    """(tool_choice, named tool, parallel calls allowed) in the spec's terms."""
    if value is None:
        return "auto", None, True
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise _invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")
    assert isinstance(value, dict)
    parallel = value.get("disable_parallel_tool_use") is not True
    if kind == "tool":
        name = value.get("name")
        if not any(t.name == name for t in tools):
            raise _invalid(f"tool_choice: tool '{name}' was not found in tools")
        return "named", name, parallel
    return {"auto": "auto", "any": "required", "none": "none"}[kind], None, parallel


def _output_format(body: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """``output_config.format`` (or the earlier beta ``output_format``): a JSON schema the text must fit."""
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if fmt is None:
        fmt = body.get("output_format")
    if fmt is None:
        return "text", None
    schema = fmt.get("schema") if isinstance(fmt, dict) else None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(schema, dict):
        raise _invalid('output_config.format: Input should be {"type": "json_schema", "schema": {...}}')
    return "json_schema", schema


def _thinking(value: Any, max_tokens: int) -> bool:
    """Whether the answer shows thinking; checks ``budget_tokens`` as Anthropic does."""
    if value is None:
        return False
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in _THINKING_TYPES:
        raise _invalid("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    assert isinstance(value, dict)
    if kind != "enabled":
        return kind == "adaptive"  # shown, or with display "omitted" signed blocks without their text
    budget = value.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise _invalid("thinking.enabled.budget_tokens: Field required")
    if budget < _MIN_THINKING_BUDGET:
        raise _invalid(
            f"thinking.enabled.budget_tokens: Input should be greater than or equal to {_MIN_THINKING_BUDGET}"
        )
    if budget >= max_tokens:
        raise _invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    return True
