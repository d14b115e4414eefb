"""OpenAI Chat Completions wire format <-> internal values.

Validation happens here, where untrusted input enters, and nowhere else. It is one pass over the keys the
client sent and the message parts; every rejection names the parameter and says what would be accepted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from tokenmux.errors import InvalidRequest, TokenmuxError
from tokenmux.json_codec import encode_json
from tokenmux.protocols.json_limits import check_structure
from tokenmux.protocols.message_checks import cache_control, check_message, fail, optional_string
from tokenmux.protocols.openai_chunks import choice_json
from tokenmux.protocols.sse import DONE
from tokenmux.types import ChatRequest, ChatResponse, ProviderPreferences, StreamEvent, Usage

_decoder = msgspec.json.Decoder()
# A good body, shown in the answer to a body that is not one.
OPENAI_EXAMPLE = '{"model": "openai/gpt-4.1-nano", "messages": [{"role": "user", "content": "Hi"}]}'

# Fields a client could use to steer where or how the gateway connects upstream: never accepted.
STEERING_FIELDS = frozenset({"api_key", "api_base", "base_url", "headers", "extra_headers", "api_version"})
# Keys handled by the gateway itself; they never reach a provider as they are.
GATEWAY_FIELDS = frozenset({"model", "messages", "stream", "stream_options", "provider", "models", "route"})


_fail = fail


def _number(lo: float, hi: float) -> Callable[[str, Any], None]:
    def check(name: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
            raise _fail(name, f"{name} must be a number between {lo:g} and {hi:g}, got {v!r}")

    return check


# The largest count a parameter may name: far above any model's, and within what every encoder can write.
MAX_COUNT = 2**31 - 1


def _integer(lo: int, hi: int = MAX_COUNT) -> Callable[[str, Any], None]:
    def check(name: str, v: Any) -> None:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise _fail(name, f"{name} must be an integer between {lo} and {hi}, got {v!r}")

    return check


def _boolean(name: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise _fail(name, f"{name} must be true or false, got {v!r}")


def _string(name: str, v: Any) -> None:
    if not isinstance(v, str):
        raise _fail(name, f"{name} must be a string, got {type(v).__name__}")


def _object(name: str, v: Any) -> None:
    if not isinstance(v, dict):
        raise _fail(name, f"{name} must be an object, got {type(v).__name__}")


def _stop(name: str, v: Any) -> None:
    if v is None or isinstance(v, str):
        return
    if not isinstance(v, list) or len(v) > 4 or not all(isinstance(s, str) for s in v):
        raise _fail(name, "stop must be a string or a list of at most 4 strings")


def _logit_bias(name: str, v: Any) -> None:
    if not isinstance(v, dict):
        raise _fail(name, "logit_bias must be an object mapping token ids to a bias between -100 and 100")
    for token, bias in v.items():
        if not str(token).isdigit():
            raise _fail(name, f"logit_bias keys must be token ids (integers as strings), got {token!r}")
        if isinstance(bias, bool) or not isinstance(bias, int | float) or not -100 <= bias <= 100:
            raise _fail(name, f"logit_bias[{token}] must be a number between -100 and 100, got {bias!r}")


def _response_format(name: str, v: Any) -> None:
    if not isinstance(v, dict) or v.get("type") not in ("text", "json_object", "json_schema"):
        raise _fail(name, "response_format.type must be one of 'text', 'json_object', 'json_schema'")
    if v["type"] == "json_schema":
        js = v.get("json_schema")
        if not isinstance(js, dict) or not isinstance(js.get("name"), str):
            raise _fail(
                "response_format.json_schema",
                "response_format json_schema needs {'json_schema': {'name': ..., 'schema': {...}}}",
            )
        if "schema" in js and not isinstance(js["schema"], dict):
            raise _fail(
                "response_format.json_schema.schema", "json_schema.schema must be a JSON Schema object"
            )
        if js.get("strict") is not None:
            _boolean("response_format.json_schema.strict", js["strict"])


def _tools(name: str, v: Any) -> None:
    if not isinstance(v, list):
        raise _fail(name, "tools must be a list of {'type': 'function', 'function': {'name': ...}}")
    for i, tool in enumerate(v):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise _fail(f"tools[{i}]", f"tools[{i}] must be {{'type': 'function', 'function': {{...}}}}")
        fn = tool.get("function")
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _fail(f"tools[{i}].function.name", f"tools[{i}].function needs a 'name'")
        if "parameters" in fn and not isinstance(fn["parameters"], dict):
            raise _fail(f"tools[{i}].function.parameters", "function parameters must be a JSON Schema object")
        optional_string(f"tools[{i}].function", fn, "description")
        if fn.get("strict") is not None:
            _boolean(f"tools[{i}].function.strict", fn["strict"])
        cache_control(f"tools[{i}]", tool)


def _tool_choice(name: str, v: Any) -> None:
    if v in ("none", "auto", "required"):
        return
    if (
        isinstance(v, dict)
        and isinstance(v.get("function"), dict)
        and isinstance(v["function"].get("name"), str)
    ):
        return
    raise _fail(
        name,
        "tool_choice must be 'none', 'auto', 'required' or {'type': 'function', 'function': {'name': ...}}",
    )


# The parameters we know, with their checks. Anything else the client sends passes through to providers
# that support it (routing drops it, and lists it, for the ones that do not).
PARAM_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "max_tokens": _integer(1),
    "max_completion_tokens": _integer(1),
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "top_k": _integer(0),
    "min_p": _number(0, 1),
    "top_a": _number(0, 1),
    "repetition_penalty": _number(0, 2),
    "frequency_penalty": _number(-2, 2),
    "presence_penalty": _number(-2, 2),
    "seed": _integer(-(2**63), 2**63 - 1),
    "n": _integer(1, 128),
    "logit_bias": _logit_bias,
    "logprobs": _boolean,
    "top_logprobs": _integer(0, 20),
    "response_format": _response_format,
    "stop": _stop,
    "tools": _tools,
    "tool_choice": _tool_choice,
    "parallel_tool_calls": _boolean,
    "user": _string,
    "safety_identifier": _string,
    "prompt_cache_key": _string,
    "prompt_cache_retention": _string,
    "reasoning_effort": _string,
    "metadata": _object,
    "reasoning": _object,
}


def decode_chat_request(body: bytes | bytearray, *, shape_checked: bool = False) -> ChatRequest:
    """Parse and validate a Chat Completions request body (``shape_checked``: its JSON structure was
    bounded as it arrived, ``server/request_body.py``)."""
    if not shape_checked:
        check_structure(body, OPENAI_EXAMPLE)
    try:
        data = _decoder.decode(body)
    except msgspec.DecodeError as e:
        raise InvalidRequest(
            f"the request body is not valid JSON ({e}); send a JSON object such as {OPENAI_EXAMPLE}",
            code="invalid_json",
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object", code="invalid_json")
    model = data.get("model")
    models = data.get("models")
    fallback: tuple[str, ...] = ()
    if models is not None:
        if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
            raise _fail("models", "models must be a list of model ids, e.g. ['openai/gpt-4.1-nano']")
        fallback = tuple(models)
    if model is None and fallback:
        model, fallback = fallback[0], fallback[1:]
    if not isinstance(model, str) or not model:
        raise _fail(
            "model",
            "model is required: a catalog model id such as 'openai/gpt-4.1-nano' (see GET /api/v1/models)",
        )
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _fail("messages", "messages must be a non-empty list of {'role': ..., 'content': ...}")
    for i, message in enumerate(messages):
        check_message(i, message)

    params: dict[str, Any] = {}
    for key, value in data.items():
        if key in GATEWAY_FIELDS:
            continue
        if key in STEERING_FIELDS:
            raise _fail(key, f"{key} cannot be set by a request; providers are configured on the gateway")
        if value is None:
            continue  # explicit null means "not given", as in the OpenAI API
        check = PARAM_CHECKS.get(key)
        if check is not None:
            check(key, value)
        params[key] = value

    stream = data.get("stream", False)
    if stream is None:
        stream = False
    _boolean("stream", stream)
    include_usage = False
    opts = data.get("stream_options")
    if opts is not None:
        _object("stream_options", opts)
        include_usage = opts.get("include_usage") or False
        _boolean("stream_options.include_usage", include_usage)
    max_out = params.get("max_completion_tokens", params.get("max_tokens"))
    return ChatRequest(
        model=model,
        messages=messages,
        params=params,
        stream=stream,
        include_usage=include_usage,
        fallback_models=fallback,
        provider=_provider_preferences(data.get("provider")),
        max_output_tokens=max_out,
        max_output_param="max_tokens" if "max_completion_tokens" not in params else "max_completion_tokens",
        body_bytes=len(body),
        inbound="openai",
    )


def _provider_preferences(raw: Any) -> ProviderPreferences:
    if raw is None:
        return ProviderPreferences()
    if not isinstance(raw, dict):
        raise _fail(
            "provider", "provider must be an object such as {'order': ['openai'], 'allow_fallbacks': true}"
        )
    prefs = ProviderPreferences()

    def slugs(name: str) -> tuple[str, ...]:
        v = raw[name]
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise _fail(
                f"provider.{name}", f"provider.{name} must be a list of provider slugs, e.g. ['openai']"
            )
        return tuple(v)

    for key, value in raw.items():
        if value is None:
            continue
        if key == "order":
            prefs.order = slugs(key)
        elif key == "only":
            prefs.only = frozenset(slugs(key))
        elif key == "ignore":
            prefs.ignore = frozenset(slugs(key))
        elif key in ("allow_fallbacks", "require_parameters", "zdr"):
            _boolean(f"provider.{key}", value)
            setattr(prefs, key, value)
        elif key == "data_collection":
            if value not in ("allow", "deny"):
                raise _fail("provider.data_collection", "provider.data_collection must be 'allow' or 'deny'")
            prefs.data_collection = value
        elif key == "sort":
            if value not in ("price", "throughput", "latency"):
                raise _fail("provider.sort", "provider.sort must be 'price', 'throughput' or 'latency'")
            prefs.sort = value
        elif key == "max_price":
            if not isinstance(value, dict):
                raise _fail(
                    "provider.max_price", "provider.max_price must be {'prompt': USD/M, 'completion': USD/M}"
                )
            for part in ("prompt", "completion"):
                if part in value and value[part] is not None:
                    _number(0, 1e9)(f"provider.max_price.{part}", value[part])
                    setattr(prefs, f"max_price_{part}", float(value[part]))
        elif key in ("quantizations", "experimental", "enforce_distillable_text"):
            continue  # accepted for compatibility with OpenRouter clients; not used for routing
        else:
            raise _fail(
                f"provider.{key}",
                f"unknown provider preference {key!r}; known: order, only, ignore, allow_fallbacks, "
                "require_parameters, data_collection, zdr, sort, max_price",
            )
    return prefs


# --- responses ----------------------------------------------------------------------------------


def usage_json(usage: Usage, cost: float) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_5m_tokens + usage.cache_write_1h_tokens,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "cost": cost,
    }


def encode_response(
    response: ChatResponse, *, generation_id: str, model: str, provider: str, usage: Usage, cost: float
) -> bytes:
    body: dict[str, Any] = {
        "id": generation_id,
        "object": "chat.completion",
        "created": response.created,
        "model": model,
        "provider": provider,
        "choices": response.choices,
        "usage": usage_json(usage, cost),
    }
    if response.system_fingerprint:
        body["system_fingerprint"] = response.system_fingerprint
    return encode_json(body)


class ChunkEncoder:
    """Encodes a stream as SSE chunk frames; the parts every chunk shares are encoded once per stream."""

    __slots__ = ("_between", "_include_usage", "_prefix")

    def __init__(
        self, *, generation_id: str, created: int, model: str, provider: str, include_usage: bool
    ) -> None:
        head = encode_json(
            {
                "id": generation_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "provider": provider,
            }
        )
        self._prefix = b"data: " + head[:-1] + b","  # 'data: {"id":...,"provider":"x",'
        self._between = b"}\n\n" + self._prefix + b'"choices":'  # from one choices array to the next
        self._include_usage = include_usage

    def event(self, ev: StreamEvent) -> bytes:
        return self._prefix + b'"choices":[' + encode_json(choice_json(ev)) + b"]}\n\n"

    def chunks(self, arrays: list[bytes | msgspec.Raw]) -> bytes:
        """One frame per upstream chunk, carrying its choices (a JSON array) as they are: the pass-through
        that lets an OpenAI-format stream reach the client without being rebuilt (``openai_chunks``).
        Joined in one call, however many chunks arrived together."""
        if not arrays:
            return b""
        between = self._between
        return between[3:] + between.join(arrays) + b"}\n\n"

    def finish(self, usage: Usage, cost: float, finish_reason: str | None) -> bytes:
        if not self._include_usage:
            return DONE
        return (
            self._prefix + b'"choices":[],"usage":' + encode_json(usage_json(usage, cost)) + b"}\n\n" + DONE
        )

    def error(self, err: TokenmuxError) -> bytes:
        """The end of a stream that broke after its first byte: an error chunk with finish_reason "error".

        The official SDKs raise an APIError when a chunk carries ``error``, so the client learns of it."""
        error = {"code": err.status, "message": err.message, "type": err.type, "metadata": err.metadata}
        return (
            self._prefix
            + b'"error":'
            + encode_json(error)
            + b',"choices":[{"index":0,"delta":{"content":""},"finish_reason":"error"}]}\n\n'
            + DONE
        )


def encode_error(err: TokenmuxError) -> bytes:
    return encode_json(
        {
            "error": {
                "message": err.message,
                "type": err.type,
                "code": err.code,
                "param": err.param,
                "metadata": err.metadata,
            }
        }
    )
