"""Control channel for a running simulator: newline-delimited JSON over TCP on 127.0.0.1.

Request:  {"command": "connectivity_lost"}            (one JSON object per line)
Reply:    {"ok": true, "result": ...} or {"ok": false, "error": "..."}

Commands: status, drop_all, connectivity_lost, connectivity_restored
(data_maintained: bool), restart (downtime: float), delay (ms: float), malformed,
regime (name: str), step (n: int).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import Simulator

log = logging.getLogger("optbot.tws_simulator")
MAX_LINE = 64 * 1024


class ControlServer:
    """Serves fault commands against one Simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self._server: asyncio.Server | None = None
        self.port: int | None = None

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_LINE)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                reply = await self.execute(line)
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def execute(self, line: bytes) -> dict[str, Any]:
        """Run one JSON command; failures become {"ok": false} replies, never crashes."""
        try:
            request = json.loads(line)
            command = str(request.pop("command"))
            result = await self.run(command, **request)
        except Exception as e:  # a bad command must not take the simulator down
            return {"ok": False, "error": f"{type(e).__name__}: {e}"}
        return {"ok": True, "result": result}

    async def run(self, command: str, **args: Any) -> object:
        """Dispatch one command to the Simulator's fault API."""
        sim = self.sim
        log.info("control command %s %s", command, args)
        if command == "restart":
            await sim.restart(args.get("downtime"))
            return sim.port
        simple: dict[str, Callable[[], object]] = {
            "status": lambda: sim.status(),
            "drop_all": lambda: sim.drop_all(),
            "connectivity_lost": lambda: sim.connectivity_lost(),
            "connectivity_restored": lambda: sim.connectivity_restored(
                bool(args.get("data_maintained", True))
            ),
            "delay": lambda: sim.set_reply_delay(float(args.get("ms", 0))),
            "malformed": lambda: sim.send_malformed(),
            "regime": lambda: sim.force_regime(str(args["name"])).value,
            "step": lambda: sim.step(int(args.get("n", 1))),
        }
        if command not in simple:
            raise ValueError(f"unknown command {command!r}; known: restart, {', '.join(simple)}")
        return simple[command]()


def send_fault(
    host: str, port: int, command: str, timeout: float = 5.0, **args: Any
) -> dict[str, Any]:
    """Send one control command to a running simulator and return its JSON reply.

    Blocking on purpose: it is called from the CLI (``optbot sim fault ...``).
    """
    payload = json.dumps({"command": command, **args}).encode() + b"\n"
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(payload)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
    reply: dict[str, Any] = json.loads(buf or b'{"ok": false, "error": "no reply"}')
    return reply
