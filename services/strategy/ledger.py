"""Positions, cash and P&L, event-sourced from the fills on ``orders:events``.

Nothing here is stored as truth: replaying the fills rebuilds the same state, which
is how a restarted strategy resumes with the same positions. Amounts are Decimal,
realized P&L uses average cost, and the books always balance exactly:
``cash + market value - starting cash == realized + unrealized - commissions``.
The starting cash is re-based each trading day on the traded book's opening
equity (``tradingday``); cash is that plus the fills' cash flows, so re-basing
never changes a P&L figure.
Each fill is applied once (keyed by exec id and cumulative quantity), so a
redelivered or replayed event changes nothing. An ``expired`` event (an option
settled at its expiry: worthless, or cash at intrinsic value) books like a closing
fill at the settlement price without commission.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, localcontext

from services.strategy.money import ZERO, cents, dec
from shared.market_calendar import trading_date
from shared.schemas import Action, ContractRef, OrderEvent, OrderEventKind


@dataclass
class Holding:
    """One open position. ``cost`` is the signed cost of the open quantity (no commission)."""

    contract: ContractRef
    qty: int = 0
    cost: Decimal = ZERO
    opened_ns: int = 0
    entry_order: str = ""  # client order id of the fill that opened it
    mark: Decimal | None = None
    mark_stale: bool = True  # no fresh two-sided quote behind ``mark`` right now
    simulated: bool = True
    commissions: Decimal = ZERO
    realized: Decimal = ZERO

    @property
    def multiplier(self) -> int:
        return self.contract.multiplier

    @property
    def avg_price(self) -> Decimal:
        """Average price per share (per unit of the underlying, as options are quoted)."""
        if not self.qty:
            return ZERO
        with localcontext() as ctx:
            ctx.prec = 40
            return self.cost / (self.qty * self.multiplier)

    @property
    def market_value(self) -> Decimal:
        """Value at the mark; at cost while no mark is known (unrealized is then zero)."""
        if self.mark is None:
            return self.cost
        return self.qty * self.mark * self.multiplier

    @property
    def unrealized(self) -> Decimal:
        return self.market_value - self.cost


FILL_KINDS = frozenset({OrderEventKind.FILL, OrderEventKind.PARTIAL, OrderEventKind.EXPIRED})


@dataclass(frozen=True, slots=True)
class Closed:
    """The last round trip of an underlying: when it ended and what it made, net."""

    ts_ns: int
    pnl: Decimal  # realized less commissions over the position's life


@dataclass(frozen=True, slots=True)
class Fill:
    client_order_id: str
    contract: ContractRef
    action: Action
    qty: int
    price: Decimal
    commission: Decimal
    ts_ns: int
    key: str  # dedupe key
    simulated: bool = True


def fill_from_event(ev: OrderEvent, ts_ns: int) -> Fill | None:
    """The fill carried by an order event (fills, expiries), or None (acks, cancels, rejects).

    Its time is the adapter's trading-clock stamp (simulated time in a backtest), else
    ``ts_ns`` (the stream entry's time, for events written before the stamp existed).
    """
    if ev.kind not in FILL_KINDS or ev.fill_qty <= 0:
        return None
    if ev.contract is None or ev.action is None or ev.fill_price is None:
        return None
    key = f"{ev.client_order_id}|{ev.exec_id}|{ev.filled_total}"
    return Fill(
        client_order_id=ev.client_order_id,
        contract=ev.contract,
        action=ev.action,
        qty=ev.fill_qty,
        price=dec(ev.fill_price),
        commission=dec(ev.commission),
        ts_ns=int(ev.at * 1e9) if ev.at else ts_ns,
        key=key,
        simulated=ev.simulated,
    )


def trading_day(ts: float) -> dt.date:
    """The New York date of a Unix time: the day a fill's P&L and a daily limit belong to."""
    return trading_date(ts)


def _day(ts_ns: int) -> dt.date:
    return trading_date(ts_ns / 1e9)


@dataclass
class Ledger:
    starting_cash: Decimal
    flow: Decimal = ZERO  # cash paid and received by fills, commissions included
    realized: Decimal = ZERO
    commissions: Decimal = ZERO
    positions: dict[str, Holding] = field(default_factory=dict)
    day_realized: dict[dt.date, Decimal] = field(default_factory=dict)
    day_commissions: dict[dt.date, Decimal] = field(default_factory=dict)
    fills: int = 0
    closed: dict[str, Closed] = field(default_factory=dict)  # by underlying symbol
    _seen: set[str] = field(default_factory=set)

    @property
    def cash(self) -> Decimal:
        return self.starting_cash + self.flow

    def rebase(self, starting_cash: Decimal) -> None:
        """Set the starting cash (the day's opening equity less the P&L booked before)."""
        self.starting_cash = starting_cash

    def apply(self, fill: Fill) -> bool:
        """Book a fill once; False when it was booked before."""
        if fill.key in self._seen:
            return False
        self._seen.add(fill.key)
        self.fills += 1
        key = fill.contract.key
        pos = self.positions.get(key)
        if pos is None:
            pos = self.positions[key] = Holding(
                contract=fill.contract,
                opened_ns=fill.ts_ns,
                entry_order=fill.client_order_id,
                simulated=fill.simulated,
            )
        signed = fill.qty if fill.action is Action.BUY else -fill.qty
        mult = fill.contract.multiplier
        self.flow -= signed * fill.price * mult + fill.commission
        self.commissions += fill.commission
        pos.commissions += fill.commission
        day = _day(fill.ts_ns)
        self.day_commissions[day] = self.day_commissions.get(day, ZERO) + fill.commission
        before = pos.qty
        realized = self._trade(pos, signed, fill.price, mult)
        if before and pos.qty and (before > 0) != (pos.qty > 0):  # flipped through zero
            pos.opened_ns, pos.entry_order = fill.ts_ns, fill.client_order_id
        self.realized += realized
        pos.realized += realized
        self.day_realized[day] = self.day_realized.get(day, ZERO) + realized
        if pos.qty == 0:
            closed = Closed(fill.ts_ns, pos.realized - pos.commissions)
            self.closed[fill.contract.symbol] = closed
            del self.positions[key]
        return True

    @staticmethod
    def _trade(pos: Holding, signed: int, price: Decimal, mult: int) -> Decimal:
        """Move ``pos`` by ``signed`` contracts at ``price``; returns the realized P&L."""
        realized = ZERO
        if pos.qty and (pos.qty > 0) != (signed > 0):
            closing = min(abs(signed), abs(pos.qty))
            step = closing if signed > 0 else -closing
            # Cost released by the closing part, rounded to the cent; what rounding leaves
            # stays in the remaining cost basis, so the books still balance exactly.
            released = cents(pos.cost * closing / abs(pos.qty))
            realized = -step * price * mult - released
            pos.cost -= released
            pos.qty += step
            signed -= step
        if signed:
            if pos.qty == 0:
                pos.cost = ZERO
            pos.cost += signed * price * mult
            pos.qty += signed
        return realized

    def mark(self, key: str, price: float | Decimal) -> bool:
        """A fresh mark (mid of a fresh two-sided quote)."""
        pos = self.positions.get(key)
        if pos is None:
            return False
        pos.mark = dec(price)
        pos.mark_stale = False
        return True

    def mark_stale(self, key: str) -> None:
        """No fresh two-sided quote now: the last mark stays, flagged as stale."""
        pos = self.positions.get(key)
        if pos is not None:
            pos.mark_stale = True

    @property
    def stale_marks(self) -> list[str]:
        """Positions whose value rests on a stale, one-sided or missing mark."""
        return sorted(k for k, p in self.positions.items() if p.mark_stale)

    @property
    def market_value(self) -> Decimal:
        return sum((p.market_value for p in self.positions.values()), ZERO)

    @property
    def unrealized(self) -> Decimal:
        return sum((p.unrealized for p in self.positions.values()), ZERO)

    @property
    def equity(self) -> Decimal:
        return self.cash + self.market_value

    @property
    def premium_at_risk(self) -> Decimal:
        """Cost of the long option positions: the most they can lose."""
        return sum((p.cost for p in self.positions.values() if p.qty > 0), ZERO)

    @property
    def pnl(self) -> Decimal:
        """All P&L since the start: realized + unrealized - commissions."""
        return self.realized + self.unrealized - self.commissions
