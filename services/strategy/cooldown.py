"""Chain cooldown: a symbol we could not trade is not asked for its chain again at once.

A chain request opens up to OPTBOT_STRAT_CHAIN_MAX_CONTRACTS market-data lines that
are cancelled seconds later. When a symbol was found unaffordable (size 0) or without
an eligible option, asking again next cycle only churns IB's lines: the answer is the
same. It waits OPTBOT_STRAT_CHAIN_COOLDOWN_S, unless its price moves by
OPTBOT_STRAT_CHAIN_RETRY_MOVE_PCT or, when only the money was short, the room grows
to cover the premium it needed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from services.strategy.money import fmt
from shared import clock as shared_clock
from shared.settings import Settings


def _trading_monotonic() -> float:
    return shared_clock.current().monotonic()


@dataclass(frozen=True, slots=True)
class Cooled:
    """What we found when we last looked at a symbol's chain."""

    why: str
    until: float  # clock() value
    until_text: str  # wall clock, for a decision that stays the same while it holds
    spot: float | None
    premium: Decimal | None  # per contract, when it did not fit the room


class ChainCooldown:
    """Per symbol: whether a chain request is worth it now, and if not, why."""

    def __init__(
        self, seconds: float, move_pct: float, clock: Callable[[], float] | None = None
    ) -> None:
        self.seconds = seconds
        self.move_pct = move_pct
        self._clock = clock or _trading_monotonic
        self._cooled: dict[str, Cooled] = {}

    @classmethod
    def from_settings(cls, s: Settings) -> ChainCooldown:
        return cls(s.strat_chain_cooldown_s, s.strat_chain_retry_move_pct)

    def __len__(self) -> int:
        return len(self._cooled)

    def note(
        self, symbol: str, why: str, *, spot: float | None, premium: Decimal | None = None
    ) -> None:
        """The chain gave nothing to trade: rest the symbol (no-op with a 0 s cooldown)."""
        if self.seconds <= 0:
            return
        until_wall = shared_clock.current().now() + dt.timedelta(seconds=self.seconds)
        self._cooled[symbol] = Cooled(
            why, self._clock() + self.seconds, f"{until_wall:%H:%M:%S} UTC", spot, premium
        )

    def clear(self, symbol: str) -> None:
        self._cooled.pop(symbol, None)

    def blocked(self, symbol: str, *, spot: float | None, room: Decimal) -> str | None:
        """Why not to ask for ``symbol``'s chain now, or None (an expired rest is forgotten)."""
        c = self._cooled.get(symbol)
        if c is None:
            return None
        moved = spot is not None and c.spot and abs(spot / c.spot - 1.0) * 100 >= self.move_pct
        affordable = c.premium is not None and room >= c.premium
        if self._clock() >= c.until or moved or affordable:
            del self._cooled[symbol]
            return None
        lift = f"price moves {self.move_pct:g}%"
        if c.premium is not None:
            lift = f"room reaches {fmt(c.premium)} or {lift}"
        return f"chain cooldown until {c.until_text} or {lift} (last look: {c.why})"
