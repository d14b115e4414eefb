"""OpenAI's Responses API as an upstream: a request that came as Responses goes to an ``openai`` or
``azure`` endpoint as Responses, with nothing lost.

The client's own body goes up (``ResponsesRequest.body``) with the endpoint's model, ``store: false`` (the
gateway keeps no state, so a reasoning model's reasoning must travel as ``encrypted_content``, which
``include`` asks for) and without what routing dropped for the endpoint. The answer comes back twice over: in the hub shape,
which the attempt loop reads (content, tool calls, finish reason, usage), and as OpenAI sent it, which the
Responses encoder gives the client verbatim (``responses_answer``): the output items of a whole answer
under the choice's ``NATIVE_OUTPUT`` key, each stream event under the delta's ``NATIVE_EVENT`` key.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from tokenmux.catalog.model import Endpoint
from tokenmux.errors import ProviderMalformed, ProviderRejected
from tokenmux.protocols.openai_responses import ResponsesRequest
from tokenmux.protocols.responses_answer import NATIVE_EVENT, NATIVE_OUTPUT
from tokenmux.protocols.sse import SSEEvent
from tokenmux.providers.base import CallContext
from tokenmux.providers.common import fail_stream, json_object, snippet
from tokenmux.types import ChatResponse, StreamEvent, Usage

_decode = msgspec.json.Decoder().decode
_ENCRYPTED_REASONING = "reasoning.encrypted_content"
_LOGPROBS = "message.output_text.logprobs"
# Request fields the gateway answers for itself; they never go upstream.
_GATEWAY_FIELDS = ("provider", "models", "stream", "store")
_CALLS = frozenset({"function_call", "custom_tool_call"})
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def native_request(request: Any) -> ResponsesRequest | None:
    """The request as a Responses request whose body can go up as it came, else None."""
    return request if isinstance(request, ResponsesRequest) and request.body else None


def request_body(request: ResponsesRequest, ctx: CallContext, model: str, stream: bool) -> dict[str, Any]:
    body = {k: v for k, v in request.body.items() if k not in _GATEWAY_FIELDS and v is not None}
    for name in request.params.keys() - ctx.params.keys():
        _leave_out(body, name)
    body["model"] = model
    body["stream"] = stream
    body["store"] = False
    include = [v for v in body.get("include") or () if isinstance(v, str)]
    # A reasoning model's reasoning must travel with the conversation when nothing is stored; other models
    # refuse to be asked for it.
    if "reasoning_effort" in ctx.endpoint.supported_parameters and _ENCRYPTED_REASONING not in include:
        include.append(_ENCRYPTED_REASONING)
    if include:
        body["include"] = include
    if not stream:
        body.pop("stream_options", None)
    return body


def _leave_out(body: dict[str, Any], hub_name: str) -> None:
    """Take out of ``body`` what stands for a hub parameter routing dropped for this endpoint."""
    if hub_name == "max_completion_tokens":
        body.pop("max_output_tokens", None)
    elif hub_name == "reasoning_effort":
        reasoning = body.get("reasoning")
        if isinstance(reasoning, dict):
            body["reasoning"] = {k: v for k, v in reasoning.items() if k != "effort"}
    elif hub_name in ("response_format", "verbosity"):
        text = body.get("text")
        if isinstance(text, dict):
            body["text"] = {
                k: v
                for k, v in text.items()
                if k != ("format" if hub_name == "response_format" else hub_name)
            }
    elif hub_name == "logprobs":
        body["include"] = [v for v in body.get("include") or () if v != _LOGPROBS]
        body.pop("top_logprobs", None)
    elif hub_name == "user":
        body.pop("user", None)
        body.pop("safety_identifier", None)
    elif hub_name in body:
        body.pop(hub_name)
    else:
        # A built-in tool goes into params under its type (see protocols.openai_responses).
        tools = body.get("tools")
        if isinstance(tools, list):
            body["tools"] = [t for t in tools if not (isinstance(t, dict) and t.get("type") == hub_name)]


# --- answers ------------------------------------------------------------------------------------------


def parse_usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    inputs = raw.get("input_tokens_details")
    outputs = raw.get("output_tokens_details")
    return Usage(
        prompt_tokens=_int(raw.get("input_tokens")),
        completion_tokens=_int(raw.get("output_tokens")),
        cached_tokens=_int(inputs.get("cached_tokens")) if isinstance(inputs, dict) else 0,
        reasoning_tokens=_int(outputs.get("reasoning_tokens")) if isinstance(outputs, dict) else 0,
    )


def chat_response(body: bytes, status: int, endpoint: Endpoint) -> ChatResponse:
    """A whole Response as a ChatResponse whose one choice also carries the output items as they came."""
    data = json_object(body, status)
    output = data.get("output")
    if not isinstance(output, list) or not all(isinstance(item, dict) for item in output):
        raise ProviderMalformed(f"the provider answered {status} without output items: {snippet(body)}")
    choice = {
        "index": 0,
        "message": hub_message(output),
        "finish_reason": finish_reason(data),
        NATIVE_OUTPUT: output,
    }
    return ChatResponse(
        id=str(data.get("id") or ""),
        created=_int(data.get("created_at")) or int(time.time()),
        model=str(data.get("model") or endpoint.upstream_model),
        choices=[choice],
        usage=parse_usage(data.get("usage")),
    )


def hub_message(output: list[dict[str, Any]]) -> dict[str, Any]:
    """What the attempt loop and the request log see of the output: text, calls, reasoning summaries."""
    text: list[str] = []
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in output:
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    text.append(part["text"])
        elif kind in _CALLS:
            arguments = item.get("arguments", item.get("input", ""))
            calls.append(
                {
                    "id": item.get("call_id"),
                    "type": "function",
                    "function": {"name": item.get("name"), "arguments": arguments},
                }
            )
        elif kind == "reasoning":
            reasoning += [
                s["text"]
                for s in item.get("summary") or ()
                if isinstance(s, dict) and isinstance(s.get("text"), str)
            ]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if calls:
        message["tool_calls"] = calls
    if reasoning:
        message["reasoning"] = "".join(reasoning)
    return message


def finish_reason(response: dict[str, Any]) -> str:
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return _INCOMPLETE.get(str(reason), "length")
    output = response.get("output")
    calls = isinstance(output, list) and any(isinstance(i, dict) and i.get("type") in _CALLS for i in output)
    return "tool_calls" if calls else "stop"


class EventReader:
    """One Responses stream's events as hub stream events, each carrying the event as it came."""

    __slots__ = ("_calls", "_rejection")

    def __init__(self, rejection: Any) -> None:
        self._calls: dict[int, int] = {}  # output index of a call -> its hub tool call index
        self._rejection = rejection  # error object -> ProviderRejected, the adapter's own reading

    def read(self, sse: SSEEvent, started: bool) -> list[StreamEvent]:
        try:
            event = _decode(sse.data)
        except msgspec.DecodeError:
            fail_stream(
                ProviderMalformed(f"the provider sent a stream event that is not JSON: {sse.data[:200]!r}"),
                started,
            )
        if not isinstance(event, dict):
            fail_stream(ProviderMalformed("the provider sent a stream event that is not an object"), started)
        kind = event.get("type")
        if kind == "error":
            error = event.get("error") if isinstance(event.get("error"), dict) else event
            fail_stream(self._rejection(error), started)
        if kind == "response.failed":
            response = event.get("response")
            error = response.get("error") if isinstance(response, dict) else None
            failure: ProviderRejected = self._rejection(error or {"message": "the response failed"})
            fail_stream(failure, started)
        delta: dict[str, Any] = {NATIVE_EVENT: event}
        if kind == "response.output_text.delta":
            delta["content"] = event.get("delta") or ""
        elif kind == "response.refusal.delta":
            delta["refusal"] = event.get("delta") or ""
        elif kind == "response.reasoning_summary_text.delta":
            delta["reasoning"] = event.get("delta") or ""
        elif kind == "response.output_item.added":
            item = event.get("item")
            if isinstance(item, dict) and item.get("type") in _CALLS:
                index = self._calls[_int(event.get("output_index"))] = len(self._calls)
                function = {"name": item.get("name"), "arguments": ""}
                delta["tool_calls"] = [
                    {"index": index, "id": item.get("call_id"), "type": "function", "function": function}
                ]
        elif kind in ("response.function_call_arguments.delta", "response.custom_tool_call_input.delta"):
            index = self._calls.get(_int(event.get("output_index")), 0)
            delta["tool_calls"] = [{"index": index, "function": {"arguments": event.get("delta") or ""}}]
        elif kind in ("response.completed", "response.incomplete"):
            response = event.get("response")
            if not isinstance(response, dict):
                fail_stream(ProviderMalformed(f"the provider sent {kind} without its response"), started)
            return [
                StreamEvent(delta=delta, finish_reason=finish_reason(response)),
                StreamEvent(usage=parse_usage(response.get("usage"))),
            ]
        return [StreamEvent(delta=delta)]


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0
