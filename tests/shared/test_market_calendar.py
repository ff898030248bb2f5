"""The NYSE calendar helper: trading date, expiry instant (early closes), DTE."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from services.strategy.exits import ExitParams, exit_reason
from shared.market_calendar import (
    NEW_YORK,
    dte,
    expired,
    expiry_instant,
    is_session,
    trading_date,
)
from shared.schemas import ContractRef, Right, SecType
from shared.settings import StrategySettings

LATE = dt.datetime(2026, 3, 12, 23, 30, tzinfo=NEW_YORK)  # Thursday; UTC is already Friday


def test_dte_when_2330_new_york_and_utc_date_is_next_day_counts_from_nyse_date() -> None:
    assert LATE.astimezone(dt.UTC).date() == dt.date(2026, 3, 13)
    assert trading_date(LATE) == dt.date(2026, 3, 12)
    assert trading_date(LATE.timestamp()) == dt.date(2026, 3, 12)
    assert dte("20260320", LATE) == 8  # the UTC date would say 7
    assert dte("20260320", LATE.astimezone(dt.UTC)) == 8  # the zone of the instant is moot


def test_exit_when_2330_new_york_judges_dte_floor_on_nyse_date() -> None:
    opt = ContractRef(
        symbol="SPY",
        sec_type=SecType.OPT,
        expiry="20260319",
        strike=600,
        right=Right.CALL,
        multiplier=100,
    )
    hold = exit_reason(
        contract=opt,
        qty=1,
        avg_price=Decimal(0),
        mark=None,
        opened_ns=0,
        now=LATE.astimezone(dt.UTC),
        sentiment=None,
        params=ExitParams.from_settings(StrategySettings(strat_exit_dte=7)),
    )
    assert hold is None  # 7 days left on the NYSE date (6 on the UTC date would exit)


def test_expiry_instant_when_regular_day_is_1600_new_york() -> None:
    assert expiry_instant("20261218") == dt.datetime(2026, 12, 18, 16, tzinfo=NEW_YORK)
    assert expiry_instant("20260717") == dt.datetime(2026, 7, 17, 20, tzinfo=dt.UTC)  # EDT


def test_expiry_instant_when_early_close_is_1300_new_york() -> None:
    at = expiry_instant("20261127")  # the day after Thanksgiving
    assert at == dt.datetime(2026, 11, 27, 13, tzinfo=NEW_YORK)
    assert not expired("20261127", at - dt.timedelta(seconds=1))
    assert expired("20261127", at) and expired("20261127", at.timestamp() + 1)


def test_expiry_instant_when_expiry_date_is_a_holiday_is_previous_close() -> None:
    assert not is_session(dt.date(2026, 4, 3))  # Good Friday
    assert expiry_instant("20260403") == dt.datetime(2026, 4, 2, 16, tzinfo=NEW_YORK)


def test_calendar_when_beyond_exchange_calendar_assumes_regular_close() -> None:
    assert expiry_instant("20400120") == dt.datetime(2040, 1, 20, 16, tzinfo=NEW_YORK)
    assert is_session(dt.date(2040, 1, 20)) and not is_session(dt.date(2040, 1, 21))


def test_trading_date_when_naive_datetime_refuses() -> None:
    with pytest.raises(ValueError, match="aware"):
        trading_date(dt.datetime(2026, 3, 12, 23, 30))
