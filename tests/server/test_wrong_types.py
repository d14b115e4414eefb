"""Property: a value of the wrong JSON type in any field of either request format (OpenAI Chat Completions,
Anthropic Messages), or a field left out, gets a 4xx in the route's documented error shape and never a 500.
A 400 of the gateway's own names the field.

Each example takes a complete, valid request (every field the gateway reads, each message and block kind),
changes one field (or two) to a value of another JSON type, or removes it, and sends it to a real gateway in
front of the simulator, routed to one provider kind, so that every adapter's encoder sees what the decoder
let through.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway_support import make_key, sim_config
from tokenmux.server.build import build_gateway
from tokenmux.server.runner import BackgroundServer

Path_ = tuple[str | int, ...]

TOOL_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PDF = "JVBERi0xLjQK"
PNG = "iVBORw0KGgo="

OPENAI_BASE: dict[str, Any] = {
    "model": "openai/gpt-4.1-nano",
    "messages": [
        {"role": "system", "content": "Be brief.", "name": "rules"},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {
                    "type": "file",
                    "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                }
            ],
            "reasoning_blocks": [{"type": "thinking", "thinking": "Look it up.", "signature": "c2ln"}],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        {"role": "assistant", "content": "It is sunny."},
        {"role": "user", "content": "Thanks"},
    ],
    "max_tokens": 16,
    "max_completion_tokens": 16,
    "temperature": 0.5,
    "top_p": 0.9,
    "frequency_penalty": 0.1,
    "presence_penalty": 0.1,
    "seed": 7,
    "n": 1,
    "logit_bias": {"50256": -1},
    "logprobs": True,
    "top_logprobs": 1,
    "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": TOOL_SCHEMA}},
    "stop": ["\n\n"],
    "tools": [
        {
            "type": "function",
            "function": {"name": "weather", "description": "Weather now", "parameters": TOOL_SCHEMA},
        }
    ],
    "tool_choice": "auto",
    "parallel_tool_calls": True,
    "user": "u-1",
    "reasoning_effort": "low",
    "metadata": {"team": "a"},
    "stream": False,
    "stream_options": {"include_usage": True},
    "models": ["openai/gpt-4.1-nano"],
    "provider": {
        "order": ["openai"],
        "only": ["openai"],
        "ignore": [],
        "allow_fallbacks": True,
        "require_parameters": False,
        "data_collection": "allow",
        "zdr": False,
        "sort": "price",
        "max_price": {"prompt": 100, "completion": 100},
    },
}

ANTHROPIC_BASE: dict[str, Any] = {
    "model": "anthropic/claude-haiku-4.5",
    "max_tokens": 16,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
                {
                    "type": "document",
                    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
                    "title": "a.pdf",
                },
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "notes"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "Look it up.", "signature": "c2ln"},
                {"type": "redacted_thinking", "data": "cmVk"},
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "Sunny"}],
                    "is_error": False,
                },
                {"type": "text", "text": "Thanks"},
            ],
        },
    ],
    "stop_sequences": ["\n\n"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 5,
    "tools": [{"name": "weather", "description": "Weather now", "input_schema": TOOL_SCHEMA}],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": False},
    "metadata": {"user_id": "u-1"},
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "stream": False,
    "models": ["anthropic/claude-haiku-4.5"],
    "provider": {"order": ["anthropic"], "only": ["anthropic"], "sort": "price"},
}

# Where a value may legitimately be of more than one JSON type (regular expressions over rendered paths).
UNION_TYPES = {
    r"messages\[\d+\]\.content": {"string", "array", "null"},
    r"stop": {"string", "array"},
    r"tool_choice": {"string", "object"},
    r"system": {"string", "array"},
    r"messages\[\d+\]\.content\[\d+\]\.content": {"string", "array"},
    r"(max_tokens|max_completion_tokens|top_k|seed|n|top_logprobs)": {"number"},
    r"(temperature|top_p|frequency_penalty|presence_penalty|logit_bias\.\d+|provider\.max_price\.\w+)": {
        "number"
    },
}
# Free-form JSON: what is inside is the client's own (schemas, tool input, OpenAI's metadata values).
OPAQUE = {
    "openai": re.compile(r"(.*\.(parameters|schema)|metadata)\."),
    "anthropic": re.compile(r".*\.(schema|input|input_schema)\."),
}


def render(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def paths(value: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield (*prefix, key)
            yield from paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield (*prefix, i)
            yield from paths(inner, (*prefix, i))


def mutable_paths(base: dict[str, Any], protocol: str) -> list[Path_]:
    return [p for p in paths(base) if not OPAQUE[protocol].match(render(p) + ".")]


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4))
VALUES = {
    "null": st.none(),
    "bool": st.booleans(),
    "number": st.one_of(st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False)),
    "string": st.text(max_size=8),
    "array": st.one_of(st.lists(scalars, max_size=3), st.just([[]]), st.just([{}]), st.just([{"type": []}])),
    "object": st.one_of(
        st.dictionaries(st.text(max_size=4), scalars, max_size=3),
        st.just({"type": {}}),
        st.just({"type": "text", "text": []}),
    ),
}


def accepted_types(path: Path_, original: Any) -> set[str]:
    rendered = render(path)
    for pattern, kinds in UNION_TYPES.items():
        if re.fullmatch(pattern, rendered):
            return kinds
    return {json_type(original)}


def resolve(request: Any, path: Path_) -> tuple[bool, Any]:
    value = request
    for part in path:
        in_dict = isinstance(value, dict) and part in value
        in_list = isinstance(value, list) and isinstance(part, int) and part < len(value)
        if not (in_dict or in_list):
            return False, None
        value = value[part]
    return True, value


@st.composite
def mutations(draw: Any, base: dict[str, Any], protocol: str) -> tuple[dict[str, Any], list[Path_], bool]:
    """The base request with one or two fields given a value of another JSON type, or removed; and
    whether a value of a wrong type is in what is sent (a removal may leave a request that is fine)."""
    request = copy.deepcopy(base)
    changed: list[Path_] = []
    retyped: list[Path_] = []
    candidates = mutable_paths(base, protocol)
    for _ in range(draw(st.integers(1, 2))):
        path = draw(st.sampled_from(candidates))
        found, original = resolve(request, path)
        if not found:
            continue  # an earlier change removed or replaced this path
        found, parent = resolve(request, path[:-1])
        if draw(st.integers(0, 5)) == 0 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            kinds = sorted(set(VALUES) - accepted_types(path, original) - {"null"})
            parent[path[-1]] = draw(VALUES[draw(st.sampled_from(kinds))])
            retyped.append(path)
        changed.append(path)
    wrong = False
    for path in retyped:
        found, value = resolve(request, path)
        _, original = resolve(base, path)
        wrong = wrong or (found and json_type(value) not in accepted_types(path, original))
    return request, changed, wrong


ROUTES = {"openai": "/api/v1/chat/completions", "anthropic": "/api/anthropic/v1/messages"}
# model -> the provider the example is routed to (one per provider kind)
TARGETS = {
    "openai": "openai/gpt-4.1-nano",
    "azure": "openai/gpt-4.1-nano",
    "groq": "openai/gpt-oss-20b",
    "anthropic": "anthropic/claude-haiku-4.5",
    "google": "google/gemini-2.5-flash",
}


@pytest.fixture(scope="module")
def served(simulator: BackgroundServer, tmp_path_factory: Any) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('wrong-types')) / 'gw.db'}"
    key = make_key(url)
    app = build_gateway(sim_config(simulator.url), database_url=url, env={})
    with BackgroundServer(app, graceful_timeout_s=2) as server:
        yield server.url, key


def targeted(base: dict[str, Any], slug: str) -> dict[str, Any]:
    request = copy.deepcopy(base)
    if slug == "anthropic":  # Claude takes no audio
        for message in request["messages"]:
            if isinstance(message.get("content"), list):
                message["content"] = [p for p in message["content"] if p.get("type") != "input_audio"]
    request["model"] = TARGETS[slug]
    request["models"] = [TARGETS[slug]]
    request["provider"]["order"] = [slug]
    request["provider"]["only"] = [slug]
    return request


def send(served: tuple[str, str], protocol: str, body: dict[str, Any]) -> httpx.Response:
    url, key = served
    headers = {"Authorization": f"Bearer {key}"}
    if protocol == "anthropic":
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return httpx.post(f"{url}{ROUTES[protocol]}", json=body, headers=headers, timeout=20)


def check_error_shape(protocol: str, r: httpx.Response) -> str:
    """The error message, after checking the route's documented shape."""
    body = r.json()
    if protocol == "openai":
        assert set(body) == {"error"}, body
        error = body["error"]
        assert {"message", "type", "code", "param", "metadata"} <= set(error), body
        assert isinstance(error["type"], str) and isinstance(error["message"], str)
        return f"{error['message']} (param {error['param']})"
    assert body["type"] == "error" and set(body["error"]) >= {"type", "message"}, body
    assert isinstance(body["error"]["message"], str)
    return str(body["error"]["message"])


@pytest.mark.parametrize("slug", sorted(TARGETS))
@pytest.mark.parametrize("protocol", sorted(ROUTES))
def test_the_base_requests_are_served(served: tuple[str, str], protocol: str, slug: str) -> None:
    """Each mutation is of a request that works: the base must be served as it is."""
    base = OPENAI_BASE if protocol == "openai" else ANTHROPIC_BASE
    r = send(served, protocol, targeted(base, slug))
    assert r.status_code == 200, r.text[:500]


@pytest.mark.parametrize("slug", sorted(TARGETS))
@pytest.mark.parametrize("protocol", sorted(ROUTES))
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
@given(data=st.data())
def test_wrong_types_get_a_4xx_in_the_routes_shape(
    served: tuple[str, str], protocol: str, slug: str, data: Any
) -> None:
    base = targeted(OPENAI_BASE if protocol == "openai" else ANTHROPIC_BASE, slug)
    request, changed, retyped = data.draw(mutations(base, protocol))
    r = send(served, protocol, request)
    where = [render(p) for p in changed]
    assert r.status_code < 500, (where, r.status_code, r.text[:800])
    if r.status_code == 200:
        assert not retyped, (where, "a value of the wrong type was accepted")
        return
    message = check_error_shape(protocol, r)
    if retyped:
        # The gateway's own 400, not the provider's refusal passed on, naming the field or what holds it.
        assert r.status_code == 400, (where, r.status_code, message)
        assert "rejected the request" not in message, (where, message)
        named = [render(p[:n]) for p in changed for n in range(len(p), 0, -1)]
        assert any(name in message for name in named), (named, message)
