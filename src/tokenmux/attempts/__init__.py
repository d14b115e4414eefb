"""Sending one planned request to its endpoints until one answers: policy, apart from the server.

``loop``: ``Attempts``, the one loop for streamed and whole answers; it asks ``routing.decision`` about
every failure and records every generation. ``generation``: the bookkeeping of one request (its attempt
records). ``answer``: what the loop needs of an answer, and the whole (non-streamed) one. ``delivery``:
the streamed one, from the provider's chunks, event batches or events to the client's frames. ``running``:
the streams being delivered, journaled so that a crash still bills them.

The server gives it an ``Outlet`` to write a stream to (``server/outlet.py``: ASGI, keep-alive comments)
and the client protocol's ``StreamEncoder``; nothing here knows HTTP.
"""

from tokenmux.attempts.delivery import Outlet, StreamEncoder
from tokenmux.attempts.generation import Generation, Served
from tokenmux.attempts.loop import Attempts

__all__ = ["Attempts", "Generation", "Outlet", "Served", "StreamEncoder"]
