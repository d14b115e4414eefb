"""Redaction: credentials scrubbed from what adapters say, ignoring case, pieces of them included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from adapter_helpers import chat, config, context

from tokenmux.errors import ProviderMalformed, ProviderRejected, StreamInterrupted
from tokenmux.providers import build_provider
from tokenmux.providers.common import snippet
from tokenmux.providers.redaction import RedactedProvider, Redactor, credentials_of
from tokenmux.providers.transport import MockResponse, MockTransport

KEY = "sk-proj-Abc123Def456Ghi789Jkl012"


def test_a_key_is_scrubbed_whatever_its_case() -> None:
    r = Redactor([KEY])
    for text in (f"Authorization: Bearer {KEY}", f"AUTHORIZATION: BEARER {KEY.upper()}", KEY.lower()):
        out = r.scrub(text)
        assert KEY.lower() not in out.lower()
        assert "***" in out
    assert r.scrub("nothing secret here") == "nothing secret here"


def test_a_piece_of_a_key_cut_off_by_a_snippet_is_scrubbed() -> None:
    r = Redactor([KEY])
    page = "x" * 280 + f"Bearer {KEY} and more"
    cut = snippet(page.encode())  # 300 characters: the key is cut in the middle
    assert KEY[:12] in cut and KEY not in cut
    out = r.scrub(cut)
    assert KEY[:12].lower() not in out.lower()
    # A snippet may as well begin in the middle of the key.
    assert r.scrub(KEY[10:] + " trailing") == "*** trailing"
    # Short pieces are left: eleven characters of a random key give nothing away.
    assert r.scrub(KEY[:11]) == KEY[:11]


def test_placeholders_are_not_secrets() -> None:
    r = Redactor(["EMPTY", "none"])
    assert not r
    assert r.scrub("empty body") == "empty body"


def test_credentials_come_from_the_key_credential_headers_and_the_url() -> None:
    cfg = config(
        "openai-compatible",
        base_url="https://user:url-password-123@proxy.example/v1",
        headers=(
            ("X-Proxy-Token", "tok-abcdef123"),
            ("Authorization", "Basic dXNlcjpwYXNz"),
            ("X-Title", "My app"),
        ),
    )
    found = credentials_of(cfg)
    assert "sk-test-0123456789" in found
    assert "tok-abcdef123" in found and "dXNlcjpwYXNz" in found and "url-password-123" in found
    assert "My app" not in found


async def test_errors_leaving_an_adapter_are_scrubbed_and_unchained() -> None:
    secret = "sk-test-0123456789"

    def echo(request: Any) -> MockResponse:
        headers = "\n".join(f"{k}: {v}" for k, v in request.headers)
        return MockResponse(200, {"content-type": "text/html"}, f"<html><pre>{headers}</pre></html>".encode())

    provider = build_provider(config("openai"), MockTransport(echo))
    assert isinstance(provider, RedactedProvider)
    with pytest.raises(ProviderMalformed) as caught:
        await provider.complete(chat(), context())
    assert secret not in caught.value.message and "***" in caught.value.message
    assert caught.value.__cause__ is None and caught.value.__context__ is None


async def test_stream_errors_are_scrubbed_too() -> None:
    secret = "sk-test-0123456789"

    def echo(request: Any) -> MockResponse:
        return MockResponse(
            200, {"content-type": "text/event-stream"}, f"data: not json {secret.upper()}\n\n".encode()
        )

    provider = build_provider(config("openai"), MockTransport(echo))
    for form in ("stream", "stream_batches", "stream_chunks"):
        items: AsyncIterator[Any] = getattr(provider, form)(chat(stream=True), context())
        with pytest.raises((ProviderMalformed, StreamInterrupted)) as caught:
            async for _ in items:
                pass
        assert secret.lower() not in caught.value.message.lower(), form


def test_scrubbing_keeps_what_the_relay_reads_of_an_error() -> None:
    err = ProviderRejected(f"bad key {KEY}", upstream_status=429, retry_after=3.0, upstream_type=f"t-{KEY}")
    out = Redactor([KEY]).scrub_error(err)
    assert out is err
    assert out.retryable and out.retry_after == 3.0 and out.error_class == "rate_limited"
    assert KEY not in out.message and KEY not in str(out) and KEY not in (out.upstream_type or "")
