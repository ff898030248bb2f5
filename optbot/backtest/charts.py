"""The report's pictures as inline SVG: equity with drawdown, daily P&L, P&L per trade.

Drawn by matplotlib without pyplot (a bare ``Figure``: no GUI backend, no global state)
and inlined into the HTML, so the report needs no network and no script. The SVG is
made deterministic (fixed id salt, no date) and stripped of its XML prologue, DOCTYPE,
metadata and namespace URIs, which HTML does not need for inline SVG.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from collections.abc import Sequence
from decimal import Decimal

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from shared.market_calendar import trading_date
from shared.performance import EquityPoint, RoundTrip, drawdown_series

UP, DOWN, LINE, GRID = "#2e9d6f", "#d9534f", "#2f6db5", "#dddddd"

_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)
_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_XMLNS = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
_SIZE = re.compile(r'^(<svg[^>]*?)\s+width="[^"]*"\s+height="[^"]*"')


def _svg(fig: Figure, name: str, title: str) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": name, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = _METADATA.sub("", _PROLOGUE.sub("", buf.getvalue(), count=1))
    text = _SIZE.sub(r"\1", _XMLNS.sub("", text), count=1)  # sized by the page's CSS
    # Ids unique in the page (three charts share matplotlib's "figure_1", ...).
    text = re.sub(r'(\sid="|url\(#|href="#)', rf"\g<1>{name}-", text)
    label = f'<svg role="img" aria-label="{title}" class="chart-{name}"'
    return text.replace("<svg", label, 1)


def _day_ticks(times: Sequence[float]) -> tuple[list[int], list[str]]:
    """Tick at each New York trading day's first point (the x axis is the point index,
    so nights and weekends take no room)."""
    ticks: list[int] = []
    labels: list[str] = []
    last: dt.date | None = None
    for i, t in enumerate(times):
        day = trading_date(t)
        if day != last:
            ticks.append(i)
            labels.append(day.strftime("%m-%d"))
            last = day
    step = max(1, len(ticks) // 12)
    return ticks[::step], labels[::step]


def _empty(fig: Figure, text: str) -> None:
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center", color="#777777")
    ax.set_axis_off()


def equity_chart(points: Sequence[EquityPoint]) -> str:
    """Equity over the run, and below it the drawdown from the running peak."""
    fig = Figure(figsize=(10, 4.6))
    if len(points) < 2:
        _empty(fig, "no equity points: no fills in this run")
        return _svg(fig, "equity", "equity curve")
    values = [p.equity for p in points]
    xs = list(range(len(points)))
    dd = [float(x) for x in drawdown_series(values)]
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot(xs, [float(v) for v in values], color=LINE, linewidth=1.4, gid="curve")
    top.set_ylabel("equity ($)")
    top.grid(color=GRID)
    bottom.fill_between(xs, dd, 0, color=DOWN, alpha=0.35, linewidth=0, gid="drawdown")
    bottom.plot(xs, dd, color=DOWN, linewidth=0.8)
    bottom.set_ylabel("drawdown ($)")
    bottom.grid(color=GRID)
    ticks, labels = _day_ticks([p.ts for p in points])
    bottom.set_xticks(ticks, labels)
    bottom.set_xlabel("New York trading day (x: trading time, nights left out)")
    return _svg(fig, "equity", "equity curve and drawdown")


def daily_chart(daily: Sequence[tuple[dt.date, Decimal]]) -> str:
    """P&L per trading day, green up, red down."""
    fig = Figure(figsize=(10, 2.4))
    if not daily:
        _empty(fig, "no trading days with P&L")
        return _svg(fig, "daily", "daily P&L")
    ax = fig.add_subplot()
    vals = [float(v) for _, v in daily]
    ax.bar(range(len(vals)), vals, color=[UP if v >= 0 else DOWN for v in vals])
    ax.axhline(0, color="#555555", linewidth=0.8)
    step = max(1, len(daily) // 15)
    ax.set_xticks(range(0, len(daily), step), [d.isoformat() for d, _ in daily][::step])
    ax.set_ylabel("P&L ($)")
    ax.grid(axis="y", color=GRID)
    return _svg(fig, "daily", "daily P&L")


def trades_chart(trips: Sequence[RoundTrip]) -> str:
    """Net P&L of each round trip in the order they closed."""
    fig = Figure(figsize=(10, 2.4))
    if not trips:
        _empty(fig, "no round trips")
        return _svg(fig, "trades", "P&L per trade")
    ax = fig.add_subplot()
    vals = [float(t.pnl) for t in trips]
    ax.bar(range(1, len(vals) + 1), vals, color=[UP if v >= 0 else DOWN for v in vals])
    ax.axhline(0, color="#555555", linewidth=0.8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("trade #")
    ax.set_ylabel("net P&L ($)")
    ax.grid(axis="y", color=GRID)
    return _svg(fig, "trades", "P&L per trade")
