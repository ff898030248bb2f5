"""Trading performance from fills: round trips, win rate, P&L, equity, drawdown, Sharpe.

Pure functions over fill records, used by both the backtest report and the monitor's
Performance panel, so the two can never disagree. Money is Decimal and booked with the
strategy ledger's arithmetic (average cost, released cost rounded to the cent, option
multiplier), so realized P&L here equals the ledger's for the same fills to the cent.

A round trip is one position in one contract from flat back to flat, fills taken in
the order they happened (per contract, first in first out). A fill that flips the
position through zero closes the trip (its whole commission goes to the closing trip)
and opens the next one with the rest.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Any

from shared.market_calendar import trading_date
from shared.schemas import Action, ContractRef, OrderEvent, OrderEventKind, OrderNew

ZERO = Decimal(0)
CENT = Decimal("0.01")
TRADING_DAYS_PER_YEAR = 252
FILL_KINDS = frozenset({OrderEventKind.FILL, OrderEventKind.PARTIAL, OrderEventKind.EXPIRED})


def dec(x: float | int | str | Decimal) -> Decimal:
    """Exact decimal of a wire value (via ``repr``: 2.35 stays 2.35), as the ledger does."""
    if isinstance(x, Decimal):
        return x
    return Decimal(repr(x)) if isinstance(x, float) else Decimal(x)


def cents(x: Decimal) -> Decimal:
    return x.quantize(CENT, rounding=ROUND_HALF_UP)


def _div(a: Decimal, b: Decimal | int) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 40
        return a / b


# --- input -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One fill (or expiry settlement) as booked: what, when, how many, at what price."""

    ts_ns: int  # the event's envelope time (ns): the ledger's time of the fill
    client_order_id: str
    contract: ContractRef
    action: Action
    qty: int
    price: Decimal
    commission: Decimal
    key: str  # dedupe key, the ledger's: order id | exec id | cumulative quantity
    reason: str = ""  # the order's reason (from its request), else the event's
    expired: bool = False
    simulated: bool = True

    @property
    def ts(self) -> float:
        return self.ts_ns / 1e9

    @property
    def signed(self) -> int:
        return self.qty if self.action is Action.BUY else -self.qty


def fill_from_event(ev: OrderEvent, ts_ns: int, reason: str = "") -> FillRecord | None:
    """The fill an order event carries (fills, partials, expiries), else None."""
    if ev.kind not in FILL_KINDS or ev.fill_qty <= 0:
        return None
    if ev.contract is None or ev.action is None or ev.fill_price is None:
        return None
    return FillRecord(
        ts_ns=ts_ns,
        client_order_id=ev.client_order_id,
        contract=ev.contract,
        action=ev.action,
        qty=ev.fill_qty,
        price=dec(ev.fill_price),
        commission=dec(ev.commission),
        key=f"{ev.client_order_id}|{ev.exec_id}|{ev.filled_total}",
        reason=reason or ev.reason,
        expired=ev.kind is OrderEventKind.EXPIRED,
        simulated=ev.simulated,
    )


def fills_from_events(
    events: Iterable[tuple[int, OrderEvent]], reasons: Mapping[str, str] | None = None
) -> list[FillRecord]:
    """Fills of ``(ts_ns, event)`` pairs in stream order, each once (the ledger's key).

    ``reasons``: client order id → the order's reason (``OrderNew.reason``), which says
    why an exit was sent; an expiry's own event reason is used when there is none.
    """
    seen: set[str] = set()
    out: list[FillRecord] = []
    for ts_ns, ev in events:
        fill = fill_from_event(ev, ts_ns, (reasons or {}).get(ev.client_order_id, ""))
        if fill is None or fill.key in seen:
            continue
        seen.add(fill.key)
        out.append(fill)
    return out


def fills_from_messages(messages: Iterable[Any]) -> list[FillRecord]:
    """Fills from decoded envelope messages of ``orders:requests`` and ``orders:events``
    (any mix, in stream order): requests give the reasons, events the fills."""
    reasons: dict[str, str] = {}
    events: list[tuple[int, OrderEvent]] = []
    for msg in messages:
        if isinstance(msg.body, OrderNew):
            reasons[msg.body.client_order_id] = msg.body.reason
        elif isinstance(msg.body, OrderEvent):
            events.append((msg.ts, msg.body))
    return fills_from_events(events, reasons)


@dataclass(frozen=True, slots=True)
class Mark:
    """A contract's mark (mid) at an instant: values the open positions on the curve."""

    ts_ns: int
    key: str  # ContractRef.key
    price: Decimal


# --- output ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """One position from flat back to flat; ``pnl`` is net of every fill's commission."""

    contract: str
    symbol: str
    direction: str  # "long" or "short"
    qty: int  # contracts opened over the trip
    entry_ts: float
    exit_ts: float
    entry_price: Decimal  # average over the opening fills, per share as quoted
    exit_price: Decimal  # average over the closing fills
    multiplier: int
    commissions: Decimal
    gross_pnl: Decimal  # realized, before commissions
    pnl: Decimal
    entry_order: str
    exit_order: str
    exit_reason: str
    fills: int


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts: float
    equity: Decimal


@dataclass(frozen=True, slots=True)
class Booked:
    """A fill with what it realized and the book's equity right after it."""

    fill: FillRecord
    realized: Decimal
    equity: Decimal


@dataclass(frozen=True, slots=True)
class Stats:
    trades: int
    wins: int
    losses: int
    win_rate: float | None  # None without a round trip
    avg_win: Decimal | None
    avg_loss: Decimal | None  # negative
    realized: Decimal  # every fill's realized P&L, before commissions
    commissions: Decimal  # every fill's, open positions included
    net_pnl: Decimal  # realized - commissions
    max_drawdown: Decimal  # >= 0, in money, from the equity series
    sharpe: float | None  # annualized from daily P&L; None under 2 days or no variance


@dataclass
class _Open:
    """An open position and the round trip it belongs to."""

    contract: ContractRef
    qty: int = 0
    cost: Decimal = ZERO
    mark: Decimal | None = None
    opened: int = 0  # contracts opened in this trip
    entry_value: Decimal = ZERO  # sum of qty * price of the opening fills
    closed: int = 0
    exit_value: Decimal = ZERO
    commissions: Decimal = ZERO
    realized: Decimal = ZERO
    entry_ts: float = 0.0
    entry_order: str = ""
    fills: int = 0

    @property
    def market_value(self) -> Decimal:
        if self.mark is None:
            return self.cost
        return self.qty * self.mark * self.contract.multiplier


@dataclass
class Book:
    """The ledger's booking of fills, plus the round trips it closes."""

    start: Decimal = ZERO
    flow: Decimal = ZERO
    realized: Decimal = ZERO
    commissions: Decimal = ZERO
    positions: dict[str, _Open] = field(default_factory=dict)
    trips: list[RoundTrip] = field(default_factory=list)
    booked: list[Booked] = field(default_factory=list)

    @property
    def equity(self) -> Decimal:
        return self.start + self.flow + sum((p.market_value for p in self.positions.values()), ZERO)

    def apply(self, fill: FillRecord) -> Decimal:
        """Book one fill; returns the P&L it realized (before commission)."""
        key, mult, signed = fill.contract.key, fill.contract.multiplier, fill.signed
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = _Open(fill.contract, entry_ts=fill.ts)
            pos.entry_order = fill.client_order_id
        self.flow -= signed * fill.price * mult + fill.commission
        self.commissions += fill.commission
        pos.commissions += fill.commission
        pos.fills += 1
        realized = ZERO
        if pos.qty and (pos.qty > 0) != (signed > 0):
            closing = min(abs(signed), abs(pos.qty))
            step = closing if signed > 0 else -closing
            released = cents(pos.cost * closing / abs(pos.qty))  # the ledger's rounding
            realized = -step * fill.price * mult - released
            pos.cost -= released
            pos.qty += step
            pos.closed += closing
            pos.exit_value += closing * fill.price
            pos.realized += realized
            signed -= step
            if pos.qty == 0:
                self.trips.append(_trip(pos, fill))
                del self.positions[key]
                pos = self.positions[key] = _Open(fill.contract, entry_ts=fill.ts)
                pos.entry_order, pos.fills = fill.client_order_id, 1
        if signed:
            if pos.qty == 0:
                pos.cost = ZERO
            pos.cost += signed * fill.price * mult
            pos.qty += signed
            pos.opened += abs(signed)
            pos.entry_value += abs(signed) * fill.price
        if pos.qty == 0:
            del self.positions[key]
        self.realized += realized
        self.booked.append(Booked(fill, realized, self.equity))
        return realized

    def mark(self, mark: Mark) -> bool:
        pos = self.positions.get(mark.key)
        if pos is None:
            return False
        pos.mark = mark.price
        return True

    @property
    def open_realized(self) -> Decimal:
        """Realized by partial closes of positions still open (in no round trip yet)."""
        return sum((p.realized for p in self.positions.values()), ZERO)


def _trip(pos: _Open, fill: FillRecord) -> RoundTrip:
    return RoundTrip(
        contract=pos.contract.key,
        symbol=pos.contract.symbol,
        direction="long" if fill.action is Action.SELL else "short",
        qty=pos.opened,
        entry_ts=pos.entry_ts,
        exit_ts=fill.ts,
        entry_price=_div(pos.entry_value, pos.opened) if pos.opened else ZERO,
        exit_price=_div(pos.exit_value, pos.closed) if pos.closed else ZERO,
        multiplier=pos.contract.multiplier,
        commissions=pos.commissions,
        gross_pnl=pos.realized,
        pnl=pos.realized - pos.commissions,
        entry_order=pos.entry_order,
        exit_order=fill.client_order_id,
        exit_reason=fill.reason,
        fills=pos.fills,
    )


def book(
    fills: Iterable[FillRecord], marks: Iterable[Mark] = (), start: Decimal = ZERO
) -> tuple[Book, list[EquityPoint]]:
    """Book the fills (and marks, merged by time; a fill goes before a mark of the same
    instant); returns the book and the equity after each fill and each useful mark."""
    b = Book(start=start)
    curve: list[EquityPoint] = []
    events: list[tuple[int, int, FillRecord | Mark]] = [(f.ts_ns, 0, f) for f in fills]
    events += [(m.ts_ns, 1, m) for m in marks]
    events.sort(key=lambda e: (e[0], e[1]))  # stable: fills keep their stream order
    for ts_ns, _, item in events:
        if isinstance(item, FillRecord):
            b.apply(item)
        elif not b.mark(item):
            continue
        curve.append(EquityPoint(ts_ns / 1e9, b.equity))
    return b, curve


# --- statistics ------------------------------------------------------------------


def max_drawdown(values: Iterable[Decimal]) -> Decimal:
    """The largest fall from a running peak (money, >= 0; 0 for an empty series)."""
    peak: Decimal | None = None
    worst = ZERO
    for v in values:
        peak = v if peak is None or v > peak else peak
        worst = max(worst, peak - v)
    return worst


def drawdown_series(values: Sequence[Decimal]) -> list[Decimal]:
    """Distance below the running peak at each point (<= 0), for the drawdown chart."""
    out: list[Decimal] = []
    peak: Decimal | None = None
    for v in values:
        peak = v if peak is None or v > peak else peak
        out.append(v - peak)
    return out


def daily_pnl(
    points: Sequence[EquityPoint], start: Decimal | None = None
) -> list[tuple[dt.date, Decimal]]:
    """P&L per New York trading day: each day's last equity less the day before's
    (the first day's: less ``start``, else the first point's equity)."""
    if not points:
        return []
    last: dict[dt.date, Decimal] = {}
    for p in points:
        last[trading_date(p.ts)] = p.equity
    prev = points[0].equity if start is None else start
    out: list[tuple[dt.date, Decimal]] = []
    for day, value in sorted(last.items()):
        out.append((day, value - prev))
        prev = value
    return out


def sharpe(daily: Sequence[Decimal]) -> float | None:
    """Annualized Sharpe ratio of daily P&L (no risk-free rate): mean / stdev * sqrt(252)."""
    if len(daily) < 2:
        return None
    xs = [float(x) for x in daily]
    sd = statistics.stdev(xs)
    if sd == 0 or not math.isfinite(sd):
        return None
    return statistics.fmean(xs) / sd * math.sqrt(TRADING_DAYS_PER_YEAR)


def stats(
    trips: Sequence[RoundTrip],
    realized: Decimal,
    commissions: Decimal,
    equity: Sequence[Decimal],
    daily: Sequence[Decimal] = (),
) -> Stats:
    """Summary figures of the round trips, the booked P&L and the equity series."""
    wins = [t.pnl for t in trips if t.pnl > 0]
    losses = [t.pnl for t in trips if t.pnl < 0]
    return Stats(
        trades=len(trips),
        wins=len(wins),
        losses=len(losses),
        win_rate=len(wins) / len(trips) if trips else None,
        avg_win=cents(_div(sum(wins, ZERO), len(wins))) if wins else None,
        avg_loss=cents(_div(sum(losses, ZERO), len(losses))) if losses else None,
        realized=realized,
        commissions=commissions,
        net_pnl=realized - commissions,
        max_drawdown=max_drawdown(equity),
        sharpe=sharpe(daily),
    )


@dataclass(frozen=True, slots=True)
class Performance:
    """Everything derived from a run's fills."""

    trips: list[RoundTrip]
    equity: list[EquityPoint]
    daily: list[tuple[dt.date, Decimal]]
    stats: Stats
    open_positions: dict[str, int]  # contract key -> signed quantity


def analyze(
    fills: Sequence[FillRecord], marks: Iterable[Mark] = (), start: Decimal = ZERO
) -> Performance:
    """Round trips, equity curve (``start`` + P&L), daily P&L and stats of the fills."""
    b, curve = book(fills, marks, start)
    daily = daily_pnl(curve, start)
    values = [start, *(p.equity for p in curve)]
    return Performance(
        trips=b.trips,
        equity=curve,
        daily=daily,
        stats=stats(b.trips, b.realized, b.commissions, values, [d for _, d in daily]),
        open_positions={k: p.qty for k, p in sorted(b.positions.items())},
    )


@dataclass(frozen=True, slots=True)
class DayPerformance:
    """One New York trading day: the round trips closed in it and its booked P&L."""

    day: dt.date
    trips: list[RoundTrip]
    realized: Decimal
    commissions: Decimal
    max_drawdown: Decimal  # of the day's realized-less-commissions curve
    stats: Stats
    open_positions: int  # contracts still open after every fill given


def day_performance(fills: Sequence[FillRecord], day: dt.date) -> DayPerformance:
    """The day's figures as the ledger counts them: P&L of the fills dated ``day``
    (positions opened before it are booked from their earlier fills)."""
    b = Book()
    for f in fills:
        b.apply(f)
    todays = [x for x in b.booked if trading_date(x.fill.ts) == day]
    realized = sum((x.realized for x in todays), ZERO)
    commissions = sum((x.fill.commission for x in todays), ZERO)
    running, curve = ZERO, [ZERO]
    for x in todays:
        running += x.realized - x.fill.commission
        curve.append(running)
    trips = [t for t in b.trips if trading_date(t.exit_ts) == day]
    return DayPerformance(
        day=day,
        trips=trips,
        realized=realized,
        commissions=commissions,
        max_drawdown=max_drawdown(curve),
        stats=stats(trips, realized, commissions, curve),
        open_positions=len(b.positions),
    )
