"""How large an embeddings request's inputs are, in a model's tokens, as routing and limits need it.

An embedding endpoint takes inputs of at most its ``context_length`` tokens each; a key's spend limit
reserves for every input's tokens. Both are answered from each text's UTF-8 size first (a byte-level
BPE token covers at least one byte, so the scaled size bounds the count), and a text is tokenized only
when that bound is over the limit asked about. A token-id list is its own count.
"""

from __future__ import annotations

from tokenmux.routing.tokens import count_tokens, family, utf8_length
from tokenmux.types import EmbeddingRequest


def upper_bound(request: EmbeddingRequest, family_name: str) -> int:
    """Tokens of all inputs together, at most (nothing tokenized)."""
    fam = family(family_name)
    return sum(
        len(item) if isinstance(item, list) else fam.scale(utf8_length(item)) for item in request.inputs
    )


def longest_input(request: EmbeddingRequest, family_name: str, limit: int) -> int:
    """The token count of the longest input, exact for those whose bound is over ``limit`` (for the
    others their bound, which is within ``limit``): compare it with any limit of ``limit`` or more."""
    fam = family(family_name)
    longest = 0
    for item in request.inputs:
        if isinstance(item, list):
            tokens = len(item)
        else:
            tokens = fam.scale(utf8_length(item))
            if tokens > limit:
                tokens = count_tokens(item, family_name)
        longest = max(longest, tokens)
    return longest
