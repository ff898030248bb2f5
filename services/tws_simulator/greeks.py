"""Black-Scholes price and greeks in plain ``math``: one call per option per step.

py_vollib is installed but its per-call overhead is several times higher than this
closed form; tests cross-check the two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RATE = 0.045
_SQRT_2PI = math.sqrt(2 * math.pi)
_YEAR = 365.0


@dataclass(frozen=True, slots=True)
class Greeks:
    """Option model output in IB's units (vega per vol point, theta per calendar day)."""

    price: float
    iv: float
    delta: float
    gamma: float
    vega: float
    theta: float


def _cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def black_scholes(spot: float, strike: float, years: float, iv: float, call: bool) -> Greeks:
    """European Black-Scholes value and sensitivities (no dividends)."""
    t = max(years, 1e-6)
    sd = iv * math.sqrt(t)
    d1 = (math.log(spot / strike) + (RATE + 0.5 * iv * iv) * t) / sd
    d2 = d1 - sd
    disc = math.exp(-RATE * t)
    pdf = math.exp(-0.5 * d1 * d1) / _SQRT_2PI
    gamma = pdf / (spot * sd)
    vega = spot * pdf * math.sqrt(t) / 100.0
    decay = -spot * pdf * iv / (2 * math.sqrt(t))
    if call:
        price = spot * _cdf(d1) - strike * disc * _cdf(d2)
        delta = _cdf(d1)
        theta = decay - RATE * strike * disc * _cdf(d2)
    else:
        price = strike * disc * _cdf(-d2) - spot * _cdf(-d1)
        delta = _cdf(d1) - 1.0
        theta = decay + RATE * strike * disc * _cdf(-d2)
    return Greeks(max(price, 0.0), iv, delta, gamma, vega, theta / _YEAR)


def smile_iv(atm_iv: float, spot: float, strike: float, years: float) -> float:
    """ATM vol bent by a put skew and a smile that steepens for short expiries."""
    m = math.log(strike / spot)
    steep = 1.0 / math.sqrt(max(years, 1.0 / 365) * 12.0)
    iv = atm_iv * (1.0 - 0.9 * m + 3.0 * steep * m * m)
    return min(max(iv, 0.05), 3.0)
