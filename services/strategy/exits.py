"""When to close a position: profit target, stop, age, expiry floor, sentiment flip.

Pure. Price-based exits need a fresh mark (a stop on a stale price is the classic
bad stop); the caller passes ``mark=None`` when the quote is stale or missing, and
only the time and sentiment rules can fire then.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from shared.market_calendar import dte
from shared.schemas import ContractRef, Right, Sentiment
from shared.settings import StrategySettings


@dataclass(frozen=True, slots=True)
class ExitParams:
    """The exit rules; built only from ``StrategySettings``, which states the defaults."""

    take_profit_pct: float
    stop_loss_pct: float
    max_hold_s: float
    exit_dte: int
    exit_on_flip: bool

    @classmethod
    def from_settings(cls, s: StrategySettings) -> ExitParams:
        return cls(
            take_profit_pct=s.strat_take_profit_pct,
            stop_loss_pct=s.strat_stop_loss_pct,
            max_hold_s=s.strat_max_hold_s,
            exit_dte=s.strat_exit_dte,
            exit_on_flip=s.strat_exit_on_flip,
        )


def against(contract: ContractRef, qty: int, sentiment: Sentiment | None) -> bool:
    """A long call is a bullish bet, a long put a bearish one (short: the reverse)."""
    if sentiment is None or sentiment is Sentiment.NEUTRAL or contract.right is None:
        return False
    bullish = (contract.right is Right.CALL) == (qty > 0)
    return sentiment is (Sentiment.BEARISH if bullish else Sentiment.BULLISH)


def exit_reason(
    *,
    contract: ContractRef,
    qty: int,
    avg_price: Decimal,
    mark: Decimal | None,
    opened_ns: int,
    now: dt.datetime,
    sentiment: Sentiment | None,
    params: ExitParams,
) -> str | None:
    """Why to close now, or None to hold."""
    if contract.expiry:
        days = dte(contract.expiry, now)  # on the NYSE date, not the UTC date
        if days < params.exit_dte:
            return f"DTE floor: {days} days left < {params.exit_dte}"
    held = now.timestamp() - opened_ns / 1e9
    if opened_ns and held >= params.max_hold_s:
        return f"max holding time: held {held / 3600:.1f}h >= {params.max_hold_s / 3600:.1f}h"
    if params.exit_on_flip and against(contract, qty, sentiment):
        assert sentiment is not None
        return f"sentiment flipped to {sentiment.value} against the position"
    if mark is None or avg_price <= 0:
        return None
    change = (mark - avg_price) / avg_price * 100 * (1 if qty > 0 else -1)
    if change >= Decimal(repr(params.take_profit_pct)):
        return f"take-profit: {change:+.1f}% of premium >= {params.take_profit_pct:g}%"
    if change <= -Decimal(repr(params.stop_loss_pct)):
        return f"stop-loss: {change:+.1f}% of premium <= -{params.stop_loss_pct:g}%"
    return None
