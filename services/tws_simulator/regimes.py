"""Market regimes: the drift, VIX level and mean reversion the price model runs under.

Volatility is not a regime parameter: every symbol diffuses at its options' ATM
implied volatility, which follows VIX, so a regime changes volatility only
through the VIX level it pulls toward (13.5 up, 18 choppy, 26 down).
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.schemas import Regime  # the one enum: the settings name it too

__all__ = ["ORDER", "PARAMS", "Regime", "RegimeParams", "parse_regime"]


@dataclass(frozen=True, slots=True)
class RegimeParams:
    drift_per_hour: float  # log drift of the market factor
    vix_target: float  # level VIX mean-reverts to
    reversion: float  # pull of prices back to the regime anchor (choppy markets)


PARAMS: dict[Regime, RegimeParams] = {
    Regime.TRENDING_UP: RegimeParams(0.015, 13.5, 0.0),
    Regime.TRENDING_DOWN: RegimeParams(-0.015, 26.0, 0.0),
    Regime.CHOPPY: RegimeParams(0.0, 18.0, 1.0 / 1200),
}

ORDER: tuple[Regime, ...] = (Regime.TRENDING_UP, Regime.TRENDING_DOWN, Regime.CHOPPY)


def parse_regime(name: str) -> Regime:
    """Accept "trending_up", "up", "down", "choppy" (case-insensitive)."""
    key = name.strip().lower()
    aliases = {"up": Regime.TRENDING_UP, "down": Regime.TRENDING_DOWN, "chop": Regime.CHOPPY}
    if key in aliases:
        return aliases[key]
    return Regime(key)
