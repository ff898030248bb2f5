"""Black-Scholes fallback for options whose quote arrived without IB greeks.

IB sends model greeks (tickOptionComputation) for most lines, but not always: a
fresh line, a delayed feed or an illiquid strike can lack them. Selection still
needs a delta, so we compute one with vollib (the maintained py_vollib) from the
quote's IV, or from an IV implied by the option's mid when IV is missing too.
Units match IB's: vega per vol point, theta per calendar day.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vollib.black_scholes import black_scholes as bs_price
from vollib.black_scholes.greeks import analytical
from vollib.black_scholes.implied_volatility import implied_volatility

from shared.schemas import Right

RATE = 0.045  # risk-free rate assumed by our model (and by the simulator)
YEAR_S = 365 * 86_400.0
MIN_YEARS = 1e-5


@dataclass(frozen=True, slots=True)
class ModelGreeks:
    price: float
    iv: float
    delta: float
    gamma: float
    vega: float
    theta: float


def _flag(right: Right) -> str:
    return "c" if right is Right.CALL else "p"


def greeks(
    spot: float, strike: float, years: float, iv: float, right: Right, rate: float = RATE
) -> ModelGreeks:
    """Black-Scholes value and greeks (no dividends)."""
    t = max(years, MIN_YEARS)
    f = _flag(right)
    return ModelGreeks(
        price=float(bs_price(f, spot, strike, t, rate, iv)),
        iv=iv,
        delta=float(analytical.delta(f, spot, strike, t, rate, iv)),
        gamma=float(analytical.gamma(f, spot, strike, t, rate, iv)),
        vega=float(analytical.vega(f, spot, strike, t, rate, iv)),
        theta=float(analytical.theta(f, spot, strike, t, rate, iv)),
    )


def implied_vol(
    price: float, spot: float, strike: float, years: float, right: Right, rate: float = RATE
) -> float | None:
    """IV that reproduces ``price``; None when no volatility can (below intrinsic)."""
    t = max(years, MIN_YEARS)
    try:
        iv = float(implied_volatility(price, spot, strike, t, rate, _flag(right)))
    except Exception:  # vollib raises its own BelowIntrinsic/AboveMaximum errors
        return None
    return iv if math.isfinite(iv) and 0.0 < iv < 10.0 else None


def fallback_delta(
    *,
    spot: float | None,
    strike: float,
    years: float,
    right: Right,
    iv: float | None,
    mid: float | None,
) -> float | None:
    """Delta from the quote's IV, else from the IV implied by mid; None without a spot."""
    if spot is None or spot <= 0 or strike <= 0:
        return None
    vol = iv if iv is not None and iv > 0 else None
    if vol is None and mid is not None and mid > 0:
        vol = implied_vol(mid, spot, strike, years, right)
    if vol is None:
        return None
    return greeks(spot, strike, years, vol, right).delta
