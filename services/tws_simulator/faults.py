"""Control channel for a running simulator: newline-delimited JSON over TCP.

It is unauthenticated, so it binds ``SimConfig.control_host`` (127.0.0.1 unless
configured otherwise), never the API host that compose opens to every container.

Request:  {"command": "connectivity_lost"}            (one JSON object per line)
Reply:    {"ok": true, "result": ...} or {"ok": false, "error": "..."}

Commands: status, drop_all, connectivity_lost, connectivity_restored
(data_maintained: bool), restart (downtime: 0-30 s), delay (ms: 0-10000), malformed,
regime (name: trending_up, trending_down, choppy or schedule), step (n: 1-1000),
advance (to: epoch seconds; lockstep only, not before now, at most 10 days ahead).
Every argument is checked against its bounds: an unknown argument, a wrong type or
an out-of-range value is refused with a clear error and changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import socket
from collections.abc import Callable
from typing import Any, Protocol

from .config import SimConfig
from .regimes import Regime

log = logging.getLogger("optbot.tws_simulator")
MAX_LINE = 64 * 1024
MAX_DELAY_MS = 10_000.0  # beyond this every client times out: use drop_all instead
MAX_DOWNTIME_S = 30.0
MAX_STEPS = 1_000  # steps run inline on the event loop: keep one command well under 1 s

ARGS: dict[str, frozenset[str]] = {
    "status": frozenset(),
    "drop_all": frozenset(),
    "connectivity_lost": frozenset(),
    "connectivity_restored": frozenset({"data_maintained"}),
    "restart": frozenset({"downtime"}),
    "delay": frozenset({"ms"}),
    "malformed": frozenset(),
    "regime": frozenset({"name"}),
    "step": frozenset({"n"}),
    "advance": frozenset({"to"}),
}


class FaultArgumentError(ValueError):
    """A control command argument that is missing, of the wrong type or out of range."""


def number(args: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    """A finite JSON number within [lo, hi] (booleans and strings are refused)."""
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultArgumentError(f"{key} must be a number, got {value!r}")
    if not math.isfinite(value) or not lo <= value <= hi:
        raise FaultArgumentError(f"{key} must be between {lo:g} and {hi:g}, got {value!r}")
    return float(value)


def integer(args: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    """A whole JSON number within [lo, hi]."""
    value = number(args, key, default, lo, hi)
    if value != int(value):
        raise FaultArgumentError(f"{key} must be a whole number, got {args[key]!r}")
    return int(value)


def flag(args: dict[str, Any], key: str, default: bool) -> bool:
    """A JSON boolean (the CLI turns ``key=false`` into one); "false" is not True."""
    value = args.get(key, default)
    if not isinstance(value, bool):
        raise FaultArgumentError(f"{key} must be true or false, got {value!r}")
    return value


def text(args: dict[str, Any], key: str) -> str:
    """A required JSON string."""
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise FaultArgumentError(f"{key} is required and must be a string, got {value!r}")
    return value


def _required(args: dict[str, Any], key: str) -> Any:
    if key not in args:
        raise FaultArgumentError(f"{key} is required")
    return args[key]


def check_names(command: str, args: dict[str, Any]) -> None:
    """Refuse unknown commands and arguments before anything runs."""
    if command not in ARGS:
        raise ValueError(f"unknown command {command!r}; known: {', '.join(ARGS)}")
    unknown = sorted(set(args) - ARGS[command])
    if unknown:
        allowed = ", ".join(sorted(ARGS[command])) or "none"
        raise FaultArgumentError(f"{command}: unknown argument(s) {unknown}; allowed: {allowed}")


class Target(Protocol):
    """What the control channel steers (``server.Simulator``, which owns this channel:
    a protocol here, so that this module does not import the server back)."""

    @property
    def config(self) -> SimConfig: ...
    @property
    def port(self) -> int: ...

    async def restart(self, downtime: float | None = None) -> None: ...
    def status(self) -> dict[str, object]: ...
    def drop_all(self) -> int: ...
    def connectivity_lost(self) -> None: ...
    def connectivity_restored(self, data_maintained: bool = True) -> None: ...
    def set_reply_delay(self, ms: float) -> None: ...
    def send_malformed(self) -> None: ...
    def force_regime(self, name: str | Regime) -> Regime: ...
    def step(self, n: int = 1) -> None: ...
    def advance_to(self, to: float) -> dict[str, object]: ...


class ControlServer:
    """Serves fault commands against one simulator."""

    def __init__(self, sim: Target) -> None:
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
        check_names(command, args)
        if command == "restart":
            default = sim.config.restart_downtime
            await sim.restart(number(args, "downtime", default, 0.0, MAX_DOWNTIME_S))
            return sim.port
        simple: dict[str, Callable[[], object]] = {
            "status": lambda: sim.status(),
            "drop_all": lambda: sim.drop_all(),
            "connectivity_lost": lambda: sim.connectivity_lost(),
            "connectivity_restored": lambda: sim.connectivity_restored(
                flag(args, "data_maintained", True)
            ),
            "delay": lambda: sim.set_reply_delay(number(args, "ms", 0.0, 0.0, MAX_DELAY_MS)),
            "malformed": lambda: sim.send_malformed(),
            "regime": lambda: sim.force_regime(text(args, "name")).value,
            "step": lambda: sim.step(integer(args, "n", 1, 1, MAX_STEPS)),
            "advance": lambda: sim.advance_to(_required(args, "to")),
        }
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
