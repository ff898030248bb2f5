"""The simulator's control port, from the driver: one persistent connection, JSON lines.

The backtest calls ``advance`` thousands of times a session, so it keeps one connection
open instead of the CLI's connection per command (``optbot sim fault``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

CONTROL_TIMEOUT_S = 60.0  # one advance over a closed market is one step; a long one is many


class ControlError(RuntimeError):
    """The simulator refused a command or did not answer."""


class SimControl:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(
        self, timeout: float = 60.0, alive: Callable[[], str | None] = lambda: None
    ) -> None:
        """Connect, retrying while the simulator process starts (bounded); ``alive``
        names a dead process, which ends the wait at once."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                self._reader, self._writer = await asyncio.open_connection(
                    self._host, self._port, limit=1 << 20
                )
                return
            except OSError as exc:
                dead = alive()
                if dead:
                    raise ControlError(dead) from exc
                if loop.time() > deadline:
                    raise ControlError(
                        f"simulator control port {self._host}:{self._port} did not open "
                        f"within {timeout:.0f}s: {exc}"
                    ) from exc
                await asyncio.sleep(0.1)  # host time: waiting for a process to listen

    async def call(self, command: str, **args: Any) -> Any:
        if self._reader is None or self._writer is None:
            raise ControlError("not connected")
        self._writer.write(json.dumps({"command": command, **args}).encode() + b"\n")
        await self._writer.drain()
        try:
            line = await asyncio.wait_for(self._reader.readline(), CONTROL_TIMEOUT_S)
        except TimeoutError as exc:
            raise ControlError(
                f"simulator: no answer to {command} in {CONTROL_TIMEOUT_S}s"
            ) from exc
        if not line:
            raise ControlError(f"simulator closed the control connection during {command}")
        reply = json.loads(line)
        if not reply.get("ok"):
            raise ControlError(f"simulator refused {command} {args}: {reply.get('error')}")
        return reply.get("result")

    async def advance(self, to: float) -> tuple[float, bool]:
        """Step the simulated market to ``to`` (or the next open); its time and whether open."""
        result = await self.call("advance", to=to)
        return float(result["now"]), bool(result["open"])

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
