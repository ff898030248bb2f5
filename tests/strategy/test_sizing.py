"""Sizing on the seed's 3,756.96 paper account: zero contracts is a reported answer."""

from __future__ import annotations

from decimal import Decimal

from services.strategy.sizing import size_order

ACCOUNT = 3756.96


def size(price: float, room: Decimal | None = None, max_contracts: int = 2) -> tuple[int, str]:
    s = size_order(
        net_liquidation=ACCOUNT,
        price=price,
        multiplier=100,
        premium_pct=5.0,
        max_contracts=max_contracts,
        room=room,
    )
    return s.quantity, s.reason


def test_size_when_premium_above_budget_is_zero_with_reason() -> None:
    assert size(2.50) == (0, "size 0: premium 250.00 > budget 187.85")


def test_size_when_premium_fits_once_is_one() -> None:
    assert size(1.20) == (1, "size 1: premium 120.00 within budget 187.85")


def test_size_when_budget_allows_more_than_cap_is_capped() -> None:
    assert size(0.50) == (2, "size 2: capped at max contracts (budget allows 3)")


def test_size_when_total_premium_room_is_smaller_uses_room() -> None:
    assert size(0.90, room=Decimal("100.00")) == (
        1,
        "size 1: premium 90.00 within room left under the total premium limit 100.00",
    )
    assert size(0.90, room=Decimal("50")) == (
        0,
        "size 0: premium 90.00 > room left under the total premium limit 50.00",
    )


def test_size_when_budget_exactly_matches_is_not_rounded_down() -> None:
    assert size(1.8785)[0] == 1  # 187.85 == budget 187.85
    assert size(1.8786)[0] == 0  # 187.86 > 187.85: never rounded up
