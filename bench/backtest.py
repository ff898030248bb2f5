"""Backtest speed: one full NYSE session (6.5 h) through the lockstep, simulated s per wall s.

Runs ``optbot backtest --days 1`` as a user would (its own private Redis, the simulator
and the services as processes) with the default watchlist and strategy, and reads the
figures from its summary.json. Goal (issue #19): >= 130x, a session in <= 3 minutes on
the 2-core machine. The baseline is real time (1 simulated second per second).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SESSION = "2025-03-03"  # a Monday, a full 6.5-hour session
GOAL = 130.0
TIMEOUT_S = 1800.0


def _run(out: Path) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    proc = subprocess.run(
        [sys.executable, "-m", "optbot.cli", "backtest", "--days", "1", "--start", SESSION,
         "--seed", "7", "--out", str(out)],
        env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
    )  # fmt: skip
    return proc.returncode, proc.stderr[-2000:]


async def run(redis_url: str) -> dict[str, Any]:
    """``redis_url`` is unused: a backtest starts its own private Redis."""
    del redis_url
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        out = Path(tmp) / "report"
        code, tail = await asyncio.to_thread(_run, out)
        summary_path = out / "summary.json"
        if not summary_path.exists():
            return {"error": f"backtest exited {code} without a summary: {tail}"}
        summary = json.loads(summary_path.read_text())
    sim_s = float(summary["simulated_hours"]) * 3600.0
    wall = float(summary["wall_seconds"])
    speed = sim_s / wall if wall else 0.0
    return {
        "ours": round(speed, 1),
        "baseline": 1.0,
        "unit": "simulated s per wall s",
        "ratio": round(speed, 1),
        "goal": f">= {GOAL:g} (6.5 h session in <= 3 min)",
        "met": speed >= GOAL and code == 0,
        "wall_seconds": round(wall, 1),
        "simulated_hours": summary["simulated_hours"],
        "fills": summary["fills"],
        "net_pnl": summary["net_pnl"],
        "invariant_violations": len(summary["invariant_violations"]),
        "exit_code": code,
    }
