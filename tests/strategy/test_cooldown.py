"""The chain cooldown: a symbol that could not be traded rests, unless things change."""

from __future__ import annotations

from decimal import Decimal

from services.strategy.cooldown import ChainCooldown


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


UNAFFORDABLE = "size 0: premium 1194.00 > room left under the total premium limit 187.85"


def test_blocked_when_unaffordable_rests_with_a_stable_reason_until_the_time_is_up() -> None:
    clock = Clock()
    cd = ChainCooldown(300.0, 2.0, clock)
    cd.note("TSLA", UNAFFORDABLE, spot=250.0, premium=Decimal("1194.00"))
    first = cd.blocked("TSLA", spot=251.0, room=Decimal("187.85"))
    clock.t += 299.0
    later = cd.blocked("TSLA", spot=249.0, room=Decimal("187.85"))
    assert first is not None and first == later  # the same text: deduped decisions
    assert "chain cooldown until" in first and "room reaches 1194.00" in first
    assert UNAFFORDABLE in first
    clock.t += 1.0
    assert cd.blocked("TSLA", spot=250.0, room=Decimal("187.85")) is None
    assert len(cd) == 0


def test_blocked_when_price_moves_enough_lifts_the_cooldown_early() -> None:
    cd = ChainCooldown(300.0, 2.0, Clock())
    cd.note("TSLA", UNAFFORDABLE, spot=250.0, premium=Decimal("1194.00"))
    assert cd.blocked("TSLA", spot=254.0, room=Decimal(0)) is not None  # 1.6 %
    assert cd.blocked("TSLA", spot=244.9, room=Decimal(0)) is None  # -2.04 %


def test_blocked_when_room_grows_to_the_premium_lifts_the_cooldown_early() -> None:
    cd = ChainCooldown(300.0, 2.0, Clock())
    cd.note("TSLA", UNAFFORDABLE, spot=250.0, premium=Decimal("1194.00"))
    assert cd.blocked("TSLA", spot=250.0, room=Decimal("1193.99")) is not None
    assert cd.blocked("TSLA", spot=250.0, room=Decimal("1194.00")) is None


def test_blocked_when_no_eligible_option_room_does_not_lift_it() -> None:
    cd = ChainCooldown(300.0, 2.0, Clock())
    cd.note("META", "no contract fits: 12 |delta| outside 0.35-0.50", spot=500.0)
    reason = cd.blocked("META", spot=None, room=Decimal("100000"))
    assert reason is not None and "room" not in reason.split("(last look")[0]


def test_note_when_cooldown_is_zero_never_blocks() -> None:
    cd = ChainCooldown(0.0, 2.0, Clock())
    cd.note("TSLA", UNAFFORDABLE, spot=250.0, premium=Decimal("1194.00"))
    assert cd.blocked("TSLA", spot=250.0, room=Decimal(0)) is None


def test_clear_when_an_order_went_out_forgets_the_symbol() -> None:
    cd = ChainCooldown(300.0, 2.0, Clock())
    cd.note("AAPL", "no contract fits", spot=200.0)
    cd.clear("AAPL")
    assert cd.blocked("AAPL", spot=200.0, room=Decimal(0)) is None
