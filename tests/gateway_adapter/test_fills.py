"""Fill rules without I/O: touch size caps a fill, market orders pay slippage, fee tiers."""

from __future__ import annotations

from itertools import accumulate

import pytest

from services.gateway_adapter.fills import WorkingOrder, commission, fill_fee, next_fill
from services.tws_simulator.contracts import Instrument
from services.tws_simulator.orders import commission as sim_commission
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
    # The executor charges commission(fees so far) - charged so far: the minimum counts once.
    fees = list(accumulate(fill_fee(OPT, n, 2.50, 0.65) for n in (1, 2, 7)))
    assert [commission(f, 1.0) for f in fees] == [1.0, 1.95, 6.5]


@pytest.mark.parametrize(
    ("premium", "rate"),
    [(2.50, 0.65), (0.10, 0.65), (0.0999, 0.50), (0.05, 0.50), (0.0499, 0.25), (0.01, 0.25)],
)
def test_fill_fee_when_premium_in_tier_charges_ibkr_pro_rate(premium: float, rate: float) -> None:
    assert fill_fee(OPT, 100, premium, 0.65) == round(rate * 100, 6)
    assert commission(fill_fee(OPT, 1, premium, 0.65), 1.0) == 1.0  # the $1 order minimum


def test_fill_fee_when_per_contract_lowered_caps_every_tier() -> None:
    assert [fill_fee(OPT, 10, p, 0.0) for p in (1.0, 0.07, 0.01)] == [0.0, 0.0, 0.0]
    assert fill_fee(OPT, 10, 0.07, 0.30) == 3.0 and fill_fee(OPT, 10, 0.01, 0.30) == 2.5
    assert fill_fee(ContractRef(symbol="SPY"), 400, 0.01, 0.65) == 2.0  # stock: $0.005/share


def test_commission_when_partials_cross_tiers_charges_each_fill_its_tier() -> None:
    fees = fill_fee(OPT, 4, 0.12, 0.65) + fill_fee(OPT, 4, 0.08, 0.65)  # 2.60 + 2.00
    assert commission(fees, 1.0) == 4.6


def test_simulator_commission_when_premium_in_tier_charges_ibkr_pro_rate() -> None:
    opt = Instrument(1, "SPY", "OPT", "SMART", "", "USD", "", "", "", multiplier="100")
    got = [sim_commission(opt, 10, p) for p in (0.10, 0.0999, 0.05, 0.0499)]
    assert got == [6.5, 5.0, 5.0, 2.5]
    assert sim_commission(opt, 1, 0.01) == 1.0
