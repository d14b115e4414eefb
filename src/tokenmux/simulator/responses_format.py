"""The OpenAI Responses API as a simulated provider speaks it (OpenAI's ``/v1/responses`` and Azure
OpenAI's ``/openai/v1/responses``).

An answer is a Response whose output lists a reasoning item (summary and encrypted content; when the
request asked for a summary, or the profile has hidden reasoning tokens), then function calls (custom tool
calls for free-form tools, a namespace on a namespace's functions) or one message. A stream is the typed
event sequence with sequence numbers; it ends with ``response.completed`` and the connection closing.
"""

from __future__ import annotations

from itertools import count
from typing import Any

import msgspec

from tokenmux.asgi import Scope
from tokenmux.simulator.answer import Answer, AnswerSpec, PlannedChoice, PlannedToolCall
from tokenmux.simulator.openai_format import OpenAIFormat
from tokenmux.simulator.responses_request import encrypted_content, parse_responses_request, split_tool_name
from tokenmux.simulator.wire import ReplyContext, StreamFrames

_encode = msgspec.json.encode
_decode = msgspec.json.decode


class ResponsesFormat(OpenAIFormat):
    """Access checks and errors are Chat Completions' (OpenAI's or Azure's); requests and answers differ."""

    def __init__(self, *, azure: bool = False) -> None:
        super().__init__(azure=azure)
        self.name = "azure-responses" if azure else "openai-responses"

    def check_access(self, scope: Scope) -> Any:
        if self.azure:
            # Azure's v1 API takes no api-version; its key is still the api-key header.
            for key, value in scope["headers"]:
                if key == b"api-key" and value.strip():
                    return None
        return super().check_access(scope)

    def parse(self, body: Any, path_model: str | None) -> AnswerSpec:
        return parse_responses_request(body, path_model)

    def completion(self, answer: Answer, ctx: ReplyContext) -> bytes:
        choice = answer.choices[0]
        output = _output(choice, answer, _ids(ctx))
        return _encode(_response(ctx, _status(choice), output, _usage(answer)))

    def stream(self, answer: Answer, ctx: ReplyContext, spec: AnswerSpec) -> StreamFrames:
        choice = answer.choices[0]
        ids = _ids(ctx)
        seq = count()

        def event(kind: str, **fields: Any) -> bytes:
            payload = {"type": kind, "sequence_number": next(seq), **fields}
            return b"event: " + kind.encode() + b"\ndata: " + _encode(payload) + b"\n\n"

        frames = StreamFrames()
        opening = _response(ctx, "in_progress", [], None)
        frames.head += [
            event("response.created", response=opening),
            event("response.in_progress", response=opening),
        ]
        output: list[dict[str, Any]] = []
        # Events that close one item and open the next ride with the next content frame, so that every
        # frame counted as a chunk (drop_after_chunks) carries content.
        carry = b""
        if choice.reasoning or answer.reasoning_tokens:
            item = _reasoning_item(ids, choice, answer)
            at = {"item_id": item["id"], "output_index": 0}
            added = event("response.output_item.added", output_index=0, item={**item, "summary": []})
            if choice.reasoning:
                part = {"type": "summary_text", "text": ""}
                frames.head += [
                    added,
                    event("response.reasoning_summary_part.added", **at, summary_index=0, part=part),
                ]
                frames.steps += [
                    [event("response.reasoning_summary_text.delta", **at, summary_index=0, delta=t)]
                    for t in choice.reasoning
                ]
                text = "".join(choice.reasoning)
                carry = event(
                    "response.reasoning_summary_text.done", **at, summary_index=0, text=text
                ) + event(
                    "response.reasoning_summary_part.done",
                    **at,
                    summary_index=0,
                    part={"type": "summary_text", "text": text},
                )
            else:
                frames.head.append(added)
            carry += event("response.output_item.done", output_index=0, item=item)
            output.append(item)
        for call in choice.tool_calls:
            index = len(output)
            item = _call_item(ids, call)
            at = {"item_id": item["id"], "output_index": index}
            custom = item["type"] == "custom_tool_call"
            started = {**item, "input": ""} if custom else {**item, "arguments": "", "status": "in_progress"}
            frames.steps.append(
                [carry + event("response.output_item.added", output_index=index, item=started)]
            )
            if custom:
                frames.steps.append(
                    [event("response.custom_tool_call_input.delta", **at, delta=item["input"])]
                )
                carry = event("response.custom_tool_call_input.done", **at, input=item["input"])
            else:
                frames.steps += [
                    [event("response.function_call_arguments.delta", **at, delta=p)] for p in call.pieces
                ]
                carry = event(
                    "response.function_call_arguments.done", **at, name=item["name"], arguments=call.arguments
                )
            carry += event("response.output_item.done", output_index=index, item=item)
            output.append(item)
        if not choice.tool_calls:
            index = len(output)
            item = _message_item(ids, choice, _status(choice))
            at = {"item_id": item["id"], "output_index": index, "content_index": 0}
            started = {**item, "status": "in_progress", "content": []}
            opening_events = event("response.output_item.added", output_index=index, item=started) + event(
                "response.content_part.added",
                **at,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
            deltas = [
                event("response.output_text.delta", **at, delta=token, logprobs=_logprobs(choice, k, k + 1))
                for k, token in enumerate(choice.tokens)
            ]
            if deltas:
                deltas[0] = carry + opening_events + deltas[0]
                frames.steps += [[d] for d in deltas]
                carry = b""
            else:
                carry += opening_events
            part = item["content"][0]
            carry += (
                event("response.output_text.done", **at, text=part["text"], logprobs=part["logprobs"])
                + event("response.content_part.done", **at, part=part)
                + event("response.output_item.done", output_index=index, item=item)
            )
            output.append(item)
        status = _status(choice)
        final = _response(ctx, status, output, _usage(answer))
        frames.tail += [
            *([carry] if carry else []),
            event("response.completed" if status == "completed" else "response.incomplete", response=final),
        ]
        return frames

    def malformed_body(self) -> bytes:
        return b'{"id": "resp_broken", "object": "response", "output": [{"type": "message", "content": '

    def malformed_frame(self) -> bytes:
        return (
            b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "delta": \n\n'
        )


def _ids(ctx: ReplyContext) -> str:
    return ctx.response_id.removeprefix("chatcmpl-")


def _status(choice: PlannedChoice) -> str:
    return "incomplete" if choice.finish_reason in ("length", "content_filter") else "completed"


def _response(
    ctx: ReplyContext, status: str, output: list[dict[str, Any]], usage: dict[str, Any] | None
) -> dict[str, Any]:
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    return {
        "id": "resp_" + _ids(ctx),
        "object": "response",
        "created_at": ctx.created,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "model": ctx.model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "store": False,
        "usage": usage,
    }


def _output(choice: PlannedChoice, answer: Answer, ids: str) -> list[dict[str, Any]]:
    output = []
    if choice.reasoning or answer.reasoning_tokens:
        output.append(_reasoning_item(ids, choice, answer))
    if choice.tool_calls:
        output += [_call_item(ids, call) for call in choice.tool_calls]
    else:
        output.append(_message_item(ids, choice, _status(choice)))
    return output


def _reasoning_item(ids: str, choice: PlannedChoice, answer: Answer) -> dict[str, Any]:
    text = "".join(choice.reasoning)
    return {
        "id": f"rs_{ids}",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
        "encrypted_content": encrypted_content(text or str(answer.reasoning_tokens)),
    }


def _call_item(ids: str, call: PlannedToolCall) -> dict[str, Any]:
    name, namespace, custom = split_tool_name(call.name)
    if custom:
        value = _decode(call.arguments)
        return {
            "id": f"ctc_{ids}_{call.id}",
            "type": "custom_tool_call",
            "call_id": call.id,
            "name": name,
            "input": str(value.get("input", "")) if isinstance(value, dict) else "",
        }
    item: dict[str, Any] = {
        "id": f"fc_{ids}_{call.id}",
        "type": "function_call",
        "status": "completed",
        "call_id": call.id,
        "name": name,
        "arguments": call.arguments,
    }
    if namespace:
        item["namespace"] = namespace
    return item


def _message_item(ids: str, choice: PlannedChoice, status: str) -> dict[str, Any]:
    part = {
        "type": "output_text",
        "text": "".join(choice.tokens),
        "annotations": [],
        "logprobs": _logprobs(choice, 0, None),
    }
    return {"id": f"msg_{ids}", "type": "message", "status": status, "role": "assistant", "content": [part]}


def _logprobs(choice: PlannedChoice, start: int, end: int | None) -> list[dict[str, Any]]:
    if choice.logprobs is None:
        return []
    return [
        {
            "token": token,
            "logprob": logprob,
            "bytes": list(token.encode()),
            "top_logprobs": [
                {"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alternatives
            ],
        }
        for token, logprob, alternatives in choice.logprobs[start:end]
    ]


def _usage(answer: Answer) -> dict[str, Any]:
    return {
        "input_tokens": answer.prompt_tokens,
        "input_tokens_details": {"cached_tokens": answer.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": answer.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": answer.reasoning_tokens},
        "total_tokens": answer.total_tokens,
    }
