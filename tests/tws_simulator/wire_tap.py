"""A loopback TCP relay that records every byte the simulator sends to a client.

The layout check reads the simulator's own bytes, framed here, so it depends on
neither the simulator's encoder nor ib_async's reader.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct


class WireTap:
    """Relays 127.0.0.1:<port> to the simulator and keeps the server-to-client stream."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.downstream: list[bytearray] = []  # one buffer per relayed connection
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _on_client(
        self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter
    ) -> None:
        s_reader, s_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        record = bytearray()
        self.downstream.append(record)
        pumps = [
            asyncio.create_task(_pump(c_reader, s_writer, None)),
            asyncio.create_task(_pump(s_reader, c_writer, record)),
        ]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        for writer in (c_writer, s_writer):
            writer.close()

    def messages(self, connection: int = 0) -> list[list[str]]:
        """The messages (fields) sent on one connection, after the handshake reply."""
        frames = split_frames(bytes(self.downstream[connection]))
        return [f.decode().split("\0")[:-1] for f in frames[1:]]


async def _pump(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bytearray | None
) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            if record is not None:
                record += chunk
            writer.write(chunk)
            await writer.drain()


def split_frames(data: bytes) -> list[bytes]:
    """4-byte big-endian length prefixed payloads; a torn tail is an error."""
    out, pos = [], 0
    while pos < len(data):
        if pos + 4 > len(data):
            raise AssertionError(f"torn length header at byte {pos}")
        (length,) = struct.unpack_from(">I", data, pos)
        if pos + 4 + length > len(data):
            raise AssertionError(f"torn frame at byte {pos}")
        out.append(data[pos + 4 : pos + 4 + length])
        pos += 4 + length
    return out
