"""Today's performance from ``orders:events``: the Performance panel.

The fills are read once each (``XRANGE`` after the last id seen) and booked by
``shared.performance``, the code behind the backtest report, so the panel and a report
can never disagree. All fills are kept, not only today's: a position opened yesterday
and closed today is a round trip of today, booked from its opening fill. When Redis lost
what was read (restarted empty, or the stream trimmed past all of it), the streams are
read again from the start, as the strategy's ledger would rebuild from them.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import redis.asyncio as aioredis

from services.monitor import models as m
from services.monitor.convert import text
from shared.contract import ORDERS_EVENTS, ORDERS_REQUESTS
from shared.envelope import DecodeError, decode
from shared.market_calendar import trading_date
from shared.performance import FillRecord, RoundTrip, cents, day_performance, fill_from_event
from shared.schemas import OrderEvent, OrderNew

PAGE = 1000
TRADE_ROWS = 50


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _money(x: Decimal | None) -> float | None:
    return None if x is None else float(cents(x))


def _trip(t: RoundTrip) -> m.RoundTrip:
    return m.RoundTrip(
        contract=t.contract,
        direction=t.direction,
        quantity=t.qty,
        entry_ts=t.entry_ts,
        exit_ts=t.exit_ts,
        entry_price=float(t.entry_price),
        exit_price=float(t.exit_price),
        commissions=float(cents(t.commissions)),
        pnl=float(cents(t.pnl)),
        exit_reason=t.exit_reason,
    )


class PerformanceReader:
    """Follows the two order streams and answers the day's figures."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._lock = asyncio.Lock()
        self._reset()

    def _reset(self) -> None:
        self._last = {ORDERS_EVENTS: "0-0", ORDERS_REQUESTS: "0-0"}
        self._reasons: dict[str, str] = {}
        self._fills: list[FillRecord] = []
        self._seen: set[str] = set()

    async def _went_back(self, stream: str) -> bool:
        """Redis lost what was read: the stream is gone, its newest entry is older than
        the last one read, or its oldest is newer (it restarted empty, then filled)."""
        last = self._last[stream]
        if last == "0-0":
            return False
        oldest: Any = await self.redis.xrange(stream, count=1)
        newest: Any = await self.redis.xrevrange(stream, count=1)
        if not oldest or not newest:
            return True
        read = _id(last)
        return _id(text(newest[0][0])) < read or _id(text(oldest[0][0])) > read

    async def _read(self, stream: str) -> list[Any]:
        """The entries of ``stream`` after the last one read, decoded (bad ones skipped)."""
        out: list[Any] = []
        while True:
            rows: Any = await self.redis.xrange(stream, min=f"({self._last[stream]}", count=PAGE)
            for raw_id, fields in rows:
                self._last[stream] = text(raw_id)
                try:
                    out.append(decode(fields, self._last[stream]))
                except DecodeError:
                    continue  # the consumers dead-letter it
            if len(rows) < PAGE:
                return out

    async def _follow(self) -> None:
        if await self._went_back(ORDERS_EVENTS) or await self._went_back(ORDERS_REQUESTS):
            self._reset()
        for msg in await self._read(ORDERS_REQUESTS):
            if isinstance(msg.body, OrderNew):
                self._reasons[msg.body.client_order_id] = msg.body.reason
        for msg in await self._read(ORDERS_EVENTS):
            if not isinstance(msg.body, OrderEvent):
                continue
            reason = self._reasons.get(msg.body.client_order_id, "")
            fill = fill_from_event(msg.body, msg.ts, reason)
            if fill is not None and fill.key not in self._seen:
                self._seen.add(fill.key)
                self._fills.append(fill)

    async def today(self, now: float | None = None) -> m.Performance:
        """The New York trading day of ``now`` (default: the wall clock)."""
        async with self._lock:
            await self._follow()
            fills = list(self._fills)
        day = trading_date(time.time() if now is None else now)
        perf = day_performance(fills, day)
        s = perf.stats
        return m.Performance(
            trading_day=day.isoformat(),
            round_trips=s.trades,
            wins=s.wins,
            losses=s.losses,
            win_rate=s.win_rate,
            avg_win=_money(s.avg_win),
            avg_loss=_money(s.avg_loss),
            realized_pnl=float(cents(perf.realized)),
            commissions=float(cents(perf.commissions)),
            net_pnl=float(cents(perf.realized - perf.commissions)),
            max_drawdown=float(cents(perf.max_drawdown)),
            fills=sum(1 for f in fills if trading_date(f.ts) == day),
            open_positions=perf.open_positions,
            trades=[_trip(t) for t in reversed(perf.trips[-TRADE_ROWS:])],
        )
