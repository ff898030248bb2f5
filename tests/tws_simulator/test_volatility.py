"""One clock: the path realizes the volatility its options imply (issue 15, item 2).

The market model is driven directly over many seeded steps (no wall time):
realized volatility, annualized on the pricer's calendar year, must sit within
sampling error of the at-the-money implied volatility the pricer quotes.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from services.tws_simulator.market import YEAR_SECONDS, Market
from services.tws_simulator.nyse import sessions
from services.tws_simulator.options import OptionPricer
from services.tws_simulator.regimes import Regime

SYMBOLS = ("SPY", "QQQ", "AAPL", "NVDA", "KO", "INTC")
START = dt.datetime(2026, 1, 5, 15, 0, tzinfo=dt.UTC).timestamp()  # a Monday, market open


def _run(market: Market, steps: int, every: int) -> tuple[np.ndarray, np.ndarray]:
    """Log prices and ATM IVs of SYMBOLS sampled every ``every`` steps."""
    pricer = OptionPricer(market)
    logs, ivs = [], []
    for i in range(steps + 1):
        if i % every == 0:
            logs.append([math.log(market.price(s)) for s in SYMBOLS])
            ivs.append([pricer.atm_iv(s) for s in SYMBOLS])
        if i < steps:
            market.step()
    return np.array(logs), np.array(ivs)


def _ratio(logs: np.ndarray, ivs: np.ndarray, seconds: float) -> np.ndarray:
    """Realized / implied per symbol: mean-removed returns (drift is not diffusion)
    against the root-mean-square IV over each return's interval."""
    returns = np.diff(logs, axis=0)
    realized = returns.std(axis=0, ddof=1) * math.sqrt(YEAR_SECONDS / seconds)
    implied = np.sqrt((ivs[:-1] ** 2).mean(axis=0))
    return np.asarray(realized / implied)


@pytest.mark.parametrize("regime", list(Regime))
def test_realized_vol_when_sampled_every_5s_matches_atm_implied(regime: Regime) -> None:
    market = Market(3, 5.0, START, regime, 0)
    logs, ivs = _run(market, 8_000, 1)
    ratio = _ratio(logs, ivs, 5.0)
    # 8,000 returns: relative sampling error of a volatility ~0.8 %
    assert np.all(np.abs(ratio - 1) < 0.04), dict(zip(SYMBOLS, ratio.round(3), strict=True))


@pytest.mark.parametrize("regime", [Regime.TRENDING_UP, Regime.TRENDING_DOWN])
def test_realized_vol_when_sampled_hourly_matches_atm_implied(regime: Regime) -> None:
    """Longer horizon, same clock (choppy's pull to its anchor is a drift that damps
    moves beyond ~10 minutes, so it is checked at 5 s only)."""
    market = Market(11, 600.0, START, regime, 0)
    logs, ivs = _run(market, 60 * 24 * 6, 6)  # 60 days of hourly returns
    ratio = _ratio(logs, ivs, 3600.0)
    # 1,440 returns: relative sampling error ~1.9 %
    assert np.all(np.abs(ratio - 1) < 0.08), dict(zip(SYMBOLS, ratio.round(3), strict=True))


def test_regular_hours_when_closed_nothing_moves_and_the_open_gaps() -> None:
    friday_close = dt.datetime(2026, 1, 9, 21, 0, tzinfo=dt.UTC).timestamp()
    market = Market(5, 300.0, friday_close - 3600, Regime.TRENDING_UP, 0, sessions())
    while market.now() < friday_close:
        market.step()
    closed = market.price("AAPL"), market.price("VIX")
    while market.now() < friday_close + 2 * 86400:  # the weekend
        market.step()
        assert not market.open
    assert (market.price("AAPL"), market.price("VIX")) == closed
    monday_open = dt.datetime(2026, 1, 12, 14, 30, tzinfo=dt.UTC).timestamp()
    while market.now() < monday_open:
        market.step()
    assert market.open and market.price("AAPL") != closed[0]


def test_realized_vol_when_regular_hours_matches_implied_across_nights() -> None:
    """Close-to-close returns over nights and weekends (gap at the open) realize the
    implied volatility on calendar time: options decay overnight, the path gaps."""
    market = Market(9, 300.0, START, Regime.TRENDING_UP, 0, sessions())
    pricer = OptionPricer(market)
    z: list[np.ndarray] = []
    last: tuple[float, np.ndarray, np.ndarray] | None = None
    returns: list[np.ndarray] = []
    spans: list[tuple[float, np.ndarray]] = []
    end = START + 200 * 86400
    was_open = market.open
    while market.now() < end:
        market.step()
        if was_open and not market.open:  # first step after a session close
            logs = np.array([math.log(market.price(s)) for s in SYMBOLS])
            ivs = np.array([pricer.atm_iv(s) for s in SYMBOLS])
            if last is not None:
                returns.append(logs - last[1])
                spans.append((market.now() - last[0], last[2]))
            last = (market.now(), logs, ivs)
        was_open = market.open
    r = np.array(returns)
    r -= r.mean(axis=0)  # one session's drift each: not diffusion
    for ret, (seconds, iv) in zip(r, spans, strict=True):
        z.append(ret / (iv * math.sqrt(seconds / YEAR_SECONDS)))
    ratio = np.sqrt((np.array(z) ** 2).mean(axis=0))
    # ~135 sessions: relative sampling error ~6 % per symbol; the pooled mean is tighter
    assert abs(float(ratio.mean()) - 1) < 0.1, dict(zip(SYMBOLS, ratio.round(3), strict=True))
    assert np.all(np.abs(ratio - 1) < 0.25), dict(zip(SYMBOLS, ratio.round(3), strict=True))
