"""Choose one option from a chain: right by direction, expiry by DTE, strike by delta.

Pure: the cycle gathers the chain and its quotes; this module only decides, and
always says why (which filter removed how many contracts when nothing fits).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from services.strategy.greeks import YEAR_S, fallback_delta
from shared.market_calendar import dte, expiry_instant
from shared.schemas import ContractRef, Direction, Right, SecType
from shared.settings import StrategySettings


@dataclass(frozen=True, slots=True)
class OptionView:
    """An option of the chain and what we know of its market right now."""

    contract: ContractRef
    bid: float | None = None
    ask: float | None = None
    delta: float | None = None
    iv: float | None = None
    und_price: float | None = None
    volume: float | None = None
    quoted: bool = True  # False: no fresh quote arrived for it

    @property
    def mid(self) -> float | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2.0


@dataclass(frozen=True, slots=True)
class SelectionParams:
    """Selection's filters; built only from ``StrategySettings``, which states the defaults."""

    min_dte: int
    max_dte: int
    delta_min: float
    delta_max: float
    max_spread_pct: float
    min_volume: float

    @classmethod
    def from_settings(cls, s: StrategySettings) -> SelectionParams:
        return cls(
            min_dte=s.strat_min_dte,
            max_dte=s.strat_max_dte,
            delta_min=s.strat_delta_min,
            delta_max=s.strat_delta_max,
            max_spread_pct=s.strat_max_spread_pct,
            min_volume=s.strat_min_volume,
        )

    @property
    def target_delta(self) -> float:
        return (self.delta_min + self.delta_max) / 2.0


@dataclass(frozen=True, slots=True)
class Choice:
    option: OptionView
    delta: float
    delta_source: str  # "ib" or "model"
    dte: int
    spread_pct: float


@dataclass(frozen=True, slots=True)
class Selection:
    """The chosen contract (or None) and the reason, readable on the dashboard."""

    choice: Choice | None
    reason: str
    rejects: dict[str, int] = field(default_factory=dict)

    @property
    def contract(self) -> ContractRef | None:
        return self.choice.option.contract if self.choice else None


def right_for(direction: Direction) -> Right:
    """Calls express a long view, puts a short one."""
    return Right.CALL if direction is Direction.LONG else Right.PUT


def expiry_time(expiry: str) -> dt.datetime:
    """The expiry instant (NYSE close of the expiry date, early closes included)."""
    return expiry_instant(expiry)


def _delta(o: OptionView, now: dt.datetime, spot: float | None) -> tuple[float | None, str]:
    if o.delta is not None:
        return o.delta, "ib"
    c = o.contract
    if c.strike is None or c.right is None:
        return None, "none"
    years = (expiry_time(c.expiry) - now).total_seconds() / YEAR_S
    d = fallback_delta(
        spot=o.und_price or spot, strike=c.strike, years=years, right=c.right, iv=o.iv, mid=o.mid
    )
    return d, "model" if d is not None else "none"


def _screen(
    o: OptionView, right: Right, now: dt.datetime, spot: float | None, p: SelectionParams
) -> Choice | str:
    """The option as a Choice, or the name of the first filter it fails."""
    c = o.contract
    if c.sec_type is not SecType.OPT or c.right is not right:
        return "wrong right"
    days = dte(c.expiry, now)  # on the NYSE date: at 23:30 New York UTC is a day ahead
    if not p.min_dte <= days <= p.max_dte:
        return f"DTE outside {p.min_dte}-{p.max_dte}"
    if not o.quoted:
        return "no fresh quote"
    if o.bid is None or o.bid <= 0 or o.ask is None or o.mid is None:
        return "no bid"
    spread_pct = (o.ask - o.bid) / o.mid * 100.0
    if spread_pct > p.max_spread_pct:
        return f"spread > {p.max_spread_pct:g}% of mid"
    if p.min_volume and (o.volume or 0.0) < p.min_volume:
        return f"volume < {p.min_volume:g}"
    delta, source = _delta(o, now, spot)
    if delta is None:
        return "no delta"
    if not p.delta_min <= abs(delta) <= p.delta_max:
        return f"|delta| outside {p.delta_min:.2f}-{p.delta_max:.2f}"
    return Choice(o, delta, source, days, spread_pct)


def select(
    direction: Direction,
    options: list[OptionView],
    *,
    now: dt.datetime,
    params: SelectionParams,
    spot: float | None = None,
) -> Selection:
    """Best option for ``direction``: |delta| nearest the band's middle, then tighter spread."""
    right = right_for(direction)
    rejects: Counter[str] = Counter()
    fits: list[Choice] = []
    for o in options:
        result = _screen(o, right, now, spot, params)
        if isinstance(result, Choice):
            fits.append(result)
        else:
            rejects[result] += 1
    if not fits:
        detail = ", ".join(f"{n} {why}" for why, n in rejects.most_common()) or "empty chain"
        return Selection(None, f"no contract fits: {detail}", dict(rejects))
    target = params.target_delta
    best = min(
        fits,
        key=lambda ch: (
            round(abs(abs(ch.delta) - target), 6),
            ch.spread_pct,
            ch.dte,
            ch.option.contract.strike or 0.0,
        ),
    )
    mid = best.option.mid or 0.0
    reason = (
        f"{best.option.contract.key}: delta {best.delta:+.2f} ({best.delta_source}), "
        f"{best.dte} DTE, mid {mid:.2f}, spread {best.spread_pct:.1f}%"
    )
    return Selection(best, reason, dict(rejects))
