"""Garbage in: raw sockets sending bad handshakes and frames never take the simulator down."""

from __future__ import annotations

import asyncio
import struct

from tws_sim_helpers import Connect

from services.tws_simulator import Simulator


def _frame(*fields: str) -> bytes:
    payload = "".join(f + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


async def _raw(sim: Simulator, data: bytes, handshake: bool = True) -> bytes:
    """Send bytes (after a valid handshake + startApi if asked); return what came back."""
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    if handshake:
        writer.write(b"API\0" + struct.pack(">I", 9) + b"v157..178")
        writer.write(_frame("71", "2", "99", ""))
    writer.write(data)
    await writer.drain()
    out = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(1 << 16), 0.3):
            out += chunk
    except TimeoutError:
        pass  # the connection may legitimately stay open after an error reply
    finally:
        writer.close()
    return out


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    out = b""
    while chunk := await reader.read(1 << 16):
        out += chunk
    return out


async def test_bad_handshake_when_received_closes_socket(sim: Simulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n")
    assert await asyncio.wait_for(_read_until_closed(reader), 2.0) == b""
    writer.close()


async def test_absurd_frame_length_when_received_closes_socket(sim: Simulator) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(b"API\0" + struct.pack(">I", 9) + b"v157..178" + struct.pack(">I", 2**31))
    data = await asyncio.wait_for(_read_until_closed(reader), 2.0)
    assert data.startswith(struct.pack(">I", len(b"178\0") + 22)) or b"178" in data
    writer.close()


async def test_unknown_and_malformed_messages_when_received_answer_errors(
    sim: Simulator, connect: Connect
) -> None:
    data = await _raw(sim, _frame("9", "8", "notanumber") + _frame("12345", "1"))
    assert b"\x00320\x00" in data or b"\x00505\x00" in data
    client = await connect(sim, client_id=1)  # other clients are still served
    assert await client.ib.reqCurrentTimeAsync()


async def test_garbage_when_flooded_simulator_keeps_serving(
    sim: Simulator, connect: Connect
) -> None:
    junk = [
        b"\x00\x00\x00\x05\xff\xfe\xfd\xfc\xfb",
        b"API\0" + b"\xff" * 64,
        _frame("1", "11"),
        _frame("3", "1"),
        _frame("abc"),
    ]
    await asyncio.gather(*(_raw(sim, j, handshake=i % 2 == 0) for i, j in enumerate(junk)))
    client = await connect(sim)
    assert client.ib.isConnected() and await client.ib.reqCurrentTimeAsync()
