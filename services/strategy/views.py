"""Readable hashes for the monitor and redis-cli: positions, P&L, working orders.

``strategy:positions`` and ``strategy:orders`` have one JSON field per contract /
order; ``strategy:pnl`` has plain fields; ``strategy:equity`` is a capped list of
``{"t", "equity", "realized", "unrealized"}`` points for the equity curve.
"""

from __future__ import annotations

import datetime as dt
import time

import redis.asyncio as aioredis

from services.strategy.desk import Books
from services.strategy.money import fmt
from services.strategy.reconcile import BookReconciler
from services.strategy.risk import RiskLimits, daily_loss_limit
from services.strategy.tradingday import TradingDay
from shared import clock
from shared.bus import Publisher
from shared.contract import STRATEGY_EQUITY, STRATEGY_ORDERS, STRATEGY_PNL, STRATEGY_POSITIONS
from shared.contract.values import EquityPoint, PnlFields, PositionRow, WorkingOrderRow, to_json

EQUITY_POINTS = 5000


def positions_fields(books: Books) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, h in books.ledger.positions.items():
        q = books.market.quote(key)
        out[key] = to_json(
            PositionRow(
                symbol=h.contract.symbol,
                expiry=h.contract.expiry,
                strike=h.contract.strike,
                right=h.contract.right.value if h.contract.right else "",
                qty=h.qty,
                avg_price=f"{h.avg_price:.4f}",
                mark="" if h.mark is None else f"{h.mark:.4f}",
                mark_stale=h.mark_stale,
                cost=fmt(h.cost),
                market_value=fmt(h.market_value),
                unrealized=fmt(h.unrealized),
                realized=fmt(h.realized),
                commissions=fmt(h.commissions),
                delta=q.delta if q is not None and q.delta is not None else "",
                opened=dt.datetime.fromtimestamp(h.opened_ns / 1e9, dt.UTC).isoformat(
                    timespec="seconds"
                ),
                entry_order=h.entry_order,
                simulated=h.simulated,
            )
        )
    return out


def pnl_fields(
    books: Books, reconciler: BookReconciler, day: TradingDay, limits: RiskLimits
) -> PnlFields:
    led = books.ledger
    daily = day.daily_pnl()
    stale = led.stale_marks
    opened = day.current
    return PnlFields(
        starting_cash=fmt(led.starting_cash),
        cash=fmt(led.cash),
        market_value=fmt(led.market_value),
        equity=fmt(led.equity),
        realized=fmt(led.realized),
        unrealized=fmt(led.unrealized),
        commissions=fmt(led.commissions),
        daily_pnl="" if daily is None else fmt(daily),
        daily_pnl_basis=f"stale marks: {', '.join(stale)}" if stale else "fresh marks",
        stale_marks=",".join(stale),
        trading_day=opened.day.isoformat() if opened else "",
        opening_equity=fmt(day.opening_equity),
        equity_source=opened.source if opened else "ledger",
        daily_loss_limit=fmt(daily_loss_limit(day.opening_equity, limits)),
        premium_at_risk=fmt(led.premium_at_risk),
        net_liquidation=fmt(
            books.net_liquidation if books.net_liquidation is not None else led.equity
        ),
        positions=str(len(led.positions)),
        fills=str(led.fills),
        working_orders=str(len(books.orders.working)),
        risk_state=books.status.state.value,
        reconcile=reconciler.status,
        updated=f"{time.time():.3f}",
    )


def orders_fields(books: Books) -> dict[str, str]:
    return {
        cid: to_json(
            WorkingOrderRow(
                key=w.order.contract.key,
                action=w.order.action.value,
                qty=w.order.quantity,
                filled=w.filled,
                limit=w.limit,
                reprices=w.reprices,
                acked=w.acked,
                reduce_only=w.order.reduce_only,
            )
        )
        for cid, w in books.orders.working.items()
    }


async def publish_views(
    pub: Publisher,
    redis: aioredis.Redis,
    books: Books,
    reconciler: BookReconciler,
    curve: bool,
    *,
    day: TradingDay,
    limits: RiskLimits,
) -> None:
    """Write the hashes whole (replace), so closed positions and done orders disappear."""
    empty: list[str] = []
    for key, fields in (
        (STRATEGY_POSITIONS, positions_fields(books)),
        (STRATEGY_ORDERS, orders_fields(books)),
    ):
        if fields:
            pub.add_hash(key, fields, replace=True)
        else:
            empty.append(key)
    pnl = pnl_fields(books, reconciler, day, limits)
    pub.add_hash(STRATEGY_PNL, pnl.fields(), replace=True)
    if curve:
        point = EquityPoint(
            t=round(clock.current().time(), 3),  # trading time: the curve of a backtest
            equity=pnl.equity,
            realized=pnl.realized,
            unrealized=pnl.unrealized,
        )
        pub.add_list(STRATEGY_EQUITY, to_json(point), keep=EQUITY_POINTS)
    await pub.flush()  # queued replaces first, so a delete below is the last word
    if empty:
        await redis.delete(*empty)
