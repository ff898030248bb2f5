"""A run's report: DIR/summary.json, trades.csv, decisions.csv and report.html.

Every figure comes from ``shared.performance`` (the code behind the dashboard's
Performance panel), booked like the strategy's ledger. The HTML is one self-contained
file: inline CSS and SVG charts, no script, no external URL, so it opens offline.
"""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from string import Template
from typing import Any

from optbot.backtest import charts
from optbot.backtest.record import RunRecord
from shared.market_calendar import NEW_YORK
from shared.performance import (
    EquityPoint,
    Performance,
    RoundTrip,
    analyze,
    cents,
    daily_pnl,
    stats,
)
from shared.redact import redact_text

TEMPLATE = Path(__file__).with_name("templates") / "report.html"
TRADE_COLUMNS = (
    "entry_time",
    "exit_time",
    "contract",
    "direction",
    "quantity",
    "entry_price",
    "exit_price",
    "multiplier",
    "commissions",
    "gross_pnl",
    "pnl",
    "exit_reason",
    "entry_order",
    "exit_order",
)
DECISION_COLUMNS = (
    "time",
    "cycle",
    "kind",
    "outcome",
    "symbol",
    "direction",
    "contract",
    "quantity",
    "limit_price",
    "client_order_id",
    "reason",
)
SECRET_WORDS = ("token", "password", "secret", "key_file", "passwd")


@dataclass(frozen=True, slots=True)
class Paths:
    """The four files written."""

    summary: Path
    trades: Path
    decisions: Path
    html: Path


def iso(ts: float) -> str:
    """New York time with its offset: the trading day reads as it was traded."""
    return dt.datetime.fromtimestamp(ts, NEW_YORK).isoformat(timespec="seconds")


def money(x: Decimal | None) -> float | None:
    return None if x is None else float(cents(x))


def price(x: Decimal) -> str:
    return f"{x.quantize(Decimal('0.0001')):f}"


def performance(record: RunRecord) -> Performance:
    """The run's figures. The curve is the ledger's own (``record.equity``, marked to
    market) when the driver read it, else the one booked from the fills (and marks)."""
    perf = analyze(record.fills, record.marks, record.start_equity)
    if len(record.equity) < 2:
        return perf
    curve = record.equity
    daily = daily_pnl(curve)
    values = [p.equity for p in curve]
    s = perf.stats
    figures = stats(perf.trips, s.realized, s.commissions, values, [d for _, d in daily])
    return Performance(perf.trips, curve, daily, figures, perf.open_positions)


def _safe_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with secrets masked (by name, and passwords inside URLs)."""
    out: dict[str, Any] = {}
    for k, v in sorted(settings.items()):
        if any(w in k.lower() for w in SECRET_WORDS) and v:
            out[k] = "***"
        elif isinstance(v, str):
            out[k] = redact_text(v)
        else:
            out[k] = v
    return out


def summary(record: RunRecord, perf: Performance) -> dict[str, Any]:
    """summary.json: the run and its figures (money in dollars, rounded to the cent)."""
    s = perf.stats
    return {
        "sessions": record.sessions,
        "simulated_hours": round(record.simulated_hours, 4),
        "wall_seconds": round(record.wall_seconds, 3),
        "speed": None if record.speed is None else round(record.speed, 2),
        "orders": record.orders,
        "fills": len(record.fills),
        "trades": s.trades,
        "wins": s.wins,
        "losses": s.losses,
        "realized_pnl": money(s.realized),
        "net_pnl": money(s.net_pnl),
        "commissions": money(s.commissions),
        "win_rate": None if s.win_rate is None else round(s.win_rate, 4),
        "avg_win": money(s.avg_win),
        "avg_loss": money(s.avg_loss),
        "max_drawdown": money(s.max_drawdown),
        "sharpe": None if s.sharpe is None else round(s.sharpe, 4),
        "open_positions": perf.open_positions,
        "denials": record.denials,
        "risk_changes": [
            {
                "time": iso(c.ts),
                "state": c.state,
                "previous": c.previous,
                "who": c.who,
                "why": c.why,
            }
            for c in record.risk_changes
        ],
        "invariant_violations": record.invariant_violations,
        "partial": record.partial,
        "notes": record.notes,
        "seed": record.seed,
        "settings": _safe_settings(record.settings),
        "commit": record.commit,
    }


def _trade_row(t: RoundTrip) -> dict[str, Any]:
    return {
        "entry_time": iso(t.entry_ts),
        "exit_time": iso(t.exit_ts),
        "contract": t.contract,
        "direction": t.direction,
        "quantity": t.qty,
        "entry_price": price(t.entry_price),
        "exit_price": price(t.exit_price),
        "multiplier": t.multiplier,
        "commissions": f"{cents(t.commissions):f}",
        "gross_pnl": f"{cents(t.gross_pnl):f}",
        "pnl": f"{cents(t.pnl):f}",
        "exit_reason": t.exit_reason,
        "entry_order": t.entry_order,
        "exit_order": t.exit_order,
    }


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)


def _decision_rows(record: RunRecord) -> list[dict[str, Any]]:
    return [
        {
            "time": iso(d.ts),
            "cycle": d.cycle,
            "kind": d.kind,
            "outcome": d.outcome,
            "symbol": d.symbol,
            "direction": d.direction,
            "contract": d.contract,
            "quantity": d.quantity,
            "limit_price": "" if d.limit_price is None else d.limit_price,
            "client_order_id": d.client_order_id,
            "reason": d.reason,
        }
        for d in record.decisions
    ]


def write_report(out_dir: Path | str, record: RunRecord) -> Paths:
    """Write the four files into ``out_dir`` (created if missing); returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = Paths(
        out / "summary.json", out / "trades.csv", out / "decisions.csv", out / "report.html"
    )
    perf = performance(record)
    summ = summary(record, perf)
    paths.summary.write_text(json.dumps(summ, indent=2) + "\n", encoding="utf-8")
    _write_csv(paths.trades, TRADE_COLUMNS, [_trade_row(t) for t in perf.trips])
    _write_csv(paths.decisions, DECISION_COLUMNS, _decision_rows(record))
    paths.html.write_text(render_html(record, perf, summ), encoding="utf-8")
    return paths


# --- HTML ------------------------------------------------------------------------

E = html.escape


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:,.2f}"
    return str(v)


def _table(table_id: str, head: list[str], rows: list[list[Any]], empty: str) -> str:
    th = "".join(f"<th>{E(h)}</th>" for h in head)
    if not rows:
        body = f'<tr class="empty"><td colspan="{len(head)}">{E(empty)}</td></tr>'
    else:
        body = "".join(
            "<tr>" + "".join(f"<td>{E(_fmt(c))}</td>" for c in r) + "</tr>" for r in rows
        )
    return f'<table id="{table_id}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _signed_class(v: float | None) -> str:
    return "up" if v and v > 0 else "down" if v and v < 0 else ""


def _cards(summ: dict[str, Any]) -> str:
    win = summ["win_rate"]
    items = [
        ("Net P&L", _fmt(summ["net_pnl"]), _signed_class(summ["net_pnl"])),
        ("Trades", str(summ["trades"]), ""),
        ("Win rate", "—" if win is None else f"{win:.0%}", ""),
        ("Avg win", _fmt(summ["avg_win"]), "up"),
        ("Avg loss", _fmt(summ["avg_loss"]), "down"),
        ("Max drawdown", _fmt(summ["max_drawdown"]), ""),
        ("Sharpe (daily)", "—" if summ["sharpe"] is None else f"{summ['sharpe']:.2f}", ""),
        ("Commissions", _fmt(summ["commissions"]), ""),
        ("Orders / fills", f"{summ['orders']} / {summ['fills']}", ""),
        ("Sessions", str(summ["sessions"]), ""),
        ("Simulated hours", f"{summ['simulated_hours']:.1f}", ""),
        ("Speed", "—" if summ["speed"] is None else f"{summ['speed']:.0f} x", ""),
    ]
    return "".join(
        f'<div class="card"><div class="k">{E(k)}</div><div class="v {c}">{E(v)}</div></div>'
        for k, v, c in items
    )


def _banners(record: RunRecord) -> str:
    out = []
    if record.partial:
        out.append('<p class="banner warn">Partial run: stopped early; figures cover what ran.</p>')
    if record.invariant_violations:
        items = "".join(f"<li>{E(v)}</li>" for v in record.invariant_violations)
        out.append(f'<div class="banner bad"><b>Invariant violations</b><ul>{items}</ul></div>')
    return "".join(out)


def _trades_html(perf: Performance) -> str:
    rows = [
        [
            iso(t.entry_ts),
            iso(t.exit_ts),
            t.contract,
            t.direction,
            t.qty,
            price(t.entry_price),
            price(t.exit_price),
            f"{cents(t.commissions):f}",
            f"{cents(t.pnl):f}",
            t.exit_reason,
        ]
        for t in perf.trips
    ]
    head = [
        "Entry",
        "Exit",
        "Contract",
        "Dir",
        "Qty",
        "Entry px",
        "Exit px",
        "Comm.",
        "P&L",
        "Exit reason",
    ]
    return _table("trades", head, rows, "no round trips in this run")


def render_html(record: RunRecord, perf: Performance, summ: dict[str, Any]) -> str:
    """The report page; every value from the run is escaped."""
    decided: dict[str, int] = {}
    for d in record.decisions:
        k = f"{d.kind} {d.outcome}"
        decided[k] = decided.get(k, 0) + 1
    risk = [[iso(c.ts), f"{c.previous} → {c.state}", c.who, c.why] for c in record.risk_changes]
    settings = [
        [k, json.dumps(v) if not isinstance(v, str) else v] for k, v in summ["settings"].items()
    ]
    title = f"optbot backtest — {summ['sessions']} session(s), seed {summ['seed']}"
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        title=E(title),
        banners=_banners(record),
        cards=_cards(summ),
        equity_chart=charts.equity_chart(perf.equity or [EquityPoint(0, record.start_equity)]),
        daily_chart=charts.daily_chart(perf.daily),
        trades_chart=charts.trades_chart(perf.trips),
        trades_table=_trades_html(perf),
        denials_table=_table(
            "denials", ["Reason", "Count"], [[k, v] for k, v in record.denials.items()], "none"
        ),
        risk_table=_table("risk", ["Time", "Change", "Who", "Why"], risk, "none"),
        decisions_table=_table(
            "decisions",
            ["Decision", "Count"],
            [[k, v] for k, v in sorted(decided.items())],
            "no decisions",
        ),
        open_table=_table(
            "open",
            ["Contract", "Quantity"],
            [[k, v] for k, v in perf.open_positions.items()],
            "none (flat)",
        ),
        settings_table=_table("settings", ["Setting", "Value"], settings, "none recorded"),
        notes="".join(f"<li>{E(n)}</li>" for n in record.notes) or "<li>none</li>",
        commit=E(record.commit or "unknown"),
        seed=E(str(record.seed)),
    )
