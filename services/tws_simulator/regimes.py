"""Market regimes: the drift, volatility and VIX level the price model runs under."""

from __future__ import annotations

from dataclasses import dataclass

from shared.schemas import Regime  # the one enum: the settings name it too

__all__ = ["ORDER", "PARAMS", "Regime", "RegimeParams", "parse_regime"]


@dataclass(frozen=True, slots=True)
class RegimeParams:
    drift_per_hour: float  # log drift of the market factor
    vol_mult: float  # scales every symbol's volatility
    vix_target: float  # level VIX mean-reverts to
    reversion: float  # pull of prices back to the regime anchor (choppy markets)


PARAMS: dict[Regime, RegimeParams] = {
    Regime.TRENDING_UP: RegimeParams(0.015, 0.8, 13.5, 0.0),
    Regime.TRENDING_DOWN: RegimeParams(-0.015, 1.3, 26.0, 0.0),
    Regime.CHOPPY: RegimeParams(0.0, 1.1, 18.0, 1.0 / 1200),
}

ORDER: tuple[Regime, ...] = (Regime.TRENDING_UP, Regime.TRENDING_DOWN, Regime.CHOPPY)


def parse_regime(name: str) -> Regime:
    """Accept "trending_up", "up", "down", "choppy" (case-insensitive)."""
    key = name.strip().lower()
    aliases = {"up": Regime.TRENDING_UP, "down": Regime.TRENDING_DOWN, "chop": Regime.CHOPPY}
    if key in aliases:
        return aliases[key]
    return Regime(key)
