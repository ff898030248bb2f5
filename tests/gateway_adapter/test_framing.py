"""Sliced framing of the TWS byte stream, over a real socket with ib_async's own Client.

The server side writes length-prefixed frames in arbitrary pieces; the client is
ib_async's ``Client`` (logged on, API ready) whose decoder records what it is given.
What the decoder sees must be exactly the messages sent, in order, whatever the
pieces, and a burst must be decoded over several event-loop turns with reading
paused meanwhile. The whole adapter suite also runs with this framing (the default).
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from ib_async.client import Client

from services.gateway_adapter.framing import SlicedFraming, install_sliced_framing
from tests.helpers import wait_until


def frame(fields: list[str]) -> bytes:
    body = "".join(f"{f}\0" for f in fields).encode()
    return struct.pack(">I", len(body)) + body


def messages(n: int, seed: int = 7) -> list[list[str]]:
    rng = random.Random(seed)
    return [
        [
            "1",
            "6",
            str(rng.randrange(1000)),
            "1",
            f"{rng.random() * 500:.2f}",
            "3",
            "0",
            "é" * (i % 3),
        ]
        for i in range(n)
    ]


@dataclass
class Wire:
    """A logged-on ib_async Client on a real socket, and the server end of it."""

    client: Client
    framing: SlicedFraming
    writer: asyncio.StreamWriter
    seen: list[list[str]] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)  # "arrived" / "processed", in order
    slice_of: list[int] = field(default_factory=list)  # per message seen: its slice
    loop_turns_seen: list[int] = field(default_factory=list)
    turns: int = 0


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    accepted: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()

    async def on_connect(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.set_result(w)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = Client(None)  # the decoder is replaced below; no wrapper is reached
    framing = install_sliced_framing(client, 50)
    assert framing is not None
    await client.conn.connectAsync("127.0.0.1", port)
    client._serverVersion, client._apiReady, client.connState = 178, True, Client.CONNECTED
    w = Wire(client, framing, await accepted)

    def record(fields: list[str]) -> None:
        w.seen.append(fields)
        w.loop_turns_seen.append(w.turns)
        w.slice_of.append(w.reads.count("arrived"))

    client.decoder.interpret = record  # type: ignore[method-assign]
    # The wrapper's per-read hooks (ticker times, pendingTickersEvent) run per slice.
    client._tcpDataArrived = lambda: w.reads.append("arrived")
    client._tcpDataProcessed = lambda: w.reads.append("processed")

    async def count_turns() -> None:  # proves other tasks run between slices
        while True:
            w.turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(count_turns())
    yield w
    ticker.cancel()
    client.conn.disconnect()
    w.writer.close()
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_stream_when_written_in_random_pieces_decodes_every_message_in_order(
    wire: Wire, seed: int
) -> None:
    sent = messages(1500, seed)
    data = b"".join(frame(m) for m in sent)
    rng = random.Random(seed)
    pos = 0
    while pos < len(data):  # pieces cut anywhere: inside a length prefix, inside a body
        n = rng.choice([1, 3, 4, 5, 17, 700, 9000, 70_000])
        wire.writer.write(data[pos : pos + n])
        pos += n
        if rng.random() < 0.3:
            await wire.writer.drain()
            await asyncio.sleep(0)
    await wire.writer.drain()
    await wait_until(lambda: len(wire.seen) == len(sent), timeout=10, what="every message")
    assert wire.seen == sent
    assert wire.client._numMsgRecv == len(sent)
    assert wire.framing.backlog == 0


async def test_burst_when_larger_than_a_slice_is_decoded_over_several_loop_turns(
    wire: Wire,
) -> None:
    sent = messages(1000)
    wire.writer.write(b"".join(frame(m) for m in sent))  # one burst, read at once
    await wire.writer.drain()
    await wait_until(lambda: len(wire.seen) == len(sent), timeout=10, what="the burst")
    assert wire.seen == sent
    turns = wire.loop_turns_seen
    assert max(turns) - min(turns) >= len(sent) // 50 - 1  # other tasks ran in between
    assert wire.framing.slices >= len(sent) // 50 and wire.framing.pauses >= 1
    assert wire.reads == ["arrived", "processed"] * wire.framing.slices
    assert not wire.framing._paused  # reading resumed once the backlog was decoded


async def test_burst_when_tickers_send_runs_of_ticks_never_splits_a_run_across_slices(
    wire: Wire,
) -> None:
    # IB sends a quote as a run of ticks (bid, ask, sizes, greeks). Cutting a run would
    # publish the new bid with the old ask: a torn, possibly crossed quote.
    sent: list[list[str]] = []
    for req in range(120):
        for tick in range(7):
            sent.append(["1", "6", str(req), str(tick), f"{100 + req}.0{tick}", "5", "0"])
        sent.append(
            ["21", str(req), "13", "0", "0.2", "0.5", "1", "0", "0.1", "0.2", "-0.1", "100"]
        )
    wire.writer.write(b"".join(frame(m) for m in sent))
    await wire.writer.drain()
    await wait_until(lambda: len(wire.seen) == len(sent), timeout=10, what="the burst")
    assert wire.seen == sent
    slices_of_ticker: dict[str, set[int]] = {}
    for fields, slice_no in zip(wire.seen, wire.slice_of, strict=True):
        ticker = fields[1] if fields[0] == "21" else fields[2]
        slices_of_ticker.setdefault(ticker, set()).add(slice_no)
    assert all(len(slices) == 1 for slices in slices_of_ticker.values()), slices_of_ticker
    assert wire.framing.slices >= len(sent) // 100  # still sliced


async def test_handover_when_api_gets_ready_mid_read_keeps_the_partial_message(
    wire: Wire,
) -> None:
    # Until the API is ready ib_async's own handler frames the stream; the read that
    # makes it ready (nextValidId + managedAccounts) may end inside the next message,
    # which ib_async keeps in its buffer. Our framing must start from those bytes.
    wire.client._apiReady = False
    ready = [["9", "1", "100"], ["15", "1", "DU1234567"]]
    sent = messages(300)
    data = b"".join(frame(m) for m in sent)
    wire.writer.write(b"".join(frame(m) for m in ready) + data[:7])  # cut in a body
    await wire.writer.drain()
    await wait_until(lambda: wire.client._apiReady, timeout=5, what="API ready")
    wire.writer.write(data[7:])
    await wire.writer.drain()
    await wait_until(lambda: len(wire.seen) == len(ready) + len(sent), what="every message")
    assert wire.seen == ready + sent
    assert wire.framing.backlog == 0 and wire.client._data == b""


async def test_disconnect_when_a_handler_disconnects_mid_burst_drops_the_rest(
    wire: Wire,
) -> None:
    sent = messages(400)
    record = wire.client.decoder.interpret

    def disconnect_at_120(fields: list[str]) -> None:
        record(fields)
        if len(wire.seen) == 120:
            wire.client.disconnect()  # ib_async's own: resets the client at once

    wire.client.decoder.interpret = disconnect_at_120  # type: ignore[method-assign]
    wire.writer.write(b"".join(frame(m) for m in sent))
    await wire.writer.drain()
    await wait_until(lambda: wire.client.conn.transport is None, timeout=5, what="closed")
    await asyncio.sleep(0.05)  # deliberate: any wrongly scheduled slice would run now
    assert wire.seen == sent[:120]
    assert wire.framing.backlog == 0


async def test_install_when_client_is_not_shaped_as_expected_changes_nothing() -> None:
    class Other:
        pass

    assert install_sliced_framing(Other(), 50) is None
