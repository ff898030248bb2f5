"""Momentum screen: rank the universe, filter for liquidity and freshness.

Score of a symbol (ROC = rate of change in %, over bars):
    base  = 0.5 * ROC(short) + 0.3 * ROC(mid) + 0.2 * ROC(long) + 0.5 * RS
    RS    = ROC(long) of the symbol minus ROC(long) of SPY (relative strength)
    surge = mean volume of the last ``short`` completed bars / mean of the last ``long``
    score = base * clamp(surge, 0.5, 2.0)        (surge = 1 without volume data)
Direction is long for a positive score and short for a negative one; candidates
are ranked by the size of the score. Excluded, with the reason: indexes, stale
or one-sided quotes, a price below the minimum, a spread above the maximum, and
symbols without enough bars.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from services.market_data.indicators import roc_pct
from shared.schemas import Candidate, DataType, Direction, SecType
from shared.settings import MomentumSettings

WEIGHTS = (0.5, 0.3, 0.2)
RS_WEIGHT = 0.5
SURGE_BOUNDS = (0.5, 2.0)


@dataclass(frozen=True)
class MomentumParams:
    """The screen's parameters; built only from ``MomentumSettings`` (its defaults)."""

    short_bars: int
    mid_bars: int
    long_bars: int
    top_n: int
    min_price: float
    max_spread_pct: float

    @classmethod
    def from_settings(cls, s: MomentumSettings) -> MomentumParams:
        return cls(
            short_bars=s.mom_short_bars,
            mid_bars=s.mom_mid_bars,
            long_bars=s.mom_long_bars,
            top_n=s.md_top_n,
            min_price=s.md_min_price,
            max_spread_pct=s.md_max_spread_pct,
        )


@dataclass(frozen=True)
class SymbolView:
    """What the screen needs to know about one symbol right now."""

    symbol: str
    closes: Sequence[float]
    volumes: Sequence[float] = ()
    bid: float | None = None
    ask: float | None = None
    stale: bool = False
    sec_type: SecType = SecType.STK
    data_type: DataType = DataType.LIVE


@dataclass
class ScreenResult:
    candidates: list[Candidate]
    excluded: dict[str, str] = field(default_factory=dict)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def volume_surge(volumes: Sequence[float], short: int, long: int) -> float:
    if len(volumes) < long:
        return 1.0
    base = _mean(volumes[-long:])
    if base <= 0:
        return 1.0
    return _mean(volumes[-short:]) / base


def liquidity_problem(v: SymbolView, p: MomentumParams) -> str | None:
    """Why ``v`` cannot be traded now, or None."""
    if v.sec_type is SecType.IND:
        return "index"
    if v.stale:
        return "stale quote"
    if v.bid is None or v.ask is None or v.bid <= 0 or v.ask < v.bid:
        return "no two-sided quote"
    mid = (v.bid + v.ask) / 2.0
    if mid < p.min_price:
        return f"price {mid:.2f} below {p.min_price:.2f}"
    spread_pct = (v.ask - v.bid) / mid * 100.0
    if spread_pct > p.max_spread_pct:
        return f"spread {spread_pct:.2f}% above {p.max_spread_pct:.2f}%"
    return None


def score(v: SymbolView, spy_closes: Sequence[float], p: MomentumParams) -> Candidate | None:
    """The symbol's candidate record, or None without enough history."""
    short = roc_pct(v.closes, p.short_bars)
    mid = roc_pct(v.closes, p.mid_bars)
    long = roc_pct(v.closes, p.long_bars)
    spy_long = roc_pct(spy_closes, p.long_bars)
    if short is None or mid is None or long is None or spy_long is None:
        return None
    rs = long - spy_long
    surge = volume_surge(v.volumes, p.short_bars, p.long_bars)
    factor = min(max(surge, SURGE_BOUNDS[0]), SURGE_BOUNDS[1])
    base = WEIGHTS[0] * short + WEIGHTS[1] * mid + WEIGHTS[2] * long + RS_WEIGHT * rs
    value = base * factor
    if value == 0:
        return None
    inputs = {"roc_short": short, "roc_mid": mid, "roc_long": long, "rs": rs, "surge": surge}
    return Candidate(
        symbol=v.symbol,
        direction=Direction.LONG if value > 0 else Direction.SHORT,
        score=round(value, 6),
        inputs={k: round(x, 6) for k, x in inputs.items()},
    )


def screen(
    views: Sequence[SymbolView], spy_closes: Sequence[float], p: MomentumParams
) -> ScreenResult:
    """Top ``p.top_n`` candidates by the size of their score, plus why others are out."""
    result = ScreenResult(candidates=[])
    scored: list[Candidate] = []
    for v in views:
        problem = liquidity_problem(v, p)
        if problem is not None:
            result.excluded[v.symbol] = problem
            continue
        cand = score(v, spy_closes, p)
        if cand is None:
            result.excluded[v.symbol] = "not enough bars"
            continue
        scored.append(cand)
    scored.sort(key=lambda c: (-abs(c.score), c.symbol))
    result.candidates = scored[: p.top_n]
    return result
