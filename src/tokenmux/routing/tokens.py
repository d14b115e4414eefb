"""Offline token counting for prompt fitting: tokenizer families, their shipped vocabularies, and a count
that stops as soon as it has answered the question asked of it.

Only OpenAI's ``o200k_base`` and ``cl100k_base`` vocabularies ship inside a wheel (``bpe-openai``); every
other family is counted with ``cl100k_base`` and scaled by a safety factor that over-estimates (see
``FAMILIES``). Nothing is downloaded, and no vocabulary is loaded until a prompt first needs counting.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import re
import sys
import threading
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from tokenmux.errors import CountStopped
from tokenmux.routing.mapped_pages import release_freed_heap, release_read_only_pages

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence


class CountingTokenizer(Protocol):
    def count(self, text: str) -> int: ...


@dataclass(frozen=True, slots=True)
class TokenizerFamily:
    name: str
    encoding: str  # the shipped vocabulary the family is counted with
    # Tokens = ceil(count with `encoding` × factor_permille / 1000). 1000 where `encoding` is the family's
    # own vocabulary; above 1000 where it is a stand-in, so that the estimate errs on the large side.
    factor_permille: int
    # Tokens one image costs, at most: we do not decode images, so every image is charged the family's
    # largest documented high-detail cost.
    image_tokens: int

    def scale(self, encoded_tokens: int) -> int:
        """Family tokens for a count made with ``encoding`` (rounded up: never under-estimates)."""
        return -(-encoded_tokens * self.factor_permille // 1000)

    def unscale_budget(self, family_tokens: int) -> int:
        """The largest count with ``encoding`` whose scaled value still fits in ``family_tokens``."""
        return family_tokens * 1000 // self.factor_permille


O200K = "o200k_base"
CL100K = "cl100k_base"

# Factors for stand-in vocabularies cannot be measured here (the real vocabularies do not ship offline),
# so each is a documented judgement, chosen high: over-estimating only drops an endpoint whose context is
# within that margin of the prompt, under-estimating sends a request the provider will refuse.
# o200k_base cannot replace cl100k_base as the stand-in (which would save loading cl100k_base, 16 MB):
# over the translated messages of 147 languages (the system's gettext catalogs), cl100k_base takes 0.97
# (English) to 4.5 (Armenian) times o200k_base's tokens, median 1.18, so the factors below would have to
# grow about 4.5-fold to stay on the large side for every script.
FAMILIES: dict[str, TokenizerFamily] = {
    # gpt-4o, 4.1, o-series, gpt-5. Images: the patch-based models (gpt-4.1-nano) cost up to 1536 patches
    # × 2.46 ≈ 3,779 tokens, above the tile-based maximum (85 + 8 × 170 = 1,445).
    "o200k": TokenizerFamily("o200k", O200K, 1000, 3_800),
    # gpt-4, gpt-4-turbo, gpt-3.5: tile-based images, at most 85 + 8 tiles × 170 = 1,445 tokens.
    "cl100k": TokenizerFamily("cl100k", CL100K, 1000, 1_445),
    # Claude's 65k-entry vocabulary splits English finer than cl100k (commonly 10-20% more tokens), and
    # Anthropic documents its newer tokenizer as producing about 30% more than the earlier one:
    # 1.15 × 1.3 ≈ 1.5. Images are resized to about 1.15 megapixels, i.e. at most ~1,600 tokens.
    "claude": TokenizerFamily("claude", CL100K, 1500, 1_600),
    # Gemini's 256k SentencePiece vocabulary is larger than cl100k's; 1.1 covers code and rare scripts.
    # Large images are tiled (258 tokens per tile), so we allow 16 tiles.
    "gemini": TokenizerFamily("gemini", CL100K, 1100, 4_128),
    # Llama 3's 128k vocabulary is cl100k's 100k tokens plus 28k more: it rarely needs more tokens.
    "llama3": TokenizerFamily("llama3", CL100K, 1050, 4_096),
    # DeepSeek's and Qwen's byte-level BPEs (~128k, ~151k) are close to cl100k on English, better on CJK.
    "deepseek": TokenizerFamily("deepseek", CL100K, 1150, 4_096),
    # Qwen-VL turns an image into up to 16,384 tokens at its default maximum resolution.
    "qwen": TokenizerFamily("qwen", CL100K, 1100, 16_384),
    # Older Mistral models use a 32k SentencePiece vocabulary (many more tokens than cl100k); newer ones
    # use the 131k Tekken vocabulary. 1.3 covers the older ones.
    "mistral": TokenizerFamily("mistral", CL100K, 1300, 4_096),
}
# A family the table does not know: the most cautious factor above.
UNKNOWN_FAMILY = TokenizerFamily("unknown", CL100K, 1500, 16_384)


def family(name: str) -> TokenizerFamily:
    return FAMILIES.get(name, UNKNOWN_FAMILY)


def _load_extension() -> Any:
    """``bpe_openai``'s compiled tokenizer module.

    Loaded from its file rather than imported as ``bpe_openai._bindings``: importing the package runs its
    ``__init__``, which decodes three vocabularies into Python dicts for its tiktoken-like wrapper (about
    3 s and 70 MB that a counter never uses, plus a DeprecationWarning). The module is registered under its
    own name, so a later ``import bpe_openai`` finds it instead of initialising it a second time.
    """
    name = "bpe_openai._bindings"
    module = sys.modules.get(name)
    if module is not None:
        return module
    package = importlib.util.find_spec("bpe_openai")
    for directory in (package.submodule_search_locations or ()) if package else ():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = os.path.join(directory, "_bindings" + suffix)
            spec = importlib.util.spec_from_file_location(name, path) if os.path.isfile(path) else None
            if spec is not None and spec.loader is not None:
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                sys.modules[name] = module
                return module
    with warnings.catch_warnings():  # the package's own import-time deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        from bpe_openai import _bindings

    return _bindings


_tokenizers: dict[str, CountingTokenizer] = {}
_load_lock = threading.Lock()


def tokenizer(encoding: str) -> CountingTokenizer:
    """The shipped tokenizer for ``encoding`` (o200k_base or cl100k_base), loaded on first use (0.2-0.7
    s; its decoded tables then hold about 34 MB for o200k_base, 16 MB for cl100k_base, so neither is
    loaded until a prompt needs it)."""
    tok = _tokenizers.get(encoding)
    if tok is None:
        with _load_lock:  # the extension must be initialised once per process
            tok = _tokenizers.get(encoding)
            if tok is None:
                extension = _load_extension()
                tok = _tokenizers[encoding] = extension.tokenizer_for_encoding(encoding)
                # The vocabulary was decoded from the extension's read-only image, whose pages would
                # otherwise stay resident (about 32 MB for o200k_base, 15 MB for cl100k_base) unread.
                release_read_only_pages(extension.__file__)
                # And the decoder's freed buffers, which stay resident in the middle of the heap.
                release_freed_heap()
    return tok


def warm_up(encodings: Sequence[str] = (O200K, CL100K)) -> None:
    """Load the tokenizer and its vocabularies now rather than during the first near-limit request."""
    for encoding in encodings:
        tokenizer(encoding).count("warm up")


def encodings_of(families: Iterable[str]) -> list[str]:
    """The shipped vocabularies that counting for these tokenizer families needs (a family the table does
    not know is counted as ``UNKNOWN_FAMILY`` is)."""
    return sorted({family(name).encoding for name in families})


def loaded_encodings() -> list[str]:
    """The vocabularies this process has loaded."""
    return sorted(_tokenizers)


def clean_text(text: str) -> str:
    """``text`` with lone surrogates (which JSON escapes can carry) replaced by U+FFFD, so it encodes."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def utf8_length(text: str) -> int:
    """UTF-8 bytes of ``text`` (after ``clean_text``): a byte-level BPE token covers at least one byte,
    so this bounds its token count in both shipped encodings."""
    if text.isascii():  # O(1) in CPython: the flag is kept on the string
        return len(text)
    return len(text.encode())


# Characters handed to a tokenizer since the process started (chunk-cache hits not included): what
# counting has cost, for tests and benchmarks to check that a decision did not count.
_tokenized_chars = 0


def tokenized_chars() -> int:
    """Characters the process has handed to a tokenizer so far."""
    return _tokenized_chars


def _count(tok: CountingTokenizer, text: str) -> int:
    global _tokenized_chars
    _tokenized_chars += len(text)  # may miss an update when two threads count at once: a statistic
    return tok.count(text)


def count_tokens(text: str, family_name: str) -> int:
    """Tokens of ``text`` alone (no message framing) in ``family_name``'s tokenizer, or the scaled
    estimate for a family without a shipped vocabulary."""
    fam = family(family_name)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = clean_text(text)
    return fam.scale(_count(tokenizer(fam.encoding), text))


# --- counting a long prompt a piece at a time -------------------------------------------------------------

# Chunks of about this many characters: big enough that the per-call cost stays small (a few %), small
# enough that a count stops soon after the answer is known and that one chunk (about 0.4 ms at bpe-openai's
# 38 MB/s, holding the GIL) is a short enough slice of the event loop for a count done in slices on it.
CHUNK_CHARS = 16 * 1024

# Where a text may be cut without changing its count: a space (U+0020) right after a non-whitespace
# character. In both shipped encodings no pre-tokenizer piece contains a non-whitespace character followed
# by a space (spaces only ever open a piece, or sit in an all-whitespace piece), so a piece boundary is
# always there, and tokens are never merged across pieces: the sum of the parts' counts equals the count of
# the whole. Python's ``\S`` is stricter than the tokenizers' (``str.isspace`` covers all of Unicode's
# White_Space and a few more), which can only make us skip a valid cut, never take a wrong one.
_CUT = re.compile(r"(?<=\S) ")

# Counts of large chunks already seen, keyed by (encoding, characters, texts, hash): long prompts are mostly
# re-sent conversations and documents, and a repeat then costs a hash instead of a count. A chunk is a slice
# of one long text (texts 0) or a run of whole short texts (their number): a conversation's next turn sends
# the same messages again with one more, so its earlier messages fall into the same chunks as before and
# only the last chunk is counted anew. The hash is CPython's keyed SipHash (per-process random key; a
# tuple's combines its strings'), so a collision — which would only misjudge one fit — is not something a
# client can arrange.
_CACHE_MIN_CHARS = 4096
_CACHE_MAX_ENTRIES = 16384  # about 256 MB of prompt text (64M tokens) in about 3 MB
_chunk_counts: dict[tuple[str, int, int, int], int] = {}
_chunk_counts_lock = threading.Lock()


def _remember(key: tuple[str, int, int, int], n: int) -> None:
    with _chunk_counts_lock:
        if len(_chunk_counts) >= _CACHE_MAX_ENTRIES:
            del _chunk_counts[next(iter(_chunk_counts))]  # the oldest entry
        _chunk_counts[key] = n


def clear_cache() -> None:
    with _chunk_counts_lock:
        _chunk_counts.clear()


class RunningCount:
    """The exact token count of a sequence of texts in one encoding, taken only as far as the questions
    asked so far need; later questions resume where earlier ones stopped, so no text is counted twice.

    ``texts`` must already be clean (``clean_text``) and ``total_bytes`` their UTF-8 length. The texts are
    read a chunk at a time, in order: a slice of about ``chunk_chars`` of a long text, or a run of whole
    short texts; a chunk counted before (by any request) comes from the cache.
    """

    __slots__ = (
        "_chunk_chars",
        "_encoding",
        "_next_text",
        "_offset",
        "_texts",
        "counted",
        "read_chars",
        "stopped",
        "unread_bytes",
    )

    def __init__(
        self, encoding: str, texts: Sequence[str], total_bytes: int, chunk_chars: int = CHUNK_CHARS
    ) -> None:
        self._encoding = encoding
        self._texts = texts
        self._chunk_chars = chunk_chars
        self._next_text = 0  # index of the text being read
        self._offset = 0  # characters of that text already counted
        self.counted = 0  # exact tokens of everything read so far
        self.unread_bytes = total_bytes  # bounds the tokens of everything not read yet
        self.read_chars = 0  # characters handed to the tokenizer (or found in the chunk cache) so far
        self.stopped = False  # set from another thread: the next chunk raises CountStopped

    @property
    def done(self) -> bool:
        return self._next_text >= len(self._texts)

    def at_most(self, budget: int) -> bool:
        """Whether the texts' whole token count is ``<= budget``, counting only until that is certain."""
        answer = self._answer(budget, cached_only=False)
        assert answer is not None
        return answer

    def at_most_known(self, budget: int) -> bool | None:
        """``at_most(budget)`` when the chunk cache (with what is counted already) can answer it; None
        when the tokenizer would have to run. Costs a hash per cached chunk, never a count."""
        return self._answer(budget, cached_only=True)

    def at_most_after(self, budget: int, chunks: int) -> bool | None:
        """``at_most(budget)`` if reading at most ``chunks`` more chunks answers it, else None (call
        again to go on): a count in bounded slices."""
        return self._answer(budget, cached_only=False, chunks=chunks)

    def total(self) -> int:
        while not self.done:
            self._read_chunk(cached_only=False)
        return self.counted

    def stop(self) -> None:
        """Make the count end at its next chunk (with ``CountStopped``); safe from any thread."""
        self.stopped = True

    def _answer(self, budget: int, *, cached_only: bool, chunks: int = -1) -> bool | None:
        while True:
            if self.counted + self.unread_bytes <= budget:
                return True
            if self.counted > budget:
                return False
            if chunks == 0:
                return None
            chunks -= 1
            # unread_bytes > 0 here, so there is something left to read
            if not self._read_chunk(cached_only=cached_only):
                return None

    def _read_chunk(self, *, cached_only: bool) -> bool:
        """Count the next chunk; False (and nothing read) when ``cached_only`` and it is not cached."""
        if self.stopped:
            raise CountStopped
        texts = self._texts
        first = self._next_text
        text = texts[first]
        start = self._offset
        chunk_chars = self._chunk_chars
        if start == 0 and len(text) < chunk_chars:
            # A run of whole short texts, ended by the first long one.
            last = first + 1
            chars = len(text)
            while last < len(texts) and chars < chunk_chars and len(texts[last]) < chunk_chars:
                chars += len(texts[last])
                last += 1
            run = texts[first:last] if last > first + 1 else None
            key = (self._encoding, chars, last - first, hash(tuple(run) if run else text))
            end = len(text)
        else:
            end = len(text)
            if end - start > chunk_chars + chunk_chars // 2:
                cut = _CUT.search(text, start + chunk_chars)
                if cut is not None:
                    end = cut.start()
            run = None
            text = text[start:end] if start or end < len(text) else text
            chars = len(text)
            last = first + 1 if end == len(texts[first]) else first
            key = (self._encoding, chars, 0, hash(text))
        n = _chunk_counts.get(key) if chars >= _CACHE_MIN_CHARS else None
        if n is None:
            if cached_only:
                return False
            tok = tokenizer(self._encoding)
            n = sum(_count(tok, t) for t in run) if run else _count(tok, text)
            if chars >= _CACHE_MIN_CHARS:
                _remember(key, n)
        self.counted += n
        self.unread_bytes -= sum(utf8_length(t) for t in run) if run else utf8_length(text)
        self.read_chars += chars
        if last > first:
            self._next_text = last
            self._offset = 0
        else:
            self._offset = end
        return True
