"""The entry gate: denials that need no option chain are found before one is asked for."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from services.strategy.gate import MIN_PLAUSIBLE_PREMIUM, entry_block, entry_room, free_slots
from services.strategy.risk import RiskLimits, RiskState, RiskStatus, RiskView
from shared.settings import RiskSettings

# the defaults: 5 % a trade, 15 % in total, 3 positions, 10 orders a minute
LIMITS = RiskLimits.from_settings(RiskSettings())
OK = RiskView(
    status=RiskStatus(RiskState.ACTIVE),
    gateway_connected=True,
    gateway_why="connected",
    quote_age_s=None,  # the view of a contract we have no quote for: not a reason
    working_keys=frozenset(),
    exit_keys=frozenset(),
    open_positions=0,
    position_qty=0,
    premium_at_risk=Decimal(0),
    opening_equity=Decimal("3756.96"),
    daily_pnl=Decimal(0),
    orders_last_min=0,
)


def test_entry_block_when_everything_in_limits_lets_the_chain_be_asked() -> None:
    assert entry_block(OK, LIMITS) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"open_positions": 3}, "max_positions: 3 positions open (limit 3)"),
        ({"gateway_connected": False, "gateway_why": "1100"}, "gateway: gateway not connected"),
        ({"orders_last_min": 10}, "order_rate: 10 orders in the last minute"),
        ({"daily_pnl": Decimal("-200.00")}, "daily_loss: daily loss 200.00"),
        ({"status": RiskStatus(RiskState.HALTED, "news")}, "state: risk state HALTED"),
        # cap 563.54 (15 %), 560.00 at risk: 3.54 left, below any real contract
        ({"premium_at_risk": Decimal("560.00")}, "total_premium: room left 3.54 < 5.00"),
    ],
)
def test_entry_block_when_a_limit_is_reached_says_which_before_any_chain(
    change: dict[str, object], expected: str
) -> None:
    reason = entry_block(dataclasses.replace(OK, **change), LIMITS)  # type: ignore[arg-type]
    assert reason is not None and reason.startswith(expected), reason


def test_entry_room_when_total_cap_nearly_used_is_what_the_cap_leaves() -> None:
    assert entry_room(OK, LIMITS) == Decimal("187.85")  # 5 % of 3,756.96: the trade budget
    nearly = dataclasses.replace(OK, premium_at_risk=Decimal("500.00"))
    assert entry_room(nearly, LIMITS) == Decimal("63.54")  # 563.54 - 500.00
    over = dataclasses.replace(OK, premium_at_risk=Decimal("600.00"))
    assert entry_room(over, LIMITS) == Decimal(0) < MIN_PLAUSIBLE_PREMIUM


def test_free_slots_when_positions_open_counts_what_is_left() -> None:
    assert free_slots(OK, LIMITS) == 3
    assert free_slots(dataclasses.replace(OK, open_positions=2), LIMITS) == 1
    assert free_slots(dataclasses.replace(OK, open_positions=5), LIMITS) == 0
