"""Fill rules without I/O: touch size caps a fill, market orders pay slippage."""

from __future__ import annotations

from services.gateway_adapter.fills import WorkingOrder, commission, next_fill
from shared.schemas import Action, ContractRef, OrderNew, OrderType, Quote, Right, SecType

OPT = ContractRef(
    symbol="SPY",
    sec_type=SecType.OPT,
    expiry="20260116",
    strike=600,
    right=Right.CALL,
    multiplier=100,
)
QUOTE = Quote(contract=OPT, bid=2.40, ask=2.50, bid_size=7, ask_size=4)


def working(action: Action, qty: int, limit: float | None) -> WorkingOrder:
    kind = OrderType.MKT if limit is None else OrderType.LMT
    order = OrderNew(
        client_order_id="x",
        contract=OPT,
        action=action,
        quantity=qty,
        order_type=kind,
        limit_price=limit,
    )
    return WorkingOrder(order=order, limit=limit)


def test_next_fill_when_order_larger_than_touch_fills_touch_size_only() -> None:
    assert next_fill(working(Action.BUY, 10, 2.50), QUOTE, 1) == (4, 2.50)  # limit: no slip
    assert next_fill(working(Action.SELL, 3, 2.40), QUOTE, 1) == (3, 2.40)
    assert next_fill(working(Action.BUY, 10, 2.49), QUOTE, 1) is None  # not marketable


def test_next_fill_when_market_order_pays_slippage_ticks_beyond_touch() -> None:
    assert next_fill(working(Action.BUY, 2, None), QUOTE, 1) == (2, 2.51)
    assert next_fill(working(Action.SELL, 9, None), QUOTE, 2) == (7, 2.38)
    assert next_fill(working(Action.BUY, 2, None), QUOTE, 0) == (2, 2.50)


def test_next_fill_when_touch_has_no_size_fills_everything() -> None:
    bare = Quote(contract=OPT, bid=2.40, ask=2.50)
    assert next_fill(working(Action.BUY, 50, None), bare, 1) == (50, 2.51)


def test_commission_when_split_in_partials_sums_to_one_order() -> None:
    # The executor charges commission(cumulative) - charged so far: the minimum counts once.
    parts = [commission(OPT, n, 0.65, 1.0) for n in (1, 3, 10)]
    assert parts == [1.0, 1.95, 6.5]
