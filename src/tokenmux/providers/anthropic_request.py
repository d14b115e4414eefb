"""Hub request (OpenAI Chat shape) -> Anthropic Messages request body, for the ``anthropic`` adapter.

- system (and developer) messages ahead of the conversation join into ``system``; text parts keep their
  ``cache_control``. A system message later in the conversation stays where it is on models that take
  mid-conversation system messages (Opus 4.8 and later, at Anthropic: ``mid_conversation_system``) when it
  sits where Anthropic allows one (after a user turn, before an assistant turn or last); elsewhere it
  joins ``system`` too. A prompt of nothing but system messages is sent as one user turn of their text,
  since Anthropic needs at least one message;
- turns alternate as Anthropic requires: consecutive same-role messages merge into one turn, tool results
  become ``tool_result`` blocks of a user turn, assistant tool calls ``tool_use`` blocks (ids kept), an
  assistant's ``reasoning_blocks`` go back verbatim ahead of its text (multi-turn extended thinking);
- images: data URLs become base64 sources, http(s) URLs url sources; PDF ``file`` parts documents;
- ``max_tokens`` is required by Anthropic: when the client gave none, ``DEFAULT_MAX_TOKENS`` (8192) capped
  at the endpoint's max output. That is enough for nearly every chat answer, keeps a non-streamed call well
  inside the ten minutes Anthropic allows one, and a client that wants more says so;
- ``temperature`` is clamped to Anthropic's 0..1; ``stop`` becomes ``stop_sequences``; ``user`` becomes
  ``metadata.user_id``; ``parallel_tool_calls: false`` becomes ``disable_parallel_tool_use``;
- thinking: a ``thinking`` object (from an Anthropic client) goes as it is; else ``reasoning`` /
  ``reasoning_effort`` become ``{"type": "enabled", "budget_tokens": N}`` (effort as a share of
  max_tokens, OpenRouter's convention). With thinking on, Anthropic refuses temperature, top_k and a top_p
  below 0.95, so those are left out, and max_tokens grows to leave the answer room above the budget;
- ``response_format`` json_schema: on models with structured outputs (Claude 4.5 and later) Anthropic's
  own ``output_config.format``, which constrains decoding to the schema; on older models, and for
  json_object, a tool named ``json_output`` with the schema as its input_schema that ``tool_choice``
  forces (beside the client's own tools: "any", so those stay callable; with thinking, which refuses
  forced tools: "auto"); ``anthropic_response`` turns its input back into the message's text;
- mid tool loop with thinking on, Anthropic wants the last assistant turn to open with its signed
  thinking block; when the conversation lost it (a client that keeps only OpenAI's fields, or a turn
  another model wrote), thinking is left out of that request rather than have it refused;
- parameters Anthropic does not take (penalties, seed, logit_bias, logprobs, n, ...) are not sent;
  Anthropic's own fields an Anthropic client sent (context_management, service_tier, speed, ...) and a
  tool's own keys (cache_control, defer_loading, ...) go as they are.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from tokenmux.errors import ProviderRejected
from tokenmux.providers.base import CallContext
from tokenmux.types import ChatRequest, Message

_decode = msgspec.json.Decoder().decode
DEFAULT_MAX_TOKENS = 8192
JSON_TOOL = "json_output"
MIN_THINKING_BUDGET = 1024
# Share of max_tokens given to thinking for a reasoning effort.
_EFFORT_SHARE = {"minimal": 0.1, "low": 0.2, "medium": 0.5, "high": 0.8, "xhigh": 0.9}
_MAX_EFFORT_BUDGET = 32_000
# Anthropic-only request fields an Anthropic client may send; they pass through unchanged.
_NATIVE_FIELDS = (
    "service_tier",
    "container",
    "mcp_servers",
    "context_management",
    "inference_geo",
    "cache_control",
    "speed",
)
# Hub tool keys that are not Anthropic tool fields of their own.
_HUB_TOOL_KEYS = frozenset({"type", "function"})
# Claude model names whose version is at least 4.5 have structured outputs (output_config.format).
_CLAUDE_VERSION = re.compile(r"claude-(?:opus|sonnet|haiku)-(\d+)(?:-(\d)(?!\d))?")


def has_structured_outputs(upstream_model: str) -> bool:
    match = _CLAUDE_VERSION.search(upstream_model)
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2) or 0)) >= (4, 5)


def has_mid_conversation_system(upstream_model: str) -> bool:
    """Whether the model takes ``{"role": "system"}`` inside ``messages`` (Claude Opus 4.8 and later)."""
    match = _CLAUDE_VERSION.search(upstream_model)
    if match is None or not match.group(0).startswith("claude-opus-"):
        return False
    return (int(match.group(1)), int(match.group(2) or 0)) >= (4, 8)


def encode_request(
    request: ChatRequest, ctx: CallContext, *, stream: bool, mid_conversation_system: bool = True
) -> tuple[dict[str, Any], str | None]:
    """The Messages request body, and the name of the forced JSON tool when one carries the answer.
    ``mid_conversation_system``: whether the host takes system messages inside ``messages`` on the models
    that have them (Anthropic's own API does; Microsoft Foundry does not)."""
    params = ctx.params
    endpoint = ctx.endpoint
    system, turns = encode_messages(
        request.messages,
        mid_conversation_system=mid_conversation_system
        and has_mid_conversation_system(endpoint.upstream_model),
    )
    body: dict[str, Any] = {"model": endpoint.upstream_model}
    if system is not None:
        body["system"] = system
    body["messages"] = turns
    max_tokens, thinking = _budget(params, endpoint.max_output, turns)
    body["max_tokens"] = max_tokens
    if thinking is not None:
        body["thinking"] = thinking
    thinking_on = thinking is not None and thinking.get("type") in ("enabled", "adaptive")
    _sampling(params, thinking_on, body)
    json_tool = _tools_and_format(params, endpoint.upstream_model, thinking_on, body)
    for name in _NATIVE_FIELDS:
        if name in params:
            body[name] = params[name]
    body["stream"] = stream
    return body, json_tool


def _budget(
    params: dict[str, Any], max_output: int, turns: list[dict[str, Any]]
) -> tuple[int, dict[str, Any] | None]:
    """(max_tokens, thinking): Anthropic needs max_tokens, and a thinking budget below it."""
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    if not isinstance(max_tokens, int):
        max_tokens = min(DEFAULT_MAX_TOKENS, max_output)
    thinking = _thinking(params, max_tokens)
    if thinking is None or thinking.get("type") == "disabled":
        return max_tokens, thinking
    if _unsigned_tool_turn(turns):
        # Mid tool loop, Anthropic wants the last assistant turn to open with its signed thinking; a
        # client that did not keep it (or a turn another model wrote) can only continue without thinking.
        return max_tokens, None
    budget = thinking.get("budget_tokens")
    if isinstance(budget, int) and budget >= max_tokens:
        # The client's max_tokens was meant for the answer: thinking comes on top of it.
        max_tokens = min(budget + max_tokens, max_output)
        if budget >= max_tokens:
            if max_tokens - 1 < MIN_THINKING_BUDGET:
                return max_tokens, None
            thinking = {**thinking, "budget_tokens": max_tokens - 1}
    return max_tokens, thinking


def _unsigned_tool_turn(turns: list[dict[str, Any]]) -> bool:
    """True when the last assistant turn called tools without a thinking block ahead of them."""
    for turn in reversed(turns):
        if turn["role"] != "assistant":
            continue
        blocks = turn["content"]
        if isinstance(blocks, str) or not any(b["type"] == "tool_use" for b in blocks):
            return False
        return blocks[0]["type"] not in ("thinking", "redacted_thinking")
    return False


def _sampling(params: dict[str, Any], thinking_on: bool, body: dict[str, Any]) -> None:
    if not thinking_on:  # Anthropic refuses temperature and top_k with thinking, and top_p below 0.95
        temperature = params.get("temperature")
        if isinstance(temperature, int | float):
            body["temperature"] = min(max(float(temperature), 0.0), 1.0)
        if "top_k" in params:
            body["top_k"] = params["top_k"]
    top_p = params.get("top_p")
    if isinstance(top_p, int | float) and (not thinking_on or top_p >= 0.95):
        body["top_p"] = top_p
    stop = params.get("stop")
    if stop:
        body["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if params.get("user"):
        body["metadata"] = {"user_id": params["user"]}


def _tools_and_format(
    params: dict[str, Any], upstream_model: str, thinking_on: bool, body: dict[str, Any]
) -> str | None:
    """Tools, tool_choice and output_config; the forced JSON tool's name when the answer comes by it."""
    tools = [_tool(t) for t in params.get("tools") or ()]
    parallel = params.get("parallel_tool_calls")
    tool_choice = _tool_choice(params.get("tool_choice"), parallel)
    output_config = dict(params["output_config"]) if isinstance(params.get("output_config"), dict) else {}
    json_tool = None
    response_format = params.get("response_format")
    if not isinstance(response_format, dict):
        response_format = {}
    kind = response_format.get("type")
    if kind in ("json_schema", "json_object"):
        schema = (response_format.get("json_schema") or {}).get("schema")
        if kind == "json_schema" and isinstance(schema, dict) and has_structured_outputs(upstream_model):
            output_config["format"] = {"type": "json_schema", "schema": schema}
        else:
            json_tool = JSON_TOOL
            if thinking_on:  # Anthropic refuses a forced tool while thinking: the model is only offered it
                tool_choice = {"type": "auto"}
            elif tools:  # the client's tools stay callable; a text answer must come by the JSON tool
                tool_choice = _tool_choice("required", parallel)
            else:
                tool_choice = {"type": "tool", "name": JSON_TOOL}
            tools.append(
                {
                    "name": JSON_TOOL,
                    "description": "Give the answer as a JSON object with exactly these fields.",
                    "input_schema": schema if isinstance(schema, dict) else {"type": "object"},
                }
            )
    if output_config:
        body["output_config"] = output_config
    if tools:
        body["tools"] = tools
        if tool_choice is not None:
            body["tool_choice"] = tool_choice
    return json_tool


def _thinking(params: dict[str, Any], max_tokens: int) -> dict[str, Any] | None:
    native = params.get("thinking")
    if isinstance(native, dict):
        return native
    reasoning = params.get("reasoning")
    effort = params.get("reasoning_effort")
    if isinstance(reasoning, dict):
        if reasoning.get("enabled") is False or reasoning.get("effort") == "none":
            return None
        if isinstance(reasoning.get("max_tokens"), int):
            return {"type": "enabled", "budget_tokens": max(reasoning["max_tokens"], MIN_THINKING_BUDGET)}
        effort = reasoning.get("effort") or effort or "medium"
    if not isinstance(effort, str) or effort not in _EFFORT_SHARE:
        return None
    budget = min(int(max_tokens * _EFFORT_SHARE[effort]), _MAX_EFFORT_BUDGET)
    return {"type": "enabled", "budget_tokens": max(budget, MIN_THINKING_BUDGET)}


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") or {}
    out: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    if isinstance(function.get("strict"), bool):
        out["strict"] = function["strict"]
    for key, value in tool.items():
        if key not in _HUB_TOOL_KEYS:
            out[key] = value  # cache_control, and what an Anthropic client set (defer_loading, ...)
    return out


def _tool_choice(choice: Any, parallel: Any) -> dict[str, Any] | None:
    if choice == "auto":
        out: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    elif parallel is False:
        out = {"type": "auto"}
    else:
        return None
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def encode_messages(
    messages: list[Message], *, mid_conversation_system: bool = False
) -> tuple[str | list[dict[str, Any]] | None, list[dict[str, Any]]]:
    """(system, turns) for the hub's messages. ``mid_conversation_system``: the model takes system
    messages inside ``messages`` where Anthropic's placement rules allow them."""
    in_place = _system_messages_in_place(messages) if mid_conversation_system else frozenset()
    system: list[Any] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        if role in ("system", "developer"):
            if i not in in_place:
                system.append(message.get("content"))
                continue
            blocks = _system_blocks(message.get("content"))
            role = "system"
        elif role == "assistant":
            blocks = _assistant_blocks(i, message)
            role = "assistant"
        elif role == "tool":
            blocks = [_tool_result(i, message)]
            role = "user"
        else:
            blocks = _blocks(i, message.get("content"))
            role = "user"
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)  # Anthropic wants user and assistant turns to alternate
        else:
            turns.append({"role": role, "content": blocks})
    if not turns and system:
        # Only system messages: Anthropic needs a message, and takes the instructions as the user's turn.
        turns.append({"role": "user", "content": _system_blocks_of(system)})
        system = []
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text" and "cache_control" not in content[0]:
            turn["content"] = content[0]["text"]  # the plain form, as most clients write it
        elif not content:
            turn["content"] = ""
    return _system(system), turns


def _system_messages_in_place(messages: list[Message]) -> frozenset[int]:
    """Indexes of the system messages that may stay inside ``messages``: Anthropic takes one right after
    a user turn (a tool result is one) when it is last or an assistant turn follows, never first."""
    kept: set[int] = set()
    previous: Any = None  # the role of the last message that was not a system message
    i = 0
    while i < len(messages):
        if messages[i].get("role") not in ("system", "developer"):
            previous = messages[i].get("role")
            i += 1
            continue
        run_end = i
        while run_end < len(messages) and messages[run_end].get("role") in ("system", "developer"):
            run_end += 1
        following = messages[run_end].get("role") if run_end < len(messages) else None
        if previous in ("user", "tool") and following in (None, "assistant"):
            texts_only = all(_text_only(messages[k].get("content")) for k in range(i, run_end))
            if texts_only:
                kept.update(range(i, run_end))  # consecutive ones merge into one system turn
        i = run_end
    return frozenset(kept)


def _text_only(content: Any) -> bool:
    if isinstance(content, str):
        return bool(content)
    return (
        isinstance(content, list)
        and bool(content)
        and all(isinstance(p, dict) and p.get("type") == "text" for p in content)
    )


def _system_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [
        _text_block(p)
        for p in content or ()
        if isinstance(p, dict) and p.get("type") == "text" and p.get("text")
    ]


def _system_blocks_of(contents: list[Any]) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for content in contents:
        blocks.extend(_system_blocks(content))
    return blocks


def _system(contents: list[Any]) -> str | list[dict[str, Any]] | None:
    if not contents:
        return None
    if all(isinstance(c, str) for c in contents):
        return "\n\n".join(contents)
    return _system_blocks_of(contents)


def _text_block(part: dict[str, Any]) -> dict[str, Any]:
    block = {"type": "text", "text": part.get("text") or part.get("refusal") or ""}
    if part.get("cache_control") is not None:
        block["cache_control"] = part["cache_control"]
    return block


def _blocks(i: int, content: Any) -> list[dict[str, Any]]:
    if not content:
        return []  # Anthropic refuses empty text blocks (OpenAI clients send "" beside tool calls)
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if part.get("tool_reference"):
            blocks.append({"type": "tool_reference", "tool_name": part["tool_reference"]})
            continue
        if kind in ("text", "refusal"):
            if part.get("text") or part.get("refusal"):
                blocks.append(_text_block(part))
            continue
        if kind == "image_url":
            block = _image_block(part)
        elif kind == "file":
            block = _document_block(i, j, part)
        else:
            raise ProviderRejected(
                f"messages[{i}].content[{j}] is a {kind} part, which Anthropic does not take",
                upstream_status=400,
                param=f"messages[{i}].content[{j}]",
            )
        if part.get("cache_control") is not None:
            block["cache_control"] = part["cache_control"]
        blocks.append(block)
    return blocks


def _image_block(part: dict[str, Any]) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url", "") if isinstance(image, dict) else str(image or "")
    if url.startswith("data:"):
        media_type, data = _data_url(url)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _document_block(i: int, j: int, part: dict[str, Any]) -> dict[str, Any]:
    file = part.get("file") or {}
    data_url = file.get("file_data")
    if not isinstance(data_url, str) or not data_url.startswith("data:"):
        raise ProviderRejected(
            f"messages[{i}].content[{j}]: Anthropic takes files only inline as file_data "
            "(data:application/pdf;base64,...)",
            upstream_status=400,
            param=f"messages[{i}].content[{j}].file",
        )
    media_type, data = _data_url(data_url)
    block: dict[str, Any] = {
        "type": "document",
        "source": {"type": "base64", "media_type": media_type, "data": data},
    }
    if isinstance(file.get("filename"), str):
        block["title"] = file["filename"]
    return block


def _data_url(url: str) -> tuple[str, str]:
    """``data:image/png;base64,AAAA`` -> ("image/png", "AAAA")."""
    head, _, data = url.partition(",")
    media_type = head[5:].split(";", 1)[0] or "application/octet-stream"
    return media_type, data


def _assistant_blocks(i: int, message: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for block in message.get("reasoning_blocks") or ():
        # A thinking block without its signature did not come from Claude: Anthropic would refuse it.
        if block.get("type") == "redacted_thinking" or (
            block.get("type") == "thinking" and block.get("signature")
        ):
            blocks.append(block)
    blocks.extend(_blocks(i, message.get("content")))
    for j, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            tool_input = _decode(arguments) if isinstance(arguments, str) else arguments
        except msgspec.DecodeError:
            tool_input = None
        if not isinstance(tool_input, dict):
            raise ProviderRejected(
                f"messages[{i}].tool_calls[{j}].function.arguments must be a JSON object; "
                "Anthropic takes tool inputs only as objects",
                upstream_status=400,
                param=f"messages[{i}].tool_calls[{j}].function.arguments",
            )
        block = {"type": "tool_use", "id": call.get("id"), "name": function.get("name"), "input": tool_input}
        if call.get("cache_control") is not None:
            block["cache_control"] = call["cache_control"]
        blocks.append(block)
    return blocks


def _tool_result(i: int, message: Message) -> dict[str, Any]:
    content = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.get("tool_call_id")}
    if isinstance(content, list):
        block["content"] = _blocks(i, content)
    else:
        block["content"] = content or ""
    if message.get("is_error"):
        block["is_error"] = True
    if message.get("cache_control") is not None:
        block["cache_control"] = message["cache_control"]
    return block
