"""How a planned answer goes out: after the first-token latency, at the profile's pace, whole or cut.

The pacing follows absolute deadlines: token ``i`` is due at ``ttft + i / tokens_per_second``, and the
end of a stream of ``n`` tokens, like the end-of-sequence token it stands for, at ``ttft + n /
tokens_per_second``. So the throughput a client measures (completion tokens over the time after the
first token) is the drawn one, late wake-ups aside, and a non-streamed answer of the same plan takes as
long as the stream.
"""

from __future__ import annotations

import asyncio

from tokenmux.asgi import Receive, Send, send_bytes
from tokenmux.simulator.answer import Answer, AnswerSpec
from tokenmux.simulator.connection import ClientWatch, drop_connection
from tokenmux.simulator.fate import Fate, Outcome
from tokenmux.simulator.profile import Behaviour
from tokenmux.simulator.wire import ReplyContext, WireFormat

# A stream wakes at most this often and sends every token that is due, so a fast profile sends a few
# tokens per write instead of spending its time in sleep calls.
_MIN_SLEEP_S = 0.005
_EARLY_S = 0.001  # a timer may fire this much early; a token that close to due goes out now


async def send_completion(
    send: Send,
    receive: Receive,
    wire: WireFormat,
    answer: Answer,
    ctx: ReplyContext,
    fate: Fate,
    behaviour: Behaviour,
) -> None:
    """Send a whole answer once its first-token latency and generation time have passed."""
    watch = ClientWatch(receive)
    try:
        if behaviour.drop_after_chunks is not None:
            # A non-streamed answer breaks the only way it can: the connection closes without a response.
            if fate.ttft_s > 0 and await watch.sleep(fate.ttft_s):
                return
            await drop_connection(send, receive)
            return
        delay = fate.ttft_s + answer.steps * fate.seconds_per_token
        if delay > 0 and await watch.sleep(delay):
            return
    finally:
        watch.close()
    body = wire.malformed_body() if fate.outcome is Outcome.MALFORMED else wire.completion(answer, ctx)
    await send_bytes(send, 200, body, headers=[(b"x-request-id", ctx.response_id.encode())])


async def send_stream(
    send: Send,
    receive: Receive,
    wire: WireFormat,
    answer: Answer,
    ctx: ReplyContext,
    spec: AnswerSpec,
    fate: Fate,
    behaviour: Behaviour,
) -> None:
    """Send the stream on the profile's schedule: headers and the first token after the first-token
    latency, token ``i`` at ``ttft + i / tokens_per_second``; every token already due goes in one write.

    With ``drop_after_chunks`` the connection closes after that many content chunks (or after the last
    one, if the answer is shorter): the finish chunk and ``[DONE]`` never come."""
    frames = wire.stream(answer, ctx, spec)
    if fate.outcome is Outcome.MALFORMED:
        frames.head.insert(0, wire.malformed_frame())
    loop = asyncio.get_running_loop()
    first_token_at = loop.time() + fate.ttft_s
    watch = ClientWatch(receive)
    try:
        if fate.ttft_s > 0 and await watch.sleep(fate.ttft_s):
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", wire.stream_content_type),
                    (b"cache-control", b"no-cache"),
                    (b"x-request-id", ctx.response_id.encode()),
                ],
            }
        )
        interval = fate.seconds_per_token
        drop_after = behaviour.drop_after_chunks
        steps = frames.steps
        pending = frames.head
        sent = 0
        step = 0
        while step < len(steps):
            horizon = loop.time() + _EARLY_S
            while step < len(steps) and (interval == 0 or first_token_at + step * interval <= horizon):
                for frame in steps[step]:
                    if drop_after is not None and sent >= drop_after:
                        await _send_and_drop(send, receive, pending)
                        return
                    pending.append(frame)
                    sent += 1
                step += 1
            if step < len(steps):
                await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
                pending = []
                pause = max(first_token_at + step * interval - loop.time(), _MIN_SLEEP_S)
                if await watch.sleep(pause):
                    return
        end_at = first_token_at + len(steps) * interval
        if drop_after is None and interval and end_at > loop.time():
            # The last token goes out when due; the end one token time later.
            await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
            pending = []
            if await watch.sleep(end_at - loop.time()):
                return
    finally:
        watch.close()
    if drop_after is not None:
        await _send_and_drop(send, receive, pending)
        return
    pending.extend(frames.tail)
    await send({"type": "http.response.body", "body": b"".join(pending)})


async def _send_and_drop(send: Send, receive: Receive, frames: list[bytes]) -> None:
    await send({"type": "http.response.body", "body": b"".join(frames), "more_body": True})
    await drop_connection(send, receive)
