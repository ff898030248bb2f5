"""Option selection on a constructed chain, with hand-worked expectations."""

from __future__ import annotations

import datetime as dt

from services.strategy.selection import OptionView, SelectionParams, select
from services.tws_simulator.greeks import black_scholes
from shared.schemas import ContractRef, Direction, Right, SecType
from shared.settings import StrategySettings

NOW = dt.datetime(2025, 1, 2, 15, 0, tzinfo=dt.UTC)
P = SelectionParams.from_settings(StrategySettings())  # 14-45 DTE, |delta| 0.35-0.50, 15 %


def opt(expiry: str, strike: float, right: Right = Right.CALL) -> ContractRef:
    return ContractRef(
        symbol="XYZ",
        sec_type=SecType.OPT,
        expiry=expiry,
        strike=strike,
        right=right,
        multiplier=100,
    )


def view(
    expiry: str,
    strike: float,
    delta: float | None,
    bid: float = 1.00,
    ask: float = 1.10,
    right: Right = Right.CALL,
    **kw: float,
) -> OptionView:
    return OptionView(opt(expiry, strike, right), bid=bid, ask=ask, delta=delta, **kw)


CHAIN = [
    view("20250110", 105, 0.44),  # 8 DTE: too short
    view("20250221", 105, 0.44),  # 50 DTE: too long
    view("20250124", 100, 0.55),  # 22 DTE, delta above band
    view("20250124", 105, 0.44),  # 22 DTE, |0.44 - 0.425| = 0.015  <- best
    view("20250124", 110, 0.36),  # in band but |0.36 - 0.425| = 0.065
    view("20250124", 102.5, 0.42, bid=0.0),  # nearest the middle, but no bid
    view("20250124", 107.5, 0.43, bid=0.80, ask=1.20),  # spread 0.40 / 1.00 = 40 %
    view("20250124", 105, -0.44, right=Right.PUT),  # a put: wrong right for a long view
]


def test_select_when_long_picks_call_in_dte_window_nearest_target_delta() -> None:
    sel = select(Direction.LONG, CHAIN, now=NOW, params=P)

    assert sel.choice is not None
    assert sel.contract == opt("20250124", 105)
    assert sel.choice.dte == 22 and sel.choice.delta_source == "ib"
    assert sel.reason.startswith("XYZ 20250124 105 C: delta +0.44 (ib), 22 DTE, mid 1.05")
    assert sel.rejects == {
        "DTE outside 14-45": 2,
        "|delta| outside 0.35-0.50": 1,
        "no bid": 1,
        "spread > 15% of mid": 1,
        "wrong right": 1,
    }


def test_select_when_short_picks_put_by_absolute_delta() -> None:
    puts = [
        view("20250124", 95, -0.30, right=Right.PUT),
        view("20250124", 100, -0.47, right=Right.PUT),
        view("20250124", 105, -0.62, right=Right.PUT),
    ]
    sel = select(Direction.SHORT, puts + CHAIN[3:5], now=NOW, params=P)
    assert sel.contract == opt("20250124", 100, Right.PUT)
    assert sel.rejects["wrong right"] == 2


def test_select_when_nothing_liquid_skips_with_counts_per_filter() -> None:
    chain = [view("20250124", 105, 0.44, bid=0.0), view("20250124", 110, 0.40, bid=0.5, ask=1.0)]
    sel = select(Direction.LONG, chain, now=NOW, params=P)
    assert sel.choice is None
    assert sel.reason == "no contract fits: 1 no bid, 1 spread > 15% of mid"


def test_select_when_greeks_missing_uses_black_scholes_from_iv() -> None:
    # No IB delta: spot 100, 22 DTE (expiry 16:00 New York = 21:00 UTC in winter), IV 30 %.
    # Worked with the simulator's own Black-Scholes: K=103 -> delta 0.38 (in band),
    # K=100 -> 0.53, K=108 -> 0.18.
    years = (dt.datetime(2025, 1, 24, 21, tzinfo=dt.UTC) - NOW).total_seconds() / (365 * 86400)
    expected = {k: black_scholes(100.0, k, years, 0.30, True).delta for k in (100.0, 103.0, 108.0)}
    assert 0.35 < expected[103.0] < 0.50 < expected[100.0] and expected[108.0] < 0.35
    chain = [view("20250124", k, None, iv=0.30, und_price=100.0) for k in expected]

    sel = select(Direction.LONG, chain, now=NOW, params=P)

    assert sel.choice is not None and sel.contract == opt("20250124", 103.0)
    assert sel.choice.delta_source == "model"
    assert abs(sel.choice.delta - expected[103.0]) < 1e-9


def test_select_when_no_greeks_no_iv_implies_vol_from_mid() -> None:
    years = (dt.datetime(2025, 1, 24, 21, tzinfo=dt.UTC) - NOW).total_seconds() / (365 * 86400)
    g = black_scholes(100.0, 103.0, years, 0.30, True)
    chain = [view("20250124", 103.0, None, bid=g.price - 0.05, ask=g.price + 0.05)]
    sel = select(Direction.LONG, chain, now=NOW, params=P, spot=100.0)
    assert sel.choice is not None and abs(sel.choice.delta - g.delta) < 1e-4
