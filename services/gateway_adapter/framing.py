"""Framing of the TWS byte stream for ib_async's client: linear, and in slices.

ib_async 2.1 handles each socket read in one go and cuts every message off the front
of its buffer (``self._data = self._data[msgEnd:]``), copying the rest each time:

- a read holding n messages costs O(n^2) bytes copied; under a quote flood one read
  holds thousands of messages, and that copying was the adapter's largest own cost;
- nothing else runs on the event loop until the whole read is decoded, so a burst
  (every option line moving at once) holds back the publishing of the quotes at its
  front and any order command behind it.

This handler walks the buffer by offset and decodes about ``slice_messages``
messages per event-loop turn; a slice ends between tickers, never inside one.
Between slices the loop runs the publisher and the command handlers, and reading
from the socket is paused until the backlog is decoded (TCP flow control pushes
back on the sender, as ib_async's synchronous handling does). The decoder gets
exactly the fields the library would give it, and each slice looks to ib_async like
one TCP read (``tcpDataArrived`` / ``tcpDataProcessed`` around it, so
``pendingTickersEvent`` fires per slice). The handshake and the first messages,
until the API is ready, still go through the library's own method.
"""

from __future__ import annotations

import asyncio
import logging
from struct import unpack_from
from typing import Any

_HEADER = 4
# What the handler relies on; a future ib_async without them keeps its own framing.
_NEEDS = (
    "_onSocketHasData",
    "_data",
    "_apiReady",
    "_serverVersion",
    "_numMsgRecv",
    "_numBytesRecv",
    "_tcpDataArrived",
    "_tcpDataProcessed",
    "decoder",
    "conn",
    "connState",
    "CONNECTED",
)


class SlicedFraming:
    """Replaces an ib_async ``Client``'s socket data handler; see the module doc."""

    def __init__(self, client: Any, slice_messages: int) -> None:
        self.client = client
        self.slice = slice_messages
        self.original = client._onSocketHasData
        self.slices = 0
        self.pauses = 0
        self._buf = b""
        self._pos = 0
        self._owner: Any = None  # the transport the buffered bytes came from
        self._scheduled = False
        self._paused = False
        self._log = client._logger

    def install(self) -> None:
        conn = self.client.conn
        conn.hasData -= self.original
        conn.hasData += self.on_data
        self.client._onSocketHasData = self.on_data

    @property
    def backlog(self) -> int:
        """Bytes received and not yet decoded."""
        return len(self._buf) - self._pos

    def on_data(self, data: bytes) -> None:
        client = self.client
        transport = client.conn.transport
        if not (client._serverVersion and client._apiReady):
            self._reset(transport)
            self.original(data)
            return
        client._numBytesRecv += len(data)
        if self._owner is not transport:
            self._reset(transport)
        if client._data:
            # ib_async's own handler ran until the API was ready and kept the start of
            # a message it had not received whole: it comes first.
            self._buf = self._buf[self._pos :] + client._data
            self._pos = 0
            client._data = b""
        if self._pos:
            self._buf = self._buf[self._pos :] + data
            self._pos = 0
        else:
            self._buf = self._buf + data if self._buf else data
        if not self._scheduled:
            self._run()

    def _reset(self, transport: Any) -> None:
        self._buf, self._pos, self._owner = b"", 0, transport
        self._paused = False

    def _run(self) -> None:
        self._scheduled = False
        client = self.client
        transport = client.conn.transport
        if not self._live(transport) or transport is not self._owner:
            self._reset(transport)  # disconnected (or reconnected) since: drop the rest
            return
        buf, pos = self._buf, self._pos
        size = len(buf)
        if size - pos <= _HEADER:
            self._resume(transport)
            return
        if client._tcpDataArrived:
            client._tcpDataArrived()
        pos = self._decode_slice(buf, pos, size, transport)
        self._pos = pos
        self.slices += 1
        if client._tcpDataProcessed:
            client._tcpDataProcessed()
        if not self._live(transport):
            self._reset(None)  # what the closed connection still had is of no use
            return
        if self._complete_message_waiting():
            self._scheduled = True
            self._pause(transport)
            asyncio.get_running_loop().call_soon(self._run)
        else:
            self._resume(transport)

    def _decode_slice(self, buf: bytes, pos: int, size: int, transport: Any) -> int:
        """Hand the decoder one slice of messages from ``pos``; returns the new offset."""
        client = self.client
        interpret = client.decoder.interpret
        debug = self._log.isEnabledFor(logging.DEBUG)
        limit, n, last_ticker = self.slice, 0, None
        while size - pos > _HEADER and n < 2 * limit:
            end = pos + _HEADER + unpack_from(">I", buf, pos)[0]
            if end > size:
                break  # the rest of this message comes with the next read
            fields = buf[pos + _HEADER : end].decode(errors="backslashreplace").split("\0")
            fields.pop()  # the empty string after the last NUL
            if n >= limit:  # past the slice: only finish the ticker in hand
                ticker = ticker_id(fields)
                if ticker is None or ticker != last_ticker:
                    break
            pos = end
            n += 1
            client._numMsgRecv += 1
            if debug:
                self._log.debug("<<< %s", ",".join(fields))
            interpret(fields)
            if not self._live(transport):
                break  # disconnected while handling: the rest is dropped, as ib_async does
            if n >= limit:
                last_ticker = ticker_id(fields)
        return pos

    def _live(self, transport: Any) -> bool:
        """Still the connection the buffer belongs to (ib_async's reset() on disconnect
        sets connState at once; the transport goes a loop turn later)."""
        client = self.client
        return (
            transport is not None
            and client.conn.transport is transport
            and (client.connState == client.CONNECTED)
        )

    def _complete_message_waiting(self) -> bool:
        left = len(self._buf) - self._pos
        if left <= _HEADER:
            return False
        length: int = unpack_from(">I", self._buf, self._pos)[0]
        return _HEADER + length <= left

    def _pause(self, transport: Any) -> None:
        if not self._paused:
            self._paused = True
            self.pauses += 1
            transport.pause_reading()

    def _resume(self, transport: Any) -> None:
        if self._paused:
            self._paused = False
            if transport is not None and not transport.is_closing():
                transport.resume_reading()


# Market-data messages and where their request (ticker) id stands: tickPrice, tickSize,
# tickGeneric and tickString carry a version field first; tickOptionComputation does not.
_TICKER_ID_AT = {"1": 2, "2": 2, "45": 2, "46": 2, "21": 1}


def ticker_id(fields: list[str]) -> str | None:
    """The request id of a market-data message, else None.

    A slice never ends inside one ticker's run of messages: IB sends a quote's bid and
    ask as separate ticks, and cutting between them would publish the new bid with the
    old ask (a torn, possibly crossed quote)."""
    at = _TICKER_ID_AT.get(fields[0]) if fields else None
    return fields[at] if at is not None and len(fields) > at else None


def install_sliced_framing(client: Any, slice_messages: int) -> SlicedFraming | None:
    """Give ``client`` (an ib_async ``Client``) our framing; None (nothing changed)
    when the client is not shaped as this module expects."""
    if not all(hasattr(client, name) for name in _NEEDS):
        return None
    framing = SlicedFraming(client, slice_messages)
    framing.install()
    return framing
