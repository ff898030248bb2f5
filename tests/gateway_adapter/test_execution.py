"""Order execution: simulated fills (idempotent), cancel, and routing to IB paper only."""

from __future__ import annotations

from itertools import accumulate

import redis.asyncio as aioredis

from services.tws_simulator import Simulator
from shared.bus import Publisher
from shared.contract import ACCOUNT, ORDERS_EVENTS, ORDERS_REQUESTS
from shared.schemas import (
    AccountSnapshot,
    Action,
    ConnState,
    ContractRef,
    IbError,
    OptionChain,
    OptionChainRequest,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    OrderModify,
    OrderNew,
    OrderType,
    Right,
)
from shared.settings import Settings
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
    status = adapter.adapter.status  # logged on: account known, set-up done
    await wait_until(lambda: status.state is ConnState.CONNECTED, timeout=4, what="logged on")
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
            requester="strategy",
        ),
    )
    chain = (
        await wait_until(lambda: bodies(redis, "gw:replies:strategy", OptionChain), timeout=5)
    )[0]
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


async def test_submit_when_larger_than_touch_fills_touch_now_and_rest_at_later_quotes(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    await ready(sim, start_adapter, redis, settings)
    opt = await an_option(redis, settings)
    touch = float(await redis.hget(f"md:last:{opt.key}", "ask_size") or 0)
    qty = 400  # the simulator quotes at most 120 contracts at the ask
    big = OrderNew(
        client_order_id="big-1",
        contract=opt,
        action=Action.BUY,
        quantity=qty,
        order_type=OrderType.MKT,
    )
    await order(redis, settings, big)

    async def done() -> list[OrderEvent]:
        found = await events(redis, "big-1")
        return found if found and found[-1].kind is OrderEventKind.FILL else []

    evs = await wait_until(done, timeout=6, what="big-1 filled completely")
    fills = [e for e in evs if e.kind in (OrderEventKind.PARTIAL, OrderEventKind.FILL)]
    assert evs[0].kind is OrderEventKind.ACK and len(fills) >= 2
    assert all(e.kind is OrderEventKind.PARTIAL for e in fills[:-1])
    assert fills[0].fill_qty <= max(touch, 120) and fills[0].fill_qty < qty
    assert len({e.exec_id for e in fills}) == len(fills)  # one exec id per fill
    assert [e.filled_total for e in fills] == list(accumulate(e.fill_qty for e in fills))
    assert fills[-1].filled_total == qty and fills[-1].remaining == 0
    assert round(sum(e.commission for e in fills), 4) == 0.65 * qty  # one order's commission
    assert not await redis.hexists("orders:working", "big-1")


async def test_fill_when_simulated_publishes_sim_account_consistent_with_fills(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    await ready(sim, start_adapter, redis, settings)
    opt = await an_option(redis, settings)
    buy = OrderNew(
        client_order_id="acct-1",
        contract=opt,
        action=Action.BUY,
        quantity=2,
        order_type=OrderType.MKT,
    )
    await order(redis, settings, buy)
    evs = await wait_until(lambda: _filled(redis, "acct-1"), timeout=4, what="acct-1 filled")
    fills = [e for e in evs if e.fill_qty]
    paid = sum(e.fill_qty * (e.fill_price or 0) * 100 for e in fills)
    fees = sum(e.commission for e in fills)

    async def sim_snapshot() -> AccountSnapshot | None:
        snaps = [s for s in await bodies(redis, ACCOUNT, AccountSnapshot) if s.simulated]
        return next((s for s in reversed(snaps) if s.positions), None)

    snap = await wait_until(sim_snapshot, timeout=8, what="simulated snapshot with the fill")
    assert snap.account == "DU1234567-SIM"
    assert round(snap.cash, 2) == round(3756.96 - paid - fees, 2)
    (pos,) = snap.positions
    assert pos.contract.key == opt.key and pos.quantity == 2
    assert round(pos.avg_cost, 4) == round(paid / 2, 4)  # per contract, as IB reports it
    assert round(snap.net_liquidation, 2) == round(snap.cash + 2 * (pos.market_price or 0) * 100, 2)


async def _filled(redis: aioredis.Redis, cid: str) -> list[OrderEvent]:
    found = await events(redis, cid)
    return found if found and found[-1].kind is OrderEventKind.FILL else []


def switch_account_at_next_pacing(adapter: AdapterHandle, account: str) -> list[str]:
    """From now on, the next await on the pacer logs on to ``account`` (a reconnect to
    another login) before it returns: between the routing check and ``placeOrder``."""
    pacer, status = adapter.adapter.pacer, adapter.adapter.conn.status
    original = pacer.take
    seen: list[str] = []

    async def take(n: float = 1.0) -> None:
        await original(n)
        if not seen:
            seen.append(status.info.account)
            status.info.account = account

    pacer.take = take  # type: ignore[method-assign]
    return seen


async def test_submit_when_account_turns_live_between_check_and_send_rejects_and_sends_nothing(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings, ib_route_orders=True)
    switched = switch_account_at_next_pacing(adapter, "U7654321")
    new = OrderNew(
        client_order_id="swap-1",
        contract=SPY,
        action=Action.BUY,
        quantity=1,
        order_type=OrderType.MKT,
    )
    await order(redis, settings, new)
    (ev,) = await wait_until(lambda: events(redis, "swap-1"), timeout=4, what="reject")
    assert switched and switched[0].startswith("D")  # it was paper at the first check
    assert ev.kind is OrderEventKind.REJECTED and "not a paper account" in ev.reason
    assert not sim.book.orders and not sim.book.executions
    assert not await redis.hexists("orders:ib", "swap-1")  # nothing left that "may fill"


async def test_modify_when_account_turns_live_before_send_refuses_and_keeps_the_price(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings, ib_route_orders=True)
    new = OrderNew(
        client_order_id="swap-2", contract=SPY, action=Action.BUY, quantity=1, limit_price=1.0
    )
    await order(redis, settings, new)
    assert await kinds_for(redis, "swap-2", 1) == [OrderEventKind.ACK]
    (working,) = sim.book.open_orders(None)
    switch_account_at_next_pacing(adapter, "U7654321")
    await order(redis, settings, OrderModify(client_order_id="swap-2", limit_price=2.0))
    kinds = await kinds_for(redis, "swap-2", 2)
    assert kinds == [OrderEventKind.ACK, OrderEventKind.REJECTED]
    reason = (await events(redis, "swap-2"))[-1].reason
    assert reason.startswith("modify refused") and "not a paper account" in reason
    assert working.lmt_price == 1.0 and len(sim.book.orders) == 1
