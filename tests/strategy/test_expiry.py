"""The strategy books an option's expiry from ``orders:events`` once, with a decision."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from services.strategy.main import main as strategy_main
from shared.bus import Publisher
from shared.contract import ORDERS_EVENTS, STRATEGY_DECISIONS, STRATEGY_PNL, STRATEGY_POSITIONS
from shared.envelope import decode
from shared.runner import run_service
from shared.schemas import (
    Action,
    ContractRef,
    Decision,
    DecisionKind,
    OrderEvent,
    OrderEventKind,
    Right,
    SecType,
)
from shared.settings import Settings
from tests.helpers import wait_until

OPT = ContractRef(
    symbol="SPY",
    sec_type=SecType.OPT,
    expiry="20261127",
    strike=600,
    right=Right.CALL,
    multiplier=100,
)


async def _decisions(redis: aioredis.Redis) -> list[Decision]:
    rows: Any = await redis.xrange(STRATEGY_DECISIONS)
    found = [decode(fields).body for _, fields in rows]
    return [d for d in found if isinstance(d, Decision) and d.kind is DecisionKind.EXPIRY]


async def _all_handled(redis: aioredis.Redis) -> bool:
    """Every orders:events entry delivered to the strategy's group and acknowledged."""
    last: Any = await redis.xrevrange(ORDERS_EVENTS, count=1)
    groups: Any = await redis.xinfo_groups(ORDERS_EVENTS)
    return any(g["last-delivered-id"] == last[0][0] and g["pending"] == 0 for g in groups)


async def test_expired_event_when_delivered_twice_closes_position_once_with_decision(
    settings: Settings, redis: aioredis.Redis
) -> None:
    pub = Publisher(redis, settings, src="gateway_adapter/a")
    buy = OrderEvent(
        client_order_id="e-1",
        kind=OrderEventKind.FILL,
        contract=OPT,
        action=Action.BUY,
        fill_qty=2,
        fill_price=1.5,
        commission=1.3,
        filled_total=2,
        exec_id="sim-e-1-1",
    )
    expired = OrderEvent(
        client_order_id="expiry-SPY 20261127 600 C",
        kind=OrderEventKind.EXPIRED,
        contract=OPT,
        action=Action.SELL,
        fill_qty=2,
        fill_price=0.75,
        filled_total=2,
        exec_id="expiry-SPY 20261127 600 C",
        reason="expired in the money",
    )
    pub.add(ORDERS_EVENTS, buy, key=buy.client_order_id)
    await pub.flush()
    stop = asyncio.Event()
    task = asyncio.create_task(run_service("strategy", strategy_main, settings, stop=stop))
    try:
        await wait_until(
            lambda: redis.hexists(STRATEGY_POSITIONS, OPT.key), timeout=15, what="position held"
        )
        for _ in range(2):  # redelivered / replayed
            pub.add(ORDERS_EVENTS, expired, key=expired.client_order_id)
        await pub.flush()
        (decision,) = await wait_until(lambda: _decisions(redis), timeout=5, what="decision")
        assert OPT.key in decision.reason and decision.symbol == "SPY"

        async def closed() -> bool:
            realized = await redis.hget(STRATEGY_PNL, "realized")
            held = await redis.hexists(STRATEGY_POSITIONS, OPT.key)
            return not held and realized is not None and float(realized) == -150.0

        await wait_until(closed, timeout=5, what="position closed at settlement")
        await wait_until(lambda: _all_handled(redis), timeout=5, what="both copies handled")
        assert len(await _decisions(redis)) == 1
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0
