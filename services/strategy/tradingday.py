"""The trading day and its opening equity: one base for sizing, limits and daily P&L.

A trading day is the New York calendar date (America/New_York), so the daily-loss
figure resets at midnight in New York, not in UTC or on the host's zone. Its
opening equity is the net liquidation of the book the strategy trades (the
adapter's simulated book, or the IB account when routing) when the day starts;
before the first account snapshot the ledger's own equity (from
``OPTBOT_STRAT_STARTING_EQUITY``) stands in, and the first snapshot of the day
replaces it. The ledger is re-based on that figure, so ledger, sizing and every
limit use one number, persisted in ``strategy:day`` so a restart keeps it.

Daily P&L is the ledger's P&L since the day opened: a loss carried over midnight
belongs to the day it happened, and a new day starts from its opening equity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import redis.asyncio as aioredis

from services.strategy.ledger import Ledger, trading_day
from services.strategy.money import cents, dec
from shared.contract import STRATEGY_DAY
from shared.logs import get_logger
from shared.redis_text import as_str

log = get_logger("optbot.strategy.day")

__all__ = ["DayOpen", "TradingDay", "trading_day"]


@dataclass(frozen=True, slots=True)
class DayOpen:
    """How a trading day started: its opening equity and the ledger's P&L then."""

    day: dt.date
    open_equity: Decimal
    pnl_at_open: Decimal
    source: str  # "broker": the traded book's net liquidation; "ledger": the fallback
    stale_marks: int = 0  # positions without a fresh mark when the day was opened

    def fields(self) -> dict[str, str]:
        return {
            "day": self.day.isoformat(),
            "open_equity": str(self.open_equity),
            "pnl_at_open": str(self.pnl_at_open),
            "source": self.source,
            "stale_marks": str(self.stale_marks),
        }

    @classmethod
    def parse(cls, raw: dict[str, str]) -> DayOpen | None:
        try:
            return cls(
                day=dt.date.fromisoformat(raw["day"]),
                open_equity=Decimal(raw["open_equity"]),
                pnl_at_open=Decimal(raw["pnl_at_open"]),
                source=raw.get("source", "ledger"),
                stale_marks=int(raw.get("stale_marks", "0") or 0),
            )
        except (KeyError, ValueError, InvalidOperation):
            return None


class TradingDay:
    """Opens each trading day once and keeps the ledger based on its opening equity."""

    def __init__(self, redis: aioredis.Redis, ledger: Ledger) -> None:
        self.redis = redis
        self.ledger = ledger
        self.current: DayOpen | None = None

    async def load(self, now: float) -> None:
        """Resume today's opening after a restart (another day's is ignored)."""
        raw: Any = await self.redis.hgetall(STRATEGY_DAY)
        opened = DayOpen.parse({as_str(k): as_str(v) for k, v in raw.items()})
        if opened is not None and opened.day == trading_day(now):
            self._use(opened)
            log.info("day_resumed", **opened.fields())

    def daily_pnl(self) -> Decimal | None:
        """P&L since the day opened; None before it has (no figure to trust yet)."""
        if self.current is None:
            return None
        return cents(self.ledger.pnl - self.current.pnl_at_open)

    @property
    def opening_equity(self) -> Decimal:
        """The one base for sizing and limits (the ledger's equity before the day opens)."""
        if self.current is None:
            return cents(self.ledger.equity)
        return self.current.open_equity

    async def roll(
        self, now: float, broker_equity: Decimal | None, stale_marks: int, waited_s: float
    ) -> DayOpen | None:
        """Open the day of ``now`` if it is not open yet; returns the new opening.

        The day opens once every held position has a fresh mark (a day opened on a
        position carried at cost would count yesterday's loss as today's), or after
        ``waited_s`` is over with the count of stale marks recorded.
        """
        day = trading_day(now)
        if self.current is not None and self.current.day == day:
            return None
        if stale_marks and waited_s <= 0:
            return None
        pnl = cents(self.ledger.pnl)
        if broker_equity is not None:
            opened = DayOpen(day, cents(broker_equity), pnl, "broker", stale_marks)
        else:
            opened = DayOpen(day, cents(self.ledger.equity), pnl, "ledger", stale_marks)
        await self._save(opened)
        log.info("day_opened", **opened.fields())
        return opened

    async def on_broker(self, net_liquidation: Decimal) -> None:
        """The first snapshot of the traded book today replaces the ledger's stand-in."""
        cur = self.current
        if cur is None or cur.source == "broker":
            return
        so_far = self.ledger.pnl - cur.pnl_at_open
        equity = cents(dec(net_liquidation) - so_far)
        opened = DayOpen(cur.day, equity, cur.pnl_at_open, "broker", cur.stale_marks)
        await self._save(opened)
        log.info("day_rebased", **opened.fields())

    async def _save(self, opened: DayOpen) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(STRATEGY_DAY)
            pipe.hset(STRATEGY_DAY, mapping=opened.fields())  # type: ignore[arg-type]
            await pipe.execute()
        self._use(opened)

    def _use(self, opened: DayOpen) -> None:
        self.current = opened
        self.ledger.rebase(opened.open_equity - opened.pnl_at_open)
