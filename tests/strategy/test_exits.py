"""Exit rules: take-profit, stop-loss, holding time, DTE floor, sentiment flip."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from services.strategy.exits import ExitParams, exit_reason
from shared.schemas import ContractRef, Right, SecType, Sentiment
from shared.settings import StrategySettings

NOW = dt.datetime(2025, 1, 2, 15, 0, tzinfo=dt.UTC)
OPENED = int((NOW - dt.timedelta(hours=2)).timestamp() * 1e9)
P = ExitParams.from_settings(StrategySettings(strat_max_hold_s=86_400))  # +50 %, -30 %, 7 DTE


def call(expiry: str = "20250124", right: Right = Right.CALL) -> ContractRef:
    return ContractRef(
        symbol="XYZ", sec_type=SecType.OPT, expiry=expiry, strike=100, right=right, multiplier=100
    )


def reason(
    mark: str | None,
    *,
    contract: ContractRef | None = None,
    opened: int = OPENED,
    sentiment: Sentiment | None = Sentiment.BULLISH,
) -> str | None:
    return exit_reason(
        contract=contract or call(),
        qty=1,
        avg_price=Decimal("2.00"),
        mark=None if mark is None else Decimal(mark),
        opened_ns=opened,
        now=NOW,
        sentiment=sentiment,
        params=P,
    )


def test_exit_when_mark_up_half_takes_profit() -> None:
    assert reason("3.00") == "take-profit: +50.0% of premium >= 50%"


def test_exit_when_mark_down_30pct_stops_loss() -> None:
    assert reason("1.40") == "stop-loss: -30.0% of premium <= -30%"


def test_exit_when_inside_band_holds() -> None:
    assert reason("2.99") is None and reason("1.41") is None


def test_exit_when_held_too_long_closes() -> None:
    old = int((NOW - dt.timedelta(hours=25)).timestamp() * 1e9)
    assert reason("2.00", opened=old) == "max holding time: held 25.0h >= 24.0h"


def test_exit_when_dte_below_floor_closes() -> None:
    assert reason("2.00", contract=call("20250108")) == "DTE floor: 6 days left < 7"
    assert reason("2.00", contract=call("20250109")) is None  # 7 days: at the floor, kept


def test_exit_when_sentiment_turns_against_position_closes() -> None:
    assert reason("2.00", sentiment=Sentiment.BEARISH) == (
        "sentiment flipped to BEARISH against the position"
    )
    assert reason("2.00", sentiment=Sentiment.NEUTRAL) is None
    put = call(right=Right.PUT)
    assert reason("2.00", contract=put, sentiment=Sentiment.BULLISH) is not None
    assert reason("2.00", contract=put, sentiment=Sentiment.BEARISH) is None


def test_exit_when_mark_stale_only_time_rules_apply() -> None:
    assert reason(None) is None  # no price-based exit on a missing/stale mark
    assert reason(None, contract=call("20250105")) == "DTE floor: 3 days left < 7"
