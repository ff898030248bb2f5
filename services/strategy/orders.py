"""Our orders: deterministic ids, limit prices, and the working-order book.

Client order ids are derived, not random, so a repeated decision maps to the same
id and the executor (which records every id once) never opens a second position:
- entry ``ob-{YYYYMMDD}-{SYMBOL}-{C|P}-{n}``: the n-th entry order of that
  underlying and right today. n counts the entry orders already on
  ``orders:requests``, so a restarted strategy computes the same next id.
  The contract is left out on purpose: after a restart the market has moved and
  another strike may look best, yet it is still the same entry.
- exit ``ox-{entry id without ob-}-{k}``: the k-th attempt to close that position.
Limits start at mid + offset x spread and step toward the far side (ask for buys,
bid for sells) a bounded number of times; then the order is cancelled.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from shared.schemas import (
    Action,
    ContractRef,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
    Quote,
    Right,
)
from shared.settings import StrategySettings

ENTRY_PREFIX = "ob-"
EXIT_PREFIX = "ox-"
TERMINAL = frozenset({OrderEventKind.FILL, OrderEventKind.CANCELLED, OrderEventKind.REJECTED})


def entry_id(day: dt.date, symbol: str, right: Right, n: int) -> str:
    return f"{ENTRY_PREFIX}{day:%Y%m%d}-{symbol}-{right.value}-{n}"


def exit_id(entry: str, attempt: int) -> str:
    return f"{EXIT_PREFIX}{entry.removeprefix(ENTRY_PREFIX)}-{attempt}"


@dataclass(frozen=True, slots=True)
class PricingParams:
    """Limit pricing; built only from ``StrategySettings``, which states the defaults."""

    offset: float  # fraction of the spread added to mid (buys) / taken off (sells)
    steps: int
    interval_s: float

    @classmethod
    def from_settings(cls, s: StrategySettings) -> PricingParams:
        return cls(s.strat_limit_offset, s.strat_reprice_steps, s.strat_reprice_interval_s)


def _round(price: float, action: Action) -> float:
    """To the cent, toward the far side (a buy never rounds below its intended price)."""
    scaled = price * 100
    cents = math.ceil(scaled - 1e-9) if action is Action.BUY else math.floor(scaled + 1e-9)
    return max(cents, 1) / 100


def limit_price(action: Action, bid: float, ask: float, step: int, p: PricingParams) -> float:
    """Step 0 at mid + offset; step ``p.steps`` at the far side of the spread."""
    mid = (bid + ask) / 2
    spread = ask - bid
    if action is Action.BUY:
        base = min(mid + p.offset * spread, ask)
        target = ask
    else:
        base = max(mid - p.offset * spread, bid)
        target = bid
    frac = min(step / p.steps, 1.0) if p.steps else 1.0
    return _round(base + (target - base) * frac, action)


@dataclass
class Working:
    """An order we sent that has not reached a terminal event."""

    order: OrderNew
    limit: float | None
    sent_at: float  # monotonic
    next_step_at: float
    reprices: int = 0
    filled: int = 0
    acked: bool = False
    cancel_sent: bool = False

    @property
    def remaining(self) -> int:
        """The unfilled part: all that can still fill (and add premium)."""
        return max(self.order.quantity - self.filled, 0)


@dataclass
class OrderBook:
    """All orders seen on the bus, rebuilt on start from the two order streams."""

    requests: dict[str, OrderNew] = field(default_factory=dict)
    working: dict[str, Working] = field(default_factory=dict)
    outcome: dict[str, OrderEventKind] = field(default_factory=dict)
    sent_times: list[float] = field(default_factory=list)

    def on_request(self, order: OrderNew, now: float, interval_s: float) -> None:
        if order.client_order_id in self.requests:
            return
        self.requests[order.client_order_id] = order
        self.sent_times.append(now)
        if order.client_order_id not in self.outcome:
            self.working[order.client_order_id] = Working(
                order, order.limit_price, now, now + interval_s
            )

    def on_modify(self, req: OrderModify, now: float, interval_s: float) -> None:
        w = self.working.get(req.client_order_id)
        if w is not None:
            w.limit = req.limit_price
            w.reprices += 1
            w.next_step_at = now + interval_s

    def on_hold(self, cid: str, now: float, interval_s: float) -> None:
        """A reprice step used up without a new price (a limit stopped it)."""
        w = self.working.get(cid)
        if w is not None:
            w.reprices += 1
            w.next_step_at = now + interval_s

    def on_cancel(self, req: OrderCancel) -> None:
        w = self.working.get(req.client_order_id)
        if w is not None:
            w.cancel_sent = True

    def on_event(self, ev: OrderEvent) -> Working | None:
        """Track state; returns the working order the event belongs to (if any).

        A ``denied`` order (only in entries written before denials became decisions) was
        never sent (its id stays free); a refused cancel or
        modify of an order that is gone is terminal for it.
        """
        cid = ev.client_order_id
        w = self.working.get(cid)
        if ev.kind is OrderEventKind.DENIED:
            return None
        if ev.kind is OrderEventKind.FILL and ev.remaining > 0 and w is not None:
            w.filled = ev.filled_total
            return w
        if ev.kind in TERMINAL:
            self.outcome[cid] = ev.kind
            return self.working.pop(cid, None)
        if w is None:
            return None
        if ev.kind is OrderEventKind.ACK:
            w.acked = True
        elif ev.kind is OrderEventKind.PARTIAL:
            w.filled = ev.filled_total
        elif ev.kind is OrderEventKind.MODIFIED:
            w.acked = True
        return w

    def working_keys(self) -> frozenset[str]:
        return frozenset(w.order.contract.key for w in self.working.values())

    def exit_keys(self) -> frozenset[str]:
        return frozenset(w.order.contract.key for w in self.working.values() if w.order.reduce_only)

    def working_entry(self, key: str) -> Working | None:
        return next(
            (
                w
                for w in self.working.values()
                if not w.order.reduce_only and w.order.contract.key == key
            ),
            None,
        )

    def working_entries(self) -> list[Working]:
        return [w for w in self.working.values() if not w.order.reduce_only]

    def orders_since(self, since: float) -> int:
        self.sent_times = [t for t in self.sent_times if t >= since]
        return len(self.sent_times)

    def entries_today(self, day: dt.date, symbol: str, right: Right) -> int:
        prefix = entry_id(day, symbol, right, 0)[:-1]
        return sum(1 for cid in self.requests if cid.startswith(prefix))

    def exit_attempts(self, entry: str) -> int:
        prefix = exit_id(entry, 0)[:-1]
        return sum(1 for cid in self.requests if cid.startswith(prefix))

    def working_exit(self, key: str) -> Working | None:
        return next(
            (
                w
                for w in self.working.values()
                if w.order.reduce_only and w.order.contract.key == key
            ),
            None,
        )

    def has_entry_for(self, symbol: str) -> bool:
        return any(
            not w.order.reduce_only and w.order.contract.symbol == symbol
            for w in self.working.values()
        )


@dataclass(frozen=True, slots=True)
class Reprice:
    limit: float


@dataclass(frozen=True, slots=True)
class Cancel:
    reason: str


def next_step(
    w: Working, quote: Quote | None, now: float, p: PricingParams
) -> Reprice | Cancel | None:
    """What to do with a working limit order now: reprice, cancel, or wait."""
    if now < w.next_step_at or w.limit is None or not w.acked or w.cancel_sent:
        return None
    if w.reprices >= p.steps:
        return Cancel(f"not filled after {w.reprices} reprices")
    if quote is None or quote.bid is None or quote.ask is None:
        return None
    price = limit_price(w.order.action, quote.bid, quote.ask, w.reprices + 1, p)
    return Reprice(price)


def contract_side(ref: ContractRef, qty: int) -> Action:
    """The closing action of a position of ``qty`` contracts."""
    return Action.SELL if qty > 0 else Action.BUY
