"""NYSE calendar: holiday expirations, the expiry instant, history volume (issue 15, item 3)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from services.tws_simulator.chains import expirations
from services.tws_simulator.history import History
from services.tws_simulator.market import Market
from services.tws_simulator.nyse import expiry_day, expiry_epoch
from services.tws_simulator.regimes import Regime


def _utc(expiry: str) -> str:
    return dt.datetime.fromtimestamp(expiry_epoch(expiry), dt.UTC).strftime("%Y%m%d %H:%M")


@pytest.mark.parametrize(
    ("friday", "listed"),
    [
        (dt.date(2026, 4, 3), dt.date(2026, 4, 2)),  # Good Friday
        (dt.date(2026, 6, 19), dt.date(2026, 6, 18)),  # Juneteenth (a 3rd-Friday monthly)
        (dt.date(2026, 7, 3), dt.date(2026, 7, 2)),  # Independence Day observed
        (dt.date(2027, 3, 26), dt.date(2027, 3, 25)),  # Good Friday 2027
        (dt.date(2026, 4, 10), dt.date(2026, 4, 10)),  # an ordinary Friday stays
    ],
)
def test_expiry_day_when_friday_is_a_holiday_is_the_business_day_before(
    friday: dt.date, listed: dt.date
) -> None:
    assert expiry_day(friday) == listed


@pytest.mark.parametrize(
    ("today", "holiday", "listed"),
    [
        (dt.date(2026, 3, 30), "20260403", "20260402"),
        (dt.date(2026, 5, 1), "20260619", "20260618"),
        (dt.date(2026, 6, 29), "20260703", "20260702"),
    ],
)
def test_chain_expirations_when_a_friday_is_a_holiday_list_the_day_before(
    today: dt.date, holiday: str, listed: str
) -> None:
    listing = expirations(today)
    assert holiday not in listing and listed in listing
    assert list(listing) == sorted(set(listing))


@pytest.mark.parametrize(
    ("expiry", "utc"),
    [
        ("20260116", "20260116 21:00"),  # winter: 16:00 EST
        ("20260710", "20260710 20:00"),  # summer: 16:00 EDT
        ("20261127", "20261127 18:00"),  # day after Thanksgiving: early close 13:00 EST
        ("20260403", "20260402 20:00"),  # Good Friday: expires Thursday's close
    ],
)
def test_expiry_epoch_when_listed_is_the_new_york_close_of_that_session(
    expiry: str, utc: str
) -> None:
    assert _utc(expiry) == utc


def test_history_minutes_when_compared_with_live_minutes_have_the_same_volume_scale() -> None:
    start = dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC).timestamp()
    market = Market(7, 0.25, start, Regime.CHOPPY, 0)  # the default 4 steps a second
    for _ in range(6 * 240):  # six live minutes
        market.step()
    history = History(7, market)
    bars = history.bars("AAPL", market.now(), 2 * 3600, 60)
    past = [b.volume for b in bars if b.time < start]
    live = [b.volume for b in bars if start <= b.time < market.now() - 60]
    assert len(past) > 100 and len(live) >= 4
    ratio = float(np.mean(live) / np.mean(past))
    assert 0.7 < ratio < 1.4, (np.mean(live), np.mean(past))
