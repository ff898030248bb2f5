"""Option expiry in the simulated book (pure): who is due, at what price, which event.

Without it a held option rode through its expiration and stayed on the books forever.
At the expiry instant (``shared.market_calendar``: the NYSE close of the expiry date,
13:00 New York on early-close days) each held option settles in cash: worthless when
out of the money, at intrinsic value when in the money, against the adapter's own
last quote of the underlying. (Real equity options are physically exercised into
shares; the simulated book settles the intrinsic value in cash instead, which leaves
the same P&L without a stock position nobody asked for.) The settlement is an
``expired`` order event that reads like a closing fill: action, quantity, price, and
an exec id unique per contract, which the journal also records as the "seen" guard,
so a contract settles once, even across adapter restarts.
"""

from __future__ import annotations

import json

from shared.contract import ORDERS_SEEN
from shared.market_calendar import expired
from shared.schemas import Action, ContractRef, OrderEvent, OrderEventKind, Quote, Right, SecType

CHECK_INTERVAL_S = 5.0  # how often the adapter looks for options past their expiry


def is_expired(ref: ContractRef, now: float) -> bool:
    """An option whose expiry instant has passed (never true for stocks)."""
    return ref.sec_type is SecType.OPT and bool(ref.expiry) and expired(ref.expiry, now)


def underlying_price(q: Quote | None) -> float | None:
    """The underlying's settlement price from our last quote: last trade, else the mark."""
    if q is None:
        return None
    return q.last if q.last else q.mark


def intrinsic(ref: ContractRef, underlying: float) -> float:
    """Per-share value at expiry: max(0, S - K) for a call, max(0, K - S) for a put."""
    if ref.strike is None:
        return 0.0
    value = underlying - ref.strike if ref.right is Right.CALL else ref.strike - underlying
    return round(max(0.0, value), 4)


def expiry_id(ref: ContractRef) -> str:
    """Client order id and exec id of a contract's settlement: one per contract, ever."""
    return f"expiry-{ref.key}"


def expiry_event(ref: ContractRef, qty: int, underlying: float) -> OrderEvent:
    """The settlement of ``qty`` held contracts (signed) as a closing ``expired`` event."""
    price = intrinsic(ref, underlying)
    cid = expiry_id(ref)
    how = "worthless" if price == 0 else f"in the money, settled at intrinsic {price:g}"
    return OrderEvent(
        client_order_id=cid,
        kind=OrderEventKind.EXPIRED,
        contract=ref,
        action=Action.SELL if qty > 0 else Action.BUY,
        fill_qty=abs(qty),
        fill_price=price,
        filled_total=abs(qty),
        exec_id=cid,
        reason=f"expired {how} ({ref.symbol} {underlying:g}, strike {ref.strike or 0:g})",
    )


def expiry_guard(ev: OrderEvent) -> tuple[str, str, str]:
    """The journal guard that makes a settlement happen once (``orders:seen``)."""
    qty = ev.fill_qty
    payload = json.dumps(
        {"route": "expiry", "key": ev.contract.key if ev.contract else "", "qty": qty}
    )
    return (ORDERS_SEEN, ev.client_order_id, payload)
