"""Order execution: simulated fills (idempotent), cancel, and routing to IB paper only."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.tws_simulator import Simulator
from shared.bus import Publisher
from shared.schemas import (
    Action,
    ContractRef,
    IbError,
    OptionChain,
    OptionChainRequest,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderNew,
    OrderType,
    Right,
)
from shared.settings import Settings
from shared.streams import ORDERS_EVENTS, ORDERS_REQUESTS
from tests.gateway_adapter.conftest import AdapterHandle, StartAdapter, bodies
from tests.gateway_adapter.test_quotes import send
from tests.helpers import wait_until

SPY = ContractRef(symbol="SPY")


async def order(redis: aioredis.Redis, settings: Settings, body: object) -> None:
    await Publisher(redis, settings, src="test").publish(ORDERS_REQUESTS, body)  # type: ignore[arg-type]


async def events(redis: aioredis.Redis, cid: str) -> list[OrderEvent]:
    return [e for e in await bodies(redis, ORDERS_EVENTS, OrderEvent) if e.client_order_id == cid]


async def kinds_for(redis: aioredis.Redis, cid: str, n: int) -> list[OrderEventKind]:
    async def enough() -> list[OrderEvent]:
        found = await events(redis, cid)
        return found if len(found) >= n else []

    return [e.kind for e in await wait_until(enough, timeout=4, what=f"{n} events for {cid}")]


async def ready(
    sim: Simulator,
    start_adapter: StartAdapter,
    redis: aioredis.Redis,
    settings: Settings,
    **overrides: object,
) -> AdapterHandle:
    adapter = await start_adapter(sim, **overrides)
    await wait_until(lambda: adapter.connected, timeout=4)
    return adapter


async def an_option(redis: aioredis.Redis, settings: Settings) -> ContractRef:
    await send(
        redis,
        settings,
        OptionChainRequest(
            request_id="c",
            underlying="SPY",
            min_dte=0,
            max_dte=60,
            moneyness=0.005,
            right=Right.CALL,
            reply_to="replies",
        ),
    )
    chain = (await wait_until(lambda: bodies(redis, "replies", OptionChain), timeout=5))[0]
    ref = chain.contracts[0]
    await wait_until(
        lambda: redis.hget(f"md:last:{ref.key}", "ask"), timeout=3, what="option quote"
    )
    return ref


async def test_submit_when_marketable_and_delivered_twice_fills_once_with_commission(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    await ready(sim, start_adapter, redis, settings)
    opt = await an_option(redis, settings)
    new = OrderNew(
        client_order_id="o-1", contract=opt, action=Action.BUY, quantity=3, order_type=OrderType.MKT
    )
    await order(redis, settings, new)
    await order(redis, settings, new)  # redelivered / duplicated request
    assert await kinds_for(redis, "o-1", 2) == [OrderEventKind.ACK, OrderEventKind.FILL]
    one = OrderNew(
        client_order_id="o-2",
        contract=opt,
        action=Action.SELL,
        quantity=1,
        order_type=OrderType.MKT,
    )
    await order(redis, settings, one)
    await kinds_for(redis, "o-2", 2)
    fill = (await events(redis, "o-1"))[-1]
    assert fill.fill_qty == 3 and fill.fill_price and fill.commission == 1.95 and fill.simulated
    assert (await events(redis, "o-2"))[-1].commission == 1.0
    assert len(await events(redis, "o-1")) == 2  # still exactly one ack and one fill
    assert await redis.hexists("orders:seen", "o-1")


async def test_cancel_when_limit_rests_emits_cancelled_and_no_fill(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    await ready(sim, start_adapter, redis, settings)
    new = OrderNew(
        client_order_id="r-1", contract=SPY, action=Action.BUY, quantity=1, limit_price=1.0
    )
    await order(redis, settings, new)
    assert await kinds_for(redis, "r-1", 1) == [OrderEventKind.ACK]
    await order(redis, settings, OrderCancel(client_order_id="r-1", reason="test"))
    assert await kinds_for(redis, "r-1", 2) == [OrderEventKind.ACK, OrderEventKind.CANCELLED]
    await order(redis, settings, OrderCancel(client_order_id="r-1"))
    assert (await kinds_for(redis, "r-1", 3))[-1] is OrderEventKind.REJECTED


async def test_submit_when_routing_enabled_and_account_not_paper_refuses(
    make_sim: object, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    sim = await make_sim(account_id="U7654321")  # type: ignore[operator]
    await ready(sim, start_adapter, redis, settings, ib_route_orders=True)
    new = OrderNew(
        client_order_id="live-1",
        contract=SPY,
        action=Action.BUY,
        quantity=1,
        order_type=OrderType.MKT,
    )
    await order(redis, settings, new)
    (ev,) = [e for e in await wait_until(lambda: events(redis, "live-1"), timeout=3)]
    assert ev.kind is OrderEventKind.REJECTED and "not a paper account" in ev.reason
    status = [e for e in await bodies(redis, "gw:status", IbError) if e.severity == "refused"]
    assert status and "U7654321" in status[0].message
    assert not sim.book.open_orders(None) and not sim.book.executions


async def test_submit_when_routing_enabled_on_paper_fills_at_ib(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    await ready(sim, start_adapter, redis, settings, ib_route_orders=True)
    new = OrderNew(
        client_order_id="ib-1",
        contract=SPY,
        action=Action.BUY,
        quantity=10,
        order_type=OrderType.MKT,
    )
    await order(redis, settings, new)
    await order(redis, settings, new)
    kinds = await kinds_for(redis, "ib-1", 2)
    assert kinds == [OrderEventKind.ACK, OrderEventKind.FILL]
    fill = (await events(redis, "ib-1"))[-1]
    assert (
        not fill.simulated and fill.fill_qty == 10 and fill.commission == 1.0 and fill.ib_order_id
    )
    assert len(sim.book.executions) == 1
