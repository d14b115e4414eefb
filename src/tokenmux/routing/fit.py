"""Does a prompt fit an endpoint? Answered cheaply for prompts of any size (README "Routing", step 3).

A byte-level BPE token covers at least one UTF-8 byte, so a prompt's tokens are at most the bytes of its
texts plus the fixed tokens around them (message framing, images): that bound settles almost every
request without tokenizing. Only when the bound exceeds the room an endpoint leaves does the offline
tokenizer count, and it stops as soon as the answer is certain (``tokens.RunningCount``). One
``PromptSize`` serves every endpoint a request is checked against: it walks the request once, and what
it has counted for one endpoint is not counted again for the next.

Images and other media are never decoded (base64 data URLs are not text): each costs a fixed, cautious
number of tokens per tokenizer family (``tokens.FAMILIES``). Tool definitions and a ``json_schema``
response format are counted as their JSON, which is longer than the forms providers render them in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import msgspec

from tokenmux.routing.tokens import RunningCount, TokenizerFamily, clean_text, family

if TYPE_CHECKING:
    from tokenmux.catalog.model import Endpoint
    from tokenmux.types import ChatRequest

# Tokens around the texts, the same in the bound and in the exact count. OpenAI documents 3 per message
# (start, role, end) and 3 priming the reply; we allow one more per message for longer role markers.
MESSAGE_FRAMING_TOKENS = 4
NAME_FRAMING_TOKENS = 1
REPLY_PRIMING_TOKENS = 3
TOOL_CALL_FRAMING_TOKENS = 8  # the call's id, type and wrapping around name and arguments
TOOLS_FRAMING_TOKENS = 24  # the header that introduces the tool definitions
TOOL_DEFINITION_FRAMING_TOKENS = 8
RESPONSE_FORMAT_FRAMING_TOKENS = 16

# Output room assumed when the request names no maximum: the provider then fits the output into whatever
# the context has left, so the prompt only has to leave room for one token.
MIN_OUTPUT_RESERVE = 1

_json_encode = msgspec.json.Encoder().encode


class PromptSize:
    """The size of one request's prompt, worked out lazily: nothing is computed until a fit is asked
    for, the request is walked at most once, and each vocabulary tokenizes each text at most once."""

    __slots__ = ("_counts", "_fixed", "_media", "_request", "_stopped", "_text_bytes", "_texts")

    def __init__(self, request: ChatRequest) -> None:
        self._request = request
        self._texts: list[str] | None = None
        self._text_bytes = 0
        self._fixed = 0  # framing tokens
        self._media = 0  # images and other non-text parts
        self._counts: dict[str, RunningCount] = {}  # by encoding: families sharing one share the count
        self._stopped = False

    @property
    def text_bytes(self) -> int:
        """UTF-8 bytes of every text that reaches the model (media excluded)."""
        self._walk()
        return self._text_bytes

    @property
    def media_items(self) -> int:
        self._walk()
        return self._media

    def upper_bound(self, family_name: str) -> int:
        """Tokens the prompt cannot exceed in ``family_name``, found without tokenizing."""
        return self._upper_bound(family(family_name))

    def exact(self, family_name: str) -> int:
        """The prompt's tokens in ``family_name``: texts counted by the tokenizer, plus the same framing and
        media estimates the bound uses (scaled when the family's vocabulary does not ship)."""
        fam = family(family_name)
        return fam.scale(self._count(fam.encoding).total()) + self._fixed_tokens(fam)

    def within(self, family_name: str, limit: int) -> bool:
        """Whether the prompt is at most ``limit`` tokens in ``family_name``; tokenizes only if the byte
        bound cannot tell, and then only as far as needed."""
        fam = family(family_name)
        settled, budget = self._settled(fam, limit)
        return settled if settled is not None else self._count(fam.encoding).at_most(budget)

    def within_known(self, family_name: str, limit: int) -> bool | None:
        """``within(family_name, limit)`` when the bound, what is counted so far and the chunk-count cache
        (a conversation's earlier turns) can tell without tokenizing; None when only a count can."""
        fam = family(family_name)
        settled, budget = self._settled(fam, limit)
        return settled if settled is not None else self._count(fam.encoding).at_most_known(budget)

    def within_after(self, family_name: str, limit: int, chunks: int) -> bool | None:
        """``within(family_name, limit)`` if tokenizing at most ``chunks`` more chunks answers it, else
        None (call again to go on)."""
        fam = family(family_name)
        settled, budget = self._settled(fam, limit)
        return settled if settled is not None else self._count(fam.encoding).at_most_after(budget, chunks)

    def _settled(self, fam: TokenizerFamily, limit: int) -> tuple[bool | None, int]:
        """Whether ``limit`` is met, when the byte bound or the fixed tokens (framing, media) alone tell;
        else None and the most the texts may count in ``fam``'s shipped vocabulary."""
        if self._upper_bound(fam) <= limit:
            return True, 0
        room = limit - self._fixed_tokens(fam)
        if room < 0:
            return False, 0
        return None, fam.unscale_budget(room)

    def stop_counting(self) -> None:
        """End every count of this prompt under way (in another thread) at its next chunk: nobody needs
        the answer any more. A count asked for afterwards raises ``errors.CountStopped``."""
        self._stopped = True
        # A list first: the worker may be adding a count meanwhile (list() of a dict holds the GIL).
        for count in list(self._counts.values()):
            count.stop()

    def bounds(self, family_name: str) -> tuple[int, int]:
        """(at least, at most) tokens in ``family_name`` from what has been counted so far; equal once the
        count is complete."""
        fam = family(family_name)
        fixed = self._fixed_tokens(fam)
        count = self._counts.get(fam.encoding)
        if count is None:
            return fixed, fam.scale(self._text_bytes) + fixed
        return fam.scale(count.counted) + fixed, fam.scale(count.counted + count.unread_bytes) + fixed

    def tokenized(self, family_name: str) -> bool:
        """Whether deciding a fit for ``family_name`` has needed the tokenizer so far."""
        return family(family_name).encoding in self._counts

    def tokenized_chars(self, family_name: str) -> int:
        """Characters read by ``family_name``'s tokenizer for this request so far (never more than the
        prompt's text: nothing is counted twice)."""
        count = self._counts.get(family(family_name).encoding)
        return 0 if count is None else count.read_chars

    def _upper_bound(self, fam: TokenizerFamily) -> int:
        return fam.scale(self.text_bytes) + self._fixed + self._media * fam.image_tokens

    def _fixed_tokens(self, fam: TokenizerFamily) -> int:
        self._walk()
        return self._fixed + self._media * fam.image_tokens

    def _count(self, encoding: str) -> RunningCount:
        count = self._counts.get(encoding)
        if count is None:
            self._walk()
            assert self._texts is not None
            count = self._counts[encoding] = RunningCount(encoding, self._texts, self._text_bytes)
            if self._stopped:
                count.stop()
        return count

    def _walk(self) -> None:
        if self._texts is not None:
            return
        self._texts = []
        fixed = REPLY_PRIMING_TOKENS
        for message in self._request.messages:
            fixed += MESSAGE_FRAMING_TOKENS
            name = message.get("name")
            if isinstance(name, str):
                fixed += NAME_FRAMING_TOKENS
                self._add(name)
            self._add_content(message.get("content"))
            for call in message.get("tool_calls") or ():
                fixed += TOOL_CALL_FRAMING_TOKENS
                function = call.get("function") if isinstance(call, dict) else None
                if isinstance(function, dict):
                    self._add(function.get("name"))
                    self._add(function.get("arguments"))
        params = self._request.params
        tools = params.get("tools")
        if tools and isinstance(tools, list):
            fixed += TOOLS_FRAMING_TOKENS + TOOL_DEFINITION_FRAMING_TOKENS * len(tools)
            self._add(_json_encode(tools).decode())
        response_format = params.get("response_format")
        if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
            fixed += RESPONSE_FORMAT_FRAMING_TOKENS
            self._add(_json_encode(response_format.get("json_schema")).decode())
        self._fixed = fixed

    def _add_content(self, content: Any) -> None:
        if isinstance(content, str):
            self._add(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                text = part.get("text", part.get("refusal"))
                if isinstance(text, str):
                    self._add(text)
                else:
                    # image_url, input_audio, file: never read as text (their data is base64 or a URL).
                    self._media += 1

    def _add(self, text: Any) -> None:
        if not isinstance(text, str) or not text:
            return
        if not text.isascii():
            try:
                self._text_bytes += len(text.encode())
            except UnicodeEncodeError:
                text = clean_text(text)
                self._text_bytes += len(text.encode())
        else:
            self._text_bytes += len(text)
        assert self._texts is not None
        self._texts.append(text)


class FitResult(NamedTuple):
    fits: bool
    reason: str  # why not, for the client's error message; "" when it fits
    # The prompt's tokens as far as the decision established them: the byte bound when that settled it,
    # the exact count when it was needed in full, a partial count's bound when it stopped early.
    prompt_tokens: int
    tokenized: bool  # whether the tokenizer had to run (for this request and family, so far)


def check_fit(size: PromptSize, endpoint: Endpoint, max_output: int | None, family_name: str) -> FitResult:
    """Whether a prompt of ``size``, asking for ``max_output`` tokens (None: not stated), fits ``endpoint``
    when counted in the tokenizer family ``family_name``."""
    if max_output is not None and max_output > endpoint.max_output:
        reason = f"max output {max_output:,} > endpoint max output {endpoint.max_output:,}"
        return FitResult(False, reason, 0, size.tokenized(family_name))
    reserve = MIN_OUTPUT_RESERVE if max_output is None else max_output
    context = endpoint.context_length
    bound = size.upper_bound(family_name)
    if bound + reserve <= context:  # the common case: settled without tokenizing
        return FitResult(True, "", bound, size.tokenized(family_name))
    fits = size.within(family_name, context - reserve)
    at_least, at_most = size.bounds(family_name)
    if fits:
        return FitResult(True, "", at_most, size.tokenized(family_name))
    tokens = f"~{at_least:,}" if at_least == at_most else f"at least ~{at_least:,}"
    if max_output is None:
        reason = f"prompt too large: {tokens} tokens leave no room for output in context {context:,}"
    else:
        reason = f"prompt too large: {tokens} tokens + {max_output:,} output > context {context:,}"
    return FitResult(False, reason, at_least, size.tokenized(family_name))


def fit_known(
    size: PromptSize, endpoint: Endpoint, max_output: int | None, family_name: str
) -> FitResult | None:
    """``check_fit`` when the byte bound, what is counted so far and the chunk-count cache (a conversation's
    earlier turns) settle it without tokenizing; None when only a count can."""
    if max_output is None or max_output <= endpoint.max_output:
        reserve = MIN_OUTPUT_RESERVE if max_output is None else max_output
        if size.within_known(family_name, endpoint.context_length - reserve) is None:
            return None
    return check_fit(size, endpoint, max_output, family_name)  # settled: answered without a count
