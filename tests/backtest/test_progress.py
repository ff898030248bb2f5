"""The progress line says where the run is, and stays short in a log."""

from __future__ import annotations

import datetime as dt
import io

from optbot.backtest.progress import Progress, Snapshot, render

OPEN = dt.datetime(2025, 3, 3, 14, 30, tzinfo=dt.UTC).timestamp()  # 09:30 New York


def _snap(wall: float = 10.0) -> Snapshot:
    return Snapshot(2, 5, OPEN + 3600, 3600.0, wall, 7, -12.5)


def test_the_line_names_session_time_fills_pnl_and_speed() -> None:
    line = render(_snap())
    assert line.startswith("session 2/5 2025-03-03 10:30:00 ET")
    assert "fills 7" in line and "P&L -12.50" in line and "speed 360x" in line


def test_a_terminal_redraws_one_line_a_log_gets_whole_lines() -> None:
    tty = io.StringIO()
    p = Progress(tty, tty=True)
    p.show(_snap())
    p.final(_snap(20.0), "stopped")
    assert tty.getvalue().count("\r") == 2 and tty.getvalue().endswith("\nstopped\n")

    log = io.StringIO()
    p = Progress(log, tty=False)
    assert p.due()
    p.show(_snap())
    assert not p.due()  # the next line only after LOG_EVERY_S
    assert log.getvalue().count("\n") == 1
