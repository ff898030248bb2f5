"""Momentum score and screen on constructed paths; expected values worked out by hand."""

from __future__ import annotations

import pytest

from services.market_data.momentum import MomentumParams, SymbolView, score, screen, volume_surge
from shared.schemas import Direction, SecType
from shared.settings import MomentumSettings

# the defaults: short 5, mid 15, long 30 bars; top 5; min price 5; spread 0.5 %
P = MomentumParams.from_settings(MomentumSettings())
SPY_UP = [100 + 0.1 * i for i in range(31)]  # ROC30 = 3 %
SPY_DOWN = [100 - 0.1 * i for i in range(31)]  # ROC30 = -3 %
RISING = [100.0 + i for i in range(31)]  # 100 .. 130
FALLING = [100.0 - i for i in range(31)]  # 100 .. 70


def _view(symbol: str, closes: list[float], **kw: object) -> SymbolView:
    last = closes[-1]
    defaults: dict[str, object] = {"bid": last - 0.01, "ask": last + 0.01}
    defaults.update(kw)
    return SymbolView(symbol=symbol, closes=closes, **defaults)  # type: ignore[arg-type]


def test_score_when_rising_matches_hand_computation() -> None:
    cand = score(_view("NVDA", RISING), SPY_UP, P)
    assert cand is not None
    # ROC5 = 130/125-1 = 4 %; ROC15 = 130/115-1 = 13.043478 %; ROC30 = 30 %; RS = 30-3 = 27
    # 0.5*4 + 0.3*13.043478 + 0.2*30 + 0.5*27 = 2 + 3.913043 + 6 + 13.5 = 25.413043
    assert cand.score == pytest.approx(25.413043, abs=1e-6)
    assert cand.direction is Direction.LONG
    assert cand.inputs["rs"] == pytest.approx(27.0)


def test_score_when_falling_is_short_with_hand_computed_value() -> None:
    cand = score(_view("TSLA", FALLING), SPY_DOWN, P)
    assert cand is not None
    # ROC5 = 70/75-1 = -6.666667 %; ROC15 = 70/85-1 = -17.647059 %; ROC30 = -30 %; RS = -27
    # -3.333333 - 5.294118 - 6 - 13.5 = -28.127451
    assert cand.score == pytest.approx(-28.127451, abs=1e-6)
    assert cand.direction is Direction.SHORT


def test_volume_surge_when_recent_volume_triples_is_clamped_to_two() -> None:
    volumes = [100.0] * 26 + [300.0] * 5
    # last 5 mean 300; last 30 mean (25*100 + 5*300)/30 = 133.33; 300/133.33 = 2.25
    assert volume_surge(volumes, 5, 30) == pytest.approx(2.25)
    cand = score(_view("NVDA", RISING, volumes=volumes), SPY_UP, P)
    assert cand is not None and cand.score == pytest.approx(2 * 25.413043, abs=1e-5)


def test_screen_when_mixed_universe_ranks_by_size_and_excludes_with_reasons() -> None:
    views = [
        _view("UP", RISING),
        _view("DOWN", FALLING),
        _view("FLATISH", [100.0 + 0.01 * i for i in range(31)]),
        _view("PENNY", [4.0] * 31, bid=3.99, ask=4.01),
        _view("WIDE", RISING, bid=129.0, ask=131.0),
        _view("OLD", RISING, stale=True),
        _view("VIX", [15.0] * 31, sec_type=SecType.IND, bid=None, ask=None),
        _view("NEW", RISING[:10]),
        _view("ONESIDED", RISING, bid=None),
    ]
    result = screen(views, SPY_UP, MomentumParams.from_settings(MomentumSettings(md_top_n=2)))
    # DOWN: -3.33 - 5.29 - 6 + 0.5*(-30-3) = -31.127451 beats UP's 25.413043 in size
    assert [(c.symbol, c.direction) for c in result.candidates] == [
        ("DOWN", Direction.SHORT),
        ("UP", Direction.LONG),
    ]
    assert result.candidates[0].score == pytest.approx(-31.127451, abs=1e-6)
    assert result.excluded == {
        "PENNY": "price 4.00 below 5.00",
        "WIDE": "spread 1.54% above 0.50%",
        "OLD": "stale quote",
        "VIX": "index",
        "NEW": "not enough bars",
        "ONESIDED": "no two-sided quote",
    }


def test_screen_when_steady_uptrend_everywhere_gives_long_candidates() -> None:
    views = [_view(f"S{k}", [100.0 + k * 0.2 * i for i in range(31)]) for k in range(1, 8)]
    result = screen(views, SPY_UP, P)
    assert len(result.candidates) == 5
    assert all(c.direction is Direction.LONG for c in result.candidates)
    assert [c.symbol for c in result.candidates] == ["S7", "S6", "S5", "S4", "S3"]
