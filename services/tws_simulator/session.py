"""One client connection: handshake, framing, pacing, dispatch and buffered writes.

A session knows the simulator only as a ``Host`` (the protocol below) and gets its
dispatch table from whoever opens it, so that neither the server nor the handlers
are imported here: they import this module, never the other way round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Protocol

from .account import Account
from .config import SimConfig
from .contracts import Instrument, Universe
from .history import History
from .market import Market
from .options import OptionPricer
from .orders import OrderBook
from .protocol import (
    ProtocolError,
    error_frame,
    frame_length,
    parse_version_range,
    prefix,
    server_time,
    split_fields,
)
from .ticks import Line, quote_frames
from .versions import MAX_VERSION, MIN_VERSION, negotiate

log = logging.getLogger("optbot.tws_simulator")

HANDSHAKE_TIMEOUT = 10.0
KNOWN_REQUEST_IDS = frozenset(range(1, 105))  # ids ib_async's client can send
OUT_OF_DATE = "The socket client is out of date and needs to be upgraded"


class Host(Protocol):
    """What a session and its handlers use of the simulator that accepted the connection
    (``server.Simulator``): its state, read; the client-id registry; order ids."""

    @property
    def config(self) -> SimConfig: ...
    @property
    def connection_time(self) -> str: ...
    @property
    def reply_delay(self) -> float: ...
    @property
    def data_paused(self) -> bool: ...
    @property
    def next_order_id(self) -> int: ...
    @property
    def universe(self) -> Universe: ...
    @property
    def market(self) -> Market: ...
    @property
    def pricer(self) -> OptionPricer: ...
    @property
    def history(self) -> History: ...
    @property
    def account(self) -> Account: ...
    @property
    def book(self) -> OrderBook: ...

    def now(self) -> float: ...
    def claim(self, session: Session, client_id: int) -> bool: ...
    def forget(self, session: Session) -> None: ...
    def mark(self, inst: Instrument) -> float: ...
    def note_order_id(self, order_id: int) -> None: ...


# One request: the session it came on and its fields (message id first).
Handler = Callable[["Session", list[str]], None]


class Session:
    """State of one API connection; the handlers (``handlers.HANDLERS``) act on it."""

    def __init__(
        self,
        sim: Host,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        handlers: Mapping[int, Handler],
    ) -> None:
        self.sim = sim
        self.handlers = handlers
        self.reader = reader
        self.writer = writer
        self.peer = writer.get_extra_info("peername")
        self.client_id: int | None = None
        self.version = 0
        self.lines: dict[int, Line] = {}
        self.forgotten: set[int] = set()  # ticker ids whose cancel needs no error 300
        self.data_type = 1
        self.account_updates = False
        self.position_updates = False
        self.pnl_req_ids: set[int] = set()
        self.skipped_steps = 0
        self._recent: deque[float] = deque()
        self._closed = False

    # --- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the peer leaves, misbehaves or we close it."""
        try:
            await asyncio.wait_for(self._handshake(), HANDSHAKE_TIMEOUT)
            while not self._closed:
                length = frame_length(await self.reader.readexactly(4))
                self._dispatch(split_fields(await self.reader.readexactly(length)))
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        except ProtocolError as e:
            log.warning("protocol error from %s client %s: %s", self.peer, self.client_id, e)
        finally:
            self.close()

    async def _handshake(self) -> None:
        if await self.reader.readexactly(4) != b"API\0":
            raise ProtocolError("handshake must start with API\\0")
        length = frame_length(await self.reader.readexactly(4))
        if length > 256:
            raise ProtocolError("handshake version string too long")
        low, high = parse_version_range(await self.reader.readexactly(length))
        version = negotiate(low, high)
        if version is None:
            # Refused before any version reply, the socket closed: the client never
            # gets a session whose layouts it cannot decode (TWS's pop-up text).
            raise ProtocolError(
                f"{OUT_OF_DATE}: client offers v{low}..{high}, "
                f"simulator speaks v{MIN_VERSION}..{MAX_VERSION}"
            )
        self.version = version
        log.info("handshake from %s: client v%s..%s, speaking v%s", self.peer, low, high, version)
        # TWS answers with its time at the connection: the simulated time (lockstep too)
        self._write(prefix(f"{self.version}\0{server_time(self.sim.now())}\0".encode()))

    def close(self, abort: bool = False) -> None:
        """Close the socket and forget this client (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.sim.forget(self)
        if abort:
            self.writer.transport.abort()
        else:
            self.writer.close()
        log.info("connection closed: client %s from %s", self.client_id, self.peer)

    @property
    def closed(self) -> bool:
        return self._closed

    # --- inbound -----------------------------------------------------------------------

    def _dispatch(self, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except (ValueError, IndexError) as e:
            self.error(-1, 505, "Fatal Error: Unknown message id.")
            raise ProtocolError(f"unparsable message id in {fields[:3]!r}") from e
        if self.client_id is not None and self._over_pace():
            self.error(
                -1,
                100,
                "Max rate of messages per second has been exceeded:"
                f"max={self.sim.config.pacing_limit}",
            )
            return
        handler = self.handlers.get(msg_id)
        if handler is None:
            if msg_id not in KNOWN_REQUEST_IDS:
                self.error(-1, 505, "Fatal Error: Unknown message id.")
                raise ProtocolError(f"unknown message id {msg_id}")
            self.error(
                -1,
                321,
                f"Error validating request: message {msg_id} is not supported by the simulator",
            )
            return
        if self.client_id is None and msg_id != 71:
            self.error(-1, 504, "Not connected")
            return
        try:
            handler(self, fields)
        except (ValueError, IndexError, KeyError) as e:
            log.warning("bad request %s from client %s: %r", msg_id, self.client_id, e)
            self.error(-1, 320, "Server error when reading an API client request.")

    def _over_pace(self) -> bool:
        """IB's 50 messages per (wall) second. Not in lockstep: there is no wall second
        there, and a limit on the host's speed would make a run depend on it."""
        limit = self.sim.config.pacing_limit
        if not limit or self.sim.config.lockstep:
            return False
        now = time.monotonic()
        recent = self._recent
        while recent and now - recent[0] > 1.0:
            recent.popleft()
        if len(recent) >= limit:
            return True
        recent.append(now)
        return False

    # --- outbound ----------------------------------------------------------------------

    def send(self, frames: list[bytes]) -> None:
        """Write many frames with one transport write, after any injected delay."""
        if not frames or self._closed:
            return
        data = b"".join(frames)
        delay = self.sim.reply_delay
        if delay > 0:
            asyncio.get_running_loop().call_later(delay, self._write, data)
        else:
            self._write(data)

    def _write(self, data: bytes) -> None:
        if not self._closed and not self.writer.transport.is_closing():
            self.writer.transport.write(data)

    def error(self, req_id: int, code: int, text: str) -> None:
        """Send an error (msg 4) and log it, one line per event."""
        log.info("error %s to client %s (reqId %s): %s", code, self.client_id, req_id, text)
        self.send([error_frame(self.version, req_id, code, text)])

    def lagging(self) -> bool:
        """True while the client has not drained ``write_buffer_limit`` bytes."""
        size = self.writer.transport.get_write_buffer_size()
        return size > self.sim.config.write_buffer_limit

    def on_step(self) -> None:
        """Push whatever changed on this connection's market-data lines."""
        if not self.lines or self._closed:
            return
        if self.lagging() and not self.sim.config.lockstep:
            # Free-running: a slow client skips steps. Never in lockstep, where what a
            # client sees must not depend on its speed (the driver paces the steps).
            self.skipped_steps += 1
            return
        market, pricer = self.sim.market, self.sim.pricer
        frames: list[bytes] = []
        for line in self.lines.values():
            frames += quote_frames(line, market, pricer)
        self.send(frames)

    def drop_lines(self) -> None:
        """Forget all subscriptions (connectivity restored - data lost, error 1101)."""
        self.forgotten.update(self.lines)
        self.lines.clear()
