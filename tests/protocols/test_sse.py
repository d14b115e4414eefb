from __future__ import annotations

import msgspec
import pytest

from tokenmux.protocols.sse import (
    DONE,
    DataRun,
    RunDecoder,
    SSEDecoder,
    SSEEvent,
    comment,
    encode_data,
    encode_event,
)


def decode_all(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(decoder.feed(chunk))
    return events


def test_one_event_per_blank_line() -> None:
    events = decode_all(b'data: {"a":1}\n\ndata: {"b":2}\n\n')
    assert events == [SSEEvent(None, '{"a":1}'), SSEEvent(None, '{"b":2}')]


def test_event_waits_for_its_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n") == []
    assert decoder.feed(b"\n") == [SSEEvent(None, "x")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending(newline: bytes) -> None:
    stream = b"event: ping" + newline + b"data: 1" + newline + newline + b"data: 2" + newline + newline
    assert decode_all(stream) == [SSEEvent("ping", "1"), SSEEvent(None, "2")]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_split_at_every_byte(newline: bytes) -> None:
    stream = b": keep-alive" + newline + newline
    stream += b"event: message_start" + newline + b'data: {"x": "\xc3\xa9"}' + newline + newline
    stream += b"data: [DONE]" + newline + newline
    expected = [SSEEvent("message_start", '{"x": "é"}'), SSEEvent(None, "[DONE]")]
    assert decode_all(*(stream[i : i + 1] for i in range(len(stream)))) == expected


def test_crlf_split_between_chunks_is_one_line_end() -> None:
    # "\r" ends a chunk and its "\n" starts the next: one line end, not a line end plus a blank line.
    assert decode_all(b"data: a\r", b"\ndata: b\r\n\r\n") == [SSEEvent(None, "a\nb")]


def test_empty_chunks_change_nothing() -> None:
    assert decode_all(b"data: a\r", b"", b"\n", b"", b"\r\n") == [SSEEvent(None, "a")]


def test_multi_line_data_joins_with_newline() -> None:
    assert decode_all(b"data: first\ndata:second\ndata\n\n") == [SSEEvent(None, "first\nsecond\n")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    events = decode_all(b": tokenmux processing\n\nid: 7\nretry: 10\nfoo: bar\ndata: x\n\n")
    assert events == [SSEEvent(None, "x")]


def test_comment_only_blocks_dispatch_nothing_and_reset_event_name() -> None:
    assert decode_all(b"event: error\n\ndata: x\n\n") == [SSEEvent(None, "x")]


def test_only_one_space_after_colon_is_dropped() -> None:
    assert decode_all(b"data:  two spaces\n\ndata:none\n\n") == [
        SSEEvent(None, " two spaces"),
        SSEEvent(None, "none"),
    ]


def test_colons_inside_the_value_stay() -> None:
    assert decode_all(b'data: {"url": "https://x"}\n\n') == [SSEEvent(None, '{"url": "https://x"}')]


def test_leading_bom_is_dropped_once() -> None:
    assert decode_all(b"\xef\xbb\xbfdata: a\n\n") == [SSEEvent(None, "a")]


def test_long_line_in_many_pieces() -> None:
    payload = b"x" * 100_000
    stream = b"data: " + payload + b"\n\n"
    events = decode_all(*(stream[i : i + 1000] for i in range(0, len(stream), 1000)))
    assert events == [SSEEvent(None, payload.decode())]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode_all(b"data: \xff\n\n") == [SSEEvent(None, "\ufffd")]


def test_flush_completes_an_unterminated_last_event() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: [DONE]") == [SSEEvent(None, "a")]
    assert decoder.flush() == [SSEEvent(None, "[DONE]")]


def test_flush_with_nothing_pending_returns_nothing() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n")
    assert decoder.flush() == []


def test_encoders_round_trip_through_the_decoder() -> None:
    stream = comment("tokenmux processing") + encode_data(b'{"a":1}') + encode_event("ping", b"{}") + DONE
    assert stream == b': tokenmux processing\n\ndata: {"a":1}\n\nevent: ping\ndata: {}\n\ndata: [DONE]\n\n'
    assert decode_all(stream) == [SSEEvent(None, '{"a":1}'), SSEEvent("ping", "{}"), SSEEvent(None, "[DONE]")]


# RunDecoder: the same events, plain runs of them handed over whole.

PLAIN = b'data: {"a":1}\n\ndata: {"b":"x,y"}\n\ndata: [DONE]\n\n'
STREAMS = [
    PLAIN,
    b'data: {"a":1}\n\n: keep-alive\n\ndata: {"b":2}\n\n',  # a comment: not a plain run
    b'event: error\ndata: {"e":1}\n\ndata: {"a":1}\n\n',  # a named event
    b'data: {"a":1}\r\n\r\ndata: {"b":2}\r\n\r\n',  # CRLF: the general path from then on
    b'data:{"a":1}\n\ndata: {"b":2}\n\n',  # no space after the colon
    b"data: 1\ndata: 2\n\ndata: 3\n\n",  # multi-line data
    b'\xef\xbb\xbfdata: {"a":1}\n\n',  # byte-order mark
    b"data: [DONE]\n\ndata: {}\n\n",  # something after [DONE]: a run whose array is no JSON
    b'data: {"a":1}\n\n\ndata: {"b":2}\n\n',  # an extra blank line
    b'data: {"a":1}\n\ndata: {"b":2}',  # unterminated last event
]


def run_decode_all(*chunks: bytes) -> list[SSEEvent | DataRun]:
    decoder = RunDecoder()
    items: list[SSEEvent | DataRun] = []
    for chunk in chunks:
        items.extend(decoder.feed(chunk))
    return items + decoder.flush()


def expanded(items: list[SSEEvent | DataRun]) -> list[SSEEvent]:
    return [e for item in items for e in (item.events() if isinstance(item, DataRun) else [item])]


@pytest.mark.parametrize("stream", STREAMS)
def test_runs_hold_the_events_the_general_decoder_reads_however_the_stream_is_cut(stream: bytes) -> None:
    decoder = SSEDecoder()
    whole = decoder.feed(stream) + decoder.flush()
    assert expanded(run_decode_all(stream)) == whole
    assert expanded(run_decode_all(*(stream[i : i + 1] for i in range(len(stream))))) == whole
    for cut in range(len(stream)):
        assert expanded(run_decode_all(stream[:cut], stream[cut:])) == whole, cut


def test_a_run_is_its_payloads_as_one_json_array() -> None:
    [run] = run_decode_all(PLAIN)
    assert isinstance(run, DataRun)
    assert run.done and run.source == PLAIN
    assert msgspec.json.decode(run.payloads) == [{"a": 1}, {"b": "x,y"}]
    [done] = run_decode_all(b"data: [DONE]\n\n")
    assert isinstance(done, DataRun) and done.done and done.payloads == b"[]"


def test_what_arrives_together_is_one_run_and_a_partial_event_waits() -> None:
    decoder = RunDecoder()
    assert decoder.feed(PLAIN[:10]) == []  # nothing complete yet
    [run] = decoder.feed(PLAIN[10:])
    assert isinstance(run, DataRun) and run.source == PLAIN


@pytest.mark.parametrize("stream", STREAMS[1:7])
def test_anything_but_plain_data_lines_takes_the_general_path(stream: bytes) -> None:
    assert not any(isinstance(item, DataRun) for item in run_decode_all(stream))
