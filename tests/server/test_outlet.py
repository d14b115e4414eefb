"""The streamed response over ASGI ``send``: what messages a stream's outlet sends, and when."""

from __future__ import annotations

from typing import Any

from tokenmux.server.outlet import AsgiOutlet


class Sent:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    async def __call__(self, message: Any) -> None:
        self.messages.append(message)


async def test_a_stream_begins_writes_and_ends() -> None:
    sent = Sent()
    outlet = AsgiOutlet(sent, [(b"x-generation-id", b"gen-1")], keepalive_s=0)
    await outlet.open()
    await outlet.open()  # once only
    await outlet.write(b"data: 1\n\n")
    await outlet.end(b"data: [DONE]\n\n")
    start, body, last = sent.messages
    assert start["type"] == "http.response.start" and start["status"] == 200
    assert (b"x-generation-id", b"gen-1") in start["headers"]
    assert body == {"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True}
    assert last == {"type": "http.response.body", "body": b"data: [DONE]\n\n"}
    await outlet.close()  # ended already: nothing more
    assert len(sent.messages) == 3


async def test_an_answer_sent_whole_begins_the_response_itself() -> None:
    sent = Sent()
    outlet = AsgiOutlet(sent, [], keepalive_s=0)
    await outlet.end(b"data: 1\n\ndata: [DONE]\n\n")
    start, body = sent.messages
    assert start["type"] == "http.response.start" and outlet.started and outlet.ended
    assert body == {"type": "http.response.body", "body": b"data: 1\n\ndata: [DONE]\n\n"}
