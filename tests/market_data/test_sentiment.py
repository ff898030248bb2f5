"""Sentiment rule on constructed price paths; expected values worked out by hand."""

from __future__ import annotations

import pytest

from services.market_data.sentiment import (
    SentimentInputs,
    SentimentParams,
    SentimentTracker,
    compute_inputs,
    target_state,
)
from shared.schemas import Sentiment
from shared.settings import SentimentSettings

# the defaults: trend 30 bars, SMA 20, enter 0.20 %, exit 0.05 %, VIX 10 bars/8 %/30
P = SentimentParams.from_settings(SentimentSettings())
UP_SPY = [100 + 0.1 * i for i in range(31)]  # 100.0 .. 103.0
UP_QQQ = [200 + 0.3 * i for i in range(31)]  # 200.0 .. 209.0
DOWN_SPY = [100 - 0.1 * i for i in range(31)]  # 100.0 .. 97.0
DOWN_QQQ = [200 - 0.3 * i for i in range(31)]  # 200.0 .. 191.0
CALM_VIX = [15.0] * 31
SPIKE_VIX = [15.0] * 21 + [16.0, 17, 18, 19, 20, 21, 22, 23, 24, 25]  # 15 -> 25 in 10 bars
CHOP_SPY = [100 + 0.1 * (i % 2) for i in range(31)]  # 100, 100.1, 100, ... ends at 100
CHOP_QQQ = [200 + 0.3 * (i % 2) for i in range(31)]


def test_inputs_when_steady_uptrend_match_hand_computation() -> None:
    x = compute_inputs(UP_SPY, UP_QQQ, CALM_VIX, P)
    assert x is not None
    # SPY 103/100 - 1 = 3 %; QQQ 209/200 - 1 = 4.5 %; trend = (3 + 4.5) / 2 = 3.75 %
    assert x.spy_ret_pct == pytest.approx(3.0)
    assert x.qqq_ret_pct == pytest.approx(4.5)
    assert x.trend_pct == pytest.approx(3.75)
    # SMA20 of SPY = mean(101.1 .. 103.0) = 102.05; 103 / 102.05 - 1 = 0.930916 %
    assert x.spy_vs_sma_pct == pytest.approx((103 / 102.05 - 1) * 100)
    # SMA20 of QQQ = mean(203.3 .. 209.0) = 206.15
    assert x.qqq_vs_sma_pct == pytest.approx((209 / 206.15 - 1) * 100)
    assert (x.vix, x.vix_change_pct) == (15.0, 0.0)


def test_state_when_steady_uptrend_and_calm_vix_is_bullish() -> None:
    x = compute_inputs(UP_SPY, UP_QQQ, CALM_VIX, P)
    assert x is not None
    state, reason = target_state(x, None, P)
    assert state is Sentiment.BULLISH
    assert reason == "trend +3.75% with SPY and QQQ above their averages"


def test_state_when_selloff_with_vix_spike_is_bearish() -> None:
    x = compute_inputs(DOWN_SPY, DOWN_QQQ, SPIKE_VIX, P)
    assert x is not None
    # VIX 25 vs 15 ten bars ago: +66.7 % >= 8 % -> risk-off; trend -3.75 % < 0 -> BEARISH
    assert x.vix_change_pct == pytest.approx(200 / 3)
    state, reason = target_state(x, None, P)
    assert state is Sentiment.BEARISH
    assert reason == "risk-off: VIX 25.00 (+66.7%), trend -3.75%"


def test_state_when_uptrend_but_vix_spikes_is_never_bullish() -> None:
    x = compute_inputs(UP_SPY, UP_QQQ, SPIKE_VIX, P)
    assert x is not None
    assert target_state(x, Sentiment.BULLISH, P)[0] is Sentiment.NEUTRAL


def test_state_when_chop_is_neutral() -> None:
    x = compute_inputs(CHOP_SPY, CHOP_QQQ, CALM_VIX, P)
    assert x is not None
    assert x.trend_pct == pytest.approx(0.0)
    assert target_state(x, None, P) == (Sentiment.NEUTRAL, "no clear trend (+0.00%)")


def test_inputs_when_history_too_short_are_none() -> None:
    assert compute_inputs(UP_SPY[:30], UP_QQQ, CALM_VIX, P) is None


def _inputs(
    trend: float, above: bool = True, vix: float = 15.0, vix_chg: float = 0.0
) -> SentimentInputs:
    side = 0.5 if above else -0.5
    return SentimentInputs(trend, trend, trend, side, side, vix, vix_chg)


def test_state_when_bullish_and_trend_fades_inside_band_holds() -> None:
    # 0.10 % is below the 0.20 % entry but above the 0.05 % exit: hysteresis holds
    assert target_state(_inputs(0.10), Sentiment.BULLISH, P)[0] is Sentiment.BULLISH
    assert target_state(_inputs(0.10), Sentiment.NEUTRAL, P)[0] is Sentiment.NEUTRAL
    assert target_state(_inputs(0.04), Sentiment.BULLISH, P)[0] is Sentiment.NEUTRAL


def test_state_when_vix_at_panic_level_is_risk_off() -> None:
    assert target_state(_inputs(-0.01, above=False, vix=30.0), None, P)[0] is Sentiment.BEARISH


def test_tracker_when_state_flips_needs_confirmation() -> None:
    tracker = SentimentTracker(P)
    first = tracker.update(_inputs(0.5))
    assert first is not None and first.state is Sentiment.BULLISH and first.previous is None
    assert tracker.update(_inputs(-0.5, above=False)) is None  # one vote is not enough
    flip = tracker.update(_inputs(-0.5, above=False))
    assert flip is not None and (flip.previous, flip.state) == (
        Sentiment.BULLISH,
        Sentiment.BEARISH,
    )


def test_tracker_when_single_outlier_between_agreeing_evaluations_does_not_flip() -> None:
    tracker = SentimentTracker(P)
    tracker.update(_inputs(0.5))
    assert tracker.update(_inputs(-0.5, above=False)) is None
    assert tracker.update(_inputs(0.5)) is None
    assert tracker.update(_inputs(-0.5, above=False)) is None  # votes restarted
    assert tracker.state is Sentiment.BULLISH
