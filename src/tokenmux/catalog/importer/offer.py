"""An ``Offer``: what a public price table says about one model at one provider, in the catalog's terms.

Readers (``litellm.py``, ``openrouter.py``) turn their format into offers; ``merge.py`` lays them over the
catalog data. Prices here are USD per million tokens, as the catalog writes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Authors as the catalog writes them, and how their names read on pages.
AUTHOR_NAMES = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "google": "Google",
    "mistralai": "Mistral",
    "deepseek": "DeepSeek",
    "x-ai": "xAI",
    "moonshotai": "MoonshotAI",
    "qwen": "Qwen",
    "meta-llama": "Meta",
    "z-ai": "Z.ai",
    "minimax": "MiniMax",
}

# The catalog provider that is a maker's own API -> that maker, as the catalog writes authors.
FIRST_PARTY = {
    "openai": "openai",
    "anthropic": "anthropic",
    "google": "google",
    "mistral": "mistralai",
    "deepseek": "deepseek",
    "xai": "x-ai",
    "moonshot": "moonshotai",
    "dashscope": "qwen",
}

# The tokenizer family of an author's models (routing/tokens.py), for models the catalog did not have.
AUTHOR_TOKENIZERS = {
    "openai": "o200k",
    "anthropic": "claude",
    "google": "gemini",
    "mistralai": "mistral",
    "deepseek": "deepseek",
    "x-ai": "grok",
    "moonshotai": "kimi",
    "qwen": "qwen",
    "meta-llama": "llama3",
    "z-ai": "glm",
    "minimax": "minimax",
}

# Request parameters that sample: a model that refuses them (reasoning models) loses them all.
SAMPLING_PARAMETERS = (
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "seed",
    "logit_bias",
    "logprobs",
    "top_logprobs",
)
TOOL_PARAMETERS = ("tools", "tool_choice", "parallel_tool_calls")

# Words a display name writes in their own case ("gpt-5.4-mini" -> "GPT-5.4 Mini").
_WORDS = {
    "gpt": "GPT",
    "oss": "OSS",
    "glm": "GLM",
    "vl": "VL",
    "deepseek": "DeepSeek",
    "minimax": "MiniMax",
    "qwq": "QwQ",
    "ai": "AI",
    "it": "IT",
}


@dataclass(slots=True)
class Offer:
    """One model at one provider, as a price table states it."""

    provider: str  # the catalog's provider slug
    upstream: str  # the model's name at that provider
    model_id: str  # the catalog id this offer would create ("author/slug")
    # Whether the offer may add a model the catalog lacks: true at the maker's own API (and at a router
    # such as OpenRouter, whose list is the offer); a host's offer only adds an endpoint to a known model.
    creates: bool
    price: dict[str, Any]  # the catalog's price mapping: input, output, cache_read, ..., tiers
    context_length: int | None = None
    max_output: int | None = None
    embedding: bool = False
    dimensions: int | None = None  # an embedding model's vector size
    snapshots: list[str] = field(default_factory=list)  # other names of the same model and price
    input_modalities: list[str] | None = None
    unsupported_parameters: list[str] = field(default_factory=list)
    extra_parameters: list[str] = field(default_factory=list)
    supported_parameters: list[str] | None = None  # the whole list, when the table gives one
    capabilities: list[str] = field(default_factory=list)  # for a generated description: "tool use", ...
    name: str | None = None
    description: str | None = None
    created: str | None = None  # ISO date
    deprecated: bool = False  # retired (or to be) by the date the prices were taken

    @property
    def author(self) -> str:
        return self.model_id.split("/", 1)[0]


def per_million(per_token: Any) -> float | None:
    """A per-token USD price as USD per million tokens, without float noise (2.5e-06 -> 2.5)."""
    if isinstance(per_token, bool):
        return None
    if isinstance(per_token, str):
        try:
            per_token = float(per_token)
        except ValueError:
            return None
    if not isinstance(per_token, int | float) or per_token < 0 or per_token != per_token:
        return None
    value = round(per_token * 1_000_000, 6)
    return int(value) if value == int(value) else value


def display_name(author: str, slug: str) -> str:
    """ "Anthropic: Claude Opus 4.8" for ("anthropic", "claude-opus-4.8")."""
    words: list[str] = []
    for word in slug.split("-"):
        if words and words[-1] == "GPT":
            words[-1] = f"GPT-{_WORDS.get(word, word)}"  # gpt-5.4 -> GPT-5.4
        elif word in _WORDS:
            words.append(_WORDS[word])
        elif re.fullmatch(r"a?\d+(\.\d+)?[bmk]|o\d", word):
            words.append(word.upper() if word[0] != "o" else word)  # 120b -> 120B, a22b -> A22B, o3
        elif re.fullmatch(r"[a-z]\d.*", word) and not word.startswith(("gpt", "glm")):
            words.append(word[0].upper() + word[1:])  # k2.5 -> K2.5, v4 -> V4
        else:
            words.append(word[:1].upper() + word[1:])
    return f"{AUTHOR_NAMES.get(author, author)}: {' '.join(words)}"


def describe(offer: Offer, provider_name: str) -> str:
    """A one-line description made only of what the table states, for a model nobody has described yet."""
    inputs = offer.input_modalities or ["text"]
    kinds = " and ".join(", ".join(inputs).rsplit(", ", 1))
    if offer.embedding:
        text = f"{AUTHOR_NAMES.get(offer.author, offer.author)}'s embedding model {offer.upstream}"
        limit = f" for inputs of up to {_tokens(offer.context_length)} tokens" if offer.context_length else ""
        return f"{text}{limit}, as {provider_name} offers it."
    parts = [f"{kinds} input"]
    if offer.context_length:
        parts.append(f"a {_tokens(offer.context_length)}-token context")
    if offer.max_output:
        parts.append(f"up to {_tokens(offer.max_output)} output tokens")
    text = f"{offer.upstream} as {provider_name} offers it: {', '.join(parts)}"
    if offer.capabilities:
        text += f"; {', '.join(offer.capabilities)}"
    return text + "."


def _tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.3g}M".replace(".0M", "M")
    if n >= 1_000:
        return f"{n / 1_000:.4g}K"
    return str(n)
