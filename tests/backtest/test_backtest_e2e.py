"""``optbot backtest`` end to end: the real services, the simulator in lockstep, the report.

One short session (the first ``MINUTES`` of an NYSE session: with this seed the strategy
opens a position and takes its profit within them) is run twice with the same seed, as
a user runs it (a subprocess with its own private Redis). The report's figures must
equal the strategy ledger's, no invariant may be violated, and the two runs must give
the same fills, orders and P&L.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAY = "2025-03-06"
MINUTES = "120"
RUN_TIMEOUT_S = 400


def backtest(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "optbot.cli", "backtest", "--days", "1", "--start", DAY,
         "--minutes", MINUTES, "--seed", "11", "--regimes", "trending_up",
         "--out", str(out), *extra],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )  # fmt: skip


def _summary(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return data


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    outs = []
    for n in (1, 2):
        out = tmp_path_factory.mktemp(f"run{n}")
        proc = backtest(out)
        (out / "stderr.txt").write_text(proc.stderr)
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs.append(out)
    return outs


def test_the_report_equals_the_ledger_and_no_invariant_is_violated(runs: list[Path]) -> None:
    out = runs[0]
    summary, ledger = _summary(out), json.loads((out / "ledger.json").read_text())
    assert summary["invariant_violations"] == []
    assert summary["partial"] is False
    assert summary["simulated_hours"] == pytest.approx(2.0)
    assert summary["trades"] >= 1, "this seed's trending session opens and closes a trade"
    assert Decimal(str(summary["realized_pnl"])) == Decimal(ledger["realized"])
    assert Decimal(str(summary["commissions"])) == Decimal(ledger["commissions"])
    assert int(ledger["fills"]) == summary["fills"]
    for name in ("summary.json", "trades.csv", "decisions.csv", "report.html"):
        assert (out / name).stat().st_size > 0


def test_two_runs_with_the_same_seed_give_the_same_fills_and_pnl(runs: list[Path]) -> None:
    a, b = (_summary(r) for r in runs)
    for key in ("fills", "orders", "trades", "realized_pnl", "net_pnl", "commissions"):
        assert a[key] == b[key], key
    assert _rows(runs[0] / "trades.csv") == _rows(runs[1] / "trades.csv")
    # The decisions that led to orders are the same; skipped ones may differ in which
    # contract was looked at (docs/backtest.md, "Determinism": a new line's first quote
    # races the strategy's wait for quotes inside one round).
    taken = [[r for r in _rows(run / "decisions.csv") if r["outcome"] == "taken"] for run in runs]
    assert [(r["time"], r["kind"], r["contract"], r["limit_price"]) for r in taken[0]] == [
        (r["time"], r["kind"], r["contract"], r["limit_price"]) for r in taken[1]
    ]
    ledgers = [json.loads((r / "ledger.json").read_text()) for r in runs]
    for key in ("realized", "commissions", "cash", "fills"):
        assert ledgers[0][key] == ledgers[1][key], key


def test_ctrl_c_stops_cleanly_with_a_partial_report(tmp_path: Path) -> None:
    """SIGINT (Ctrl-C) reaches only the driver (the services run in their own session):
    it stops stepping, reads the streams, writes the report marked partial, stops all."""
    out = tmp_path / "report"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "optbot.cli", "backtest", "--days", "1", "--start", DAY,
         "--seed", "11", "--out", str(out)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = ""
    for line in proc.stderr:  # the first progress line comes with the first step
        seen += line
        if line.startswith("session 1/1"):
            break
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=120)
    assert proc.returncode == 130, seen + rest
    assert "interrupted; writing a partial report" in rest
    summary = _summary(out)
    assert summary["partial"] is True
    assert 0 < summary["simulated_hours"] < 6.5
    assert summary["invariant_violations"] == []
    assert _processes_of(out / "var") == []


def _processes_of(var: Path) -> list[int]:
    """Processes still running for this run: its services (their OPTBOT_VAR_DIR) and its
    Redis (working directory under it)."""
    marker = f"OPTBOT_VAR_DIR={var}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
            if marker in env or str((proc / "cwd").resolve()).startswith(str(var)):
                found.append(int(proc.name))
        except OSError:
            continue
    return found
