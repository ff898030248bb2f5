"""Simulated fill rules (pure): where and how much of an order fills against a quote.

Buys take the ask, sells hit the bid, never more than the size quoted at the touch
(what is left waits for later quotes). A touch without a size counts as deep
enough. Market orders pay ``slippage`` beyond the touch (ticks of 0.01).
"""

from __future__ import annotations

import msgspec

from shared.schemas import Action, ContractRef, OrderNew, OrderType, Quote, SecType

TICK = 0.01  # one price increment for options and stocks (penny pilot; kept simple)


class WorkingOrder(msgspec.Struct, kw_only=True):
    """A working simulated order: what ``orders:working`` holds per client order id."""

    order: OrderNew
    limit: float | None
    filled: int = 0
    commission: float = 0.0  # charged so far (the per-order minimum counts once)
    fees: float = 0.0  # per-contract fees so far, before the per-order minimum
    fills: int = 0

    @property
    def remaining(self) -> int:
        return self.order.quantity - self.filled

    @property
    def is_market(self) -> bool:
        return self.order.order_type is OrderType.MKT


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(WorkingOrder)


def dump(w: WorkingOrder) -> bytes:
    return _enc.encode(w)


def load(raw: bytes) -> WorkingOrder:
    """Raises ``msgspec.DecodeError`` / ``ValidationError`` for an entry we cannot read."""
    return _dec.decode(raw)


def option_rate(premium: float, per_contract: float) -> float:
    """USD per option contract by premium, IBKR Pro fixed (US options schedule).

    0.65 (``per_contract``) at a premium >= 0.10, 0.50 from 0.05 to below 0.10, 0.25
    below 0.05; a lower ``per_contract`` caps every tier (0 = no commission).
    https://www.interactivebrokers.com/en/pricing/commissions-options.php
    """
    if premium >= 0.10:
        return per_contract
    return min(per_contract, 0.50 if premium >= 0.05 else 0.25)


def fill_fee(ref: ContractRef, qty: int, price: float, per_contract: float) -> float:
    """Fee of one fill before the per-order minimum: options by tier, stocks $0.005/share."""
    rate = option_rate(price, per_contract) if ref.sec_type is SecType.OPT else 0.005
    return round(rate * qty, 6)


def commission(fees: float, minimum: float) -> float:
    """An order's commission so far: its fills' fees, at least the per-order minimum."""
    return round(max(minimum, fees), 4)


def touch(action: Action, q: Quote | None) -> tuple[float | None, float | None]:
    """Price and size a marketable order of ``action`` meets: (ask, ask size) or (bid, ...)."""
    if q is None:
        return None, None
    if action is Action.BUY:
        return q.ask, q.ask_size
    return q.bid, q.bid_size


def fill_price(action: Action, limit: float | None, q: Quote | None) -> float | None:
    """Where a marketable order fills now (buy at ask, sell at bid), else None."""
    price, _ = touch(action, q)
    if price is None or price <= 0:
        return None
    if limit is not None and (price > limit if action is Action.BUY else price < limit):
        return None
    return price


def next_fill(w: WorkingOrder, q: Quote | None, slippage_ticks: int) -> tuple[int, float] | None:
    """(quantity, price) that fills now, or None: capped by the touch size."""
    price = fill_price(w.order.action, w.limit, q)
    if price is None or w.remaining <= 0:
        return None
    _, size = touch(w.order.action, q)
    qty = w.remaining if size is None else min(w.remaining, int(size))
    if qty <= 0:
        return None
    if w.is_market and slippage_ticks:
        slip = slippage_ticks * TICK
        price = price + slip if w.order.action is Action.BUY else max(TICK, price - slip)
    return qty, round(price, 4)
