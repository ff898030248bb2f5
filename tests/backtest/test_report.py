"""The backtest report: the four files, their columns and keys, and an offline page."""

from __future__ import annotations

import csv
import json
import re
from decimal import Decimal
from pathlib import Path

from optbot.backtest.record import RunRecord, denial_reason, record_from_messages
from optbot.backtest.report import DECISION_COLUMNS, TRADE_COLUMNS, write_report
from tests.backtest.samples import run_messages

SUMMARY_KEYS = {
    "sessions",
    "simulated_hours",
    "wall_seconds",
    "speed",
    "orders",
    "fills",
    "trades",
    "net_pnl",
    "commissions",
    "win_rate",
    "avg_win",
    "avg_loss",
    "max_drawdown",
    "sharpe",
    "denials",
    "risk_changes",
    "invariant_violations",
    "seed",
    "settings",
    "commit",
}


def sample_record() -> RunRecord:
    return record_from_messages(
        run_messages(),
        settings={
            "watchlist": "AAPL,SPY",
            "control_token": "s3cret",
            "redis_url": "redis://:pw@h:1",
        },
        seed=7,
        commit="abc1234",
        sessions=2,
        simulated_hours=13.0,
        wall_seconds=312.0,
        start_equity=Decimal(10_000),
    )


def test_write_report_writes_summary_with_every_listed_key(tmp_path: Path) -> None:
    paths = write_report(tmp_path / "out", sample_record())
    summary = json.loads(paths.summary.read_text())
    assert summary.keys() >= SUMMARY_KEYS
    assert summary["orders"] == 6 and summary["fills"] == 6 and summary["trades"] == 3
    # AAPL: (2.10-1.50)*2*100 = 120 - 2.60 comm; SPY: -60 - 1.30; AAPL: 30 - 1.30
    assert summary["net_pnl"] == 84.80 and summary["commissions"] == 5.20
    assert summary["win_rate"] == round(2 / 3, 4)
    assert summary["avg_win"] == 73.05 and summary["avg_loss"] == -61.30
    assert summary["max_drawdown"] == 61.30
    assert summary["speed"] == 150.0
    assert summary["denials"] == {"max_positions": 1}  # from the denied decision
    assert [c["state"] for c in summary["risk_changes"]] == ["REDUCING", "ACTIVE"]
    assert summary["settings"]["control_token"] == "***"
    assert "pw" not in summary["settings"]["redis_url"]
    assert summary["sharpe"] is not None  # two days of P&L


def test_trades_csv_has_one_row_per_round_trip_with_the_exit_reason(tmp_path: Path) -> None:
    paths = write_report(tmp_path, sample_record())
    with paths.trades.open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == TRADE_COLUMNS
    assert [r["exit_reason"] for r in rows] == [
        "exit: take profit +40%",
        "exit: stop loss -20%",
        "exit: time stop",
    ]
    assert rows[0]["entry_price"] == "1.5000" and rows[0]["pnl"] == "117.40"
    assert rows[0]["entry_time"] == "2025-01-02T10:00:01-05:00"


def test_decisions_csv_keeps_every_decision_with_its_reason(tmp_path: Path) -> None:
    paths = write_report(tmp_path, sample_record())
    with paths.decisions.open() as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert tuple(reader.fieldnames or ()) == DECISION_COLUMNS
    assert [r["outcome"] for r in rows] == ["taken", "denied"]


def test_report_html_is_self_contained_and_escapes_bus_text(tmp_path: Path) -> None:
    page = write_report(tmp_path, sample_record()).html.read_text()
    assert not re.search(r"https?://", page)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", page)  # nothing loaded
    assert "<script" not in page  # the decision's reason is escaped, and no JS at all
    assert page.count("<svg") == 3
    assert 'id="trades"' in page and "exit: stop loss -20%" in page


def test_report_when_no_fills_still_writes_every_file(tmp_path: Path) -> None:
    paths = write_report(tmp_path, RunRecord(partial=True, notes=["stopped by Ctrl-C"]))
    summary = json.loads(paths.summary.read_text())
    assert summary["trades"] == 0 and summary["win_rate"] is None and summary["partial"]
    assert "no round trips" in paths.html.read_text()
    assert paths.trades.read_text().strip() == ",".join(TRADE_COLUMNS)


def test_denial_reason_groups_by_check_and_blanks_amounts() -> None:
    assert denial_reason("max_premium: 523.10 over 500") == "max_premium"
    assert denial_reason("premium 523.10 over 500") == "premium # over #"
    # a reprice refused for one order: its id is no reason (seen as a row per order id)
    reprice = "ob-20250306-BAC-C-2: no reprice to 1.25: risk state HALTED (news)"
    assert denial_reason(reprice) == "no reprice to #"
    assert denial_reason("ob-1: reprice stopped at 0.95: daily loss") == "reprice stopped at #"
