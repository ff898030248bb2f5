"""The backtest's progress line: session, simulated time, fills, P&L, speed.

On a terminal one line is redrawn in place (at most a few times a second); into a file
or a CI log a full line is printed every ``LOG_EVERY_S`` so the log stays short.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from shared.market_calendar import NEW_YORK

TTY_EVERY_S = 0.25
LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class Snapshot:
    """Where the run is: the driver's own numbers and the ledger's (strategy:pnl)."""

    session: int  # 1-based
    sessions: int
    sim_t: float  # epoch seconds, simulated
    sim_seconds: float  # simulated market time run so far (overnight gaps excluded)
    wall_seconds: float
    fills: int
    pnl: float | None  # equity minus starting cash; None before the ledger's first write

    @property
    def speed(self) -> float:
        return self.sim_seconds / self.wall_seconds if self.wall_seconds > 0 else 0.0


def render(s: Snapshot) -> str:
    at = dt.datetime.fromtimestamp(s.sim_t, NEW_YORK)
    pnl = "-" if s.pnl is None else f"{s.pnl:+,.2f}"
    return (
        f"session {s.session}/{s.sessions} {at:%Y-%m-%d %H:%M:%S} ET  "
        f"fills {s.fills}  P&L {pnl}  speed {s.speed:,.0f}x  "
        f"wall {int(s.wall_seconds // 60)}m{s.wall_seconds % 60:04.1f}s"
    )


class Progress:
    """Prints snapshots, rate-limited; ``final`` always prints and ends the line."""

    def __init__(self, out: TextIO | None = None, *, tty: bool | None = None) -> None:
        self._out = out or sys.stderr
        self._tty = self._out.isatty() if tty is None else tty
        self._every = TTY_EVERY_S if self._tty else LOG_EVERY_S
        self._last = float("-inf")
        self._width = 0

    def due(self) -> bool:
        return time.monotonic() - self._last >= self._every

    def show(self, snap: Snapshot) -> None:
        self._last = time.monotonic()
        line = render(snap)
        if self._tty:
            pad = " " * max(0, self._width - len(line))
            self._out.write("\r" + line + pad)
            self._width = len(line)
        else:
            self._out.write(line + "\n")
        self._out.flush()

    def final(self, snap: Snapshot, note: str = "") -> None:
        self.show(snap)
        if self._tty:
            self._out.write("\n")
        if note:
            self._out.write(note + "\n")
        self._out.flush()
