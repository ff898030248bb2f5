"""Orders survive the adapter: restart/failover restore, atomic seen+ack, missed IB fills."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from services.tws_simulator import Simulator
from shared.schemas import Action, ContractRef, OrderEventKind, OrderModify, OrderNew, OrderType
from shared.settings import Settings
from tests.gateway_adapter.conftest import StartAdapter
from tests.gateway_adapter.test_execution import an_option, events, kinds_for, order, ready
from tests.helpers import wait_until

SPY = ContractRef(symbol="SPY")


def resting(cid: str, qty: int = 1) -> OrderNew:
    """A buy limit far below the market: it rests until moved."""
    return OrderNew(
        client_order_id=cid, contract=SPY, action=Action.BUY, quantity=qty, limit_price=1.0
    )


async def test_failover_when_limit_order_working_standby_restores_and_fills_it(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    a = await ready(sim, start_adapter, redis, settings, instance="a")
    b = await start_adapter(sim, instance="b")
    await wait_until(lambda: b.ctx.state == "standby", timeout=2, what="b standby")
    await order(redis, settings, resting("w-1"))
    assert await kinds_for(redis, "w-1", 1) == [OrderEventKind.ACK]
    assert await redis.hexists("orders:working", "w-1")  # persisted with the ack
    await a.kill()
    await wait_until(lambda: b.connected, timeout=5, what="b took over")
    assert "w-1" in b.adapter.executor.working  # type: ignore[attr-defined]
    await order(redis, settings, OrderModify(client_order_id="w-1", limit_price=100_000.0))
    kinds = await kinds_for(redis, "w-1", 3)
    assert kinds == [OrderEventKind.ACK, OrderEventKind.MODIFIED, OrderEventKind.FILL]
    assert not await redis.hexists("orders:working", "w-1")


async def test_restore_when_working_entry_unreadable_reports_it_cancelled_with_reason(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    await redis.hset("orders:working", "junk-1", b"\xc1not msgpack")
    await ready(sim, start_adapter, redis, settings)
    (ev,) = await wait_until(lambda: events(redis, "junk-1"), timeout=3, what="junk-1 reported")
    assert ev.kind is OrderEventKind.CANCELLED and "could not be restored" in ev.reason
    assert not await redis.hexists("orders:working", "junk-1")


async def test_submit_when_journal_write_fails_redelivery_acks_exactly_once(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings)
    journal = adapter.adapter.journal
    real = journal._apply
    failed: list[bool] = []

    async def flaky(w: Any) -> bool:
        if not failed:
            failed.append(True)
            raise RedisConnectionError("injected: Redis went away mid-write")
        return await real(w)

    journal._apply = flaky  # type: ignore[method-assign]
    await order(redis, settings, resting("crash-1"))
    assert await kinds_for(redis, "crash-1", 1) == [OrderEventKind.ACK]  # after redelivery
    assert failed and await redis.hexists("orders:seen", "crash-1")

    async def settled() -> bool:  # the request is acknowledged: no redelivery is coming
        info: Any = await redis.xpending("orders:requests", "gateway_adapter")
        return int(info["pending"]) == 0

    await wait_until(settled, timeout=3, what="request acknowledged")
    assert [e.kind for e in await events(redis, "crash-1")] == [OrderEventKind.ACK]


async def test_reconnect_when_ib_filled_order_while_disconnected_reports_fill_once(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings, ib_route_orders=True)
    await order(redis, settings, resting("ib-away", qty=5))
    assert await kinds_for(redis, "ib-away", 1) == [OrderEventKind.ACK]
    restart = asyncio.create_task(sim.restart(downtime=0.6))
    await wait_until(lambda: not adapter.connected, timeout=2, what="adapter disconnected")
    (working,) = sim.book.open_orders()
    working.lmt_price = 100_000.0  # the market crosses the limit while we are away
    sim.book.on_step()
    assert not sim.book.open_orders() and len(sim.book.executions) == 1
    await restart
    await wait_until(lambda: adapter.connected, timeout=4, what="adapter reconnected")
    kinds = await kinds_for(redis, "ib-away", 2)
    assert kinds == [OrderEventKind.ACK, OrderEventKind.FILL]
    fill = (await events(redis, "ib-away"))[-1]
    assert fill.exec_id == sim.book.executions[0].exec_id and fill.fill_qty == 5
    assert not fill.simulated and fill.commission == 1.0
    sim.drop_all()  # another reconnect replays the same execution: still one fill
    await wait_until(lambda: adapter.connected, timeout=4, what="reconnected again")
    executor: Any = adapter.adapter.executor
    await wait_until(lambda: executor.syncs >= 2, timeout=4, what="second reqExecutions")
    await adapter.adapter.journal.drain()
    assert [e.kind for e in await events(redis, "ib-away")] == kinds


def _fail_first_write(adapter: Any) -> list[bool]:
    """Make the journal's next write fail like a Redis that went away mid-write."""
    journal = adapter.adapter.journal
    real = journal._apply
    failed: list[bool] = []

    async def flaky(w: Any) -> bool:
        if not failed:
            failed.append(True)
            raise RedisConnectionError("injected: Redis went away mid-write")
        return await real(w)

    journal._apply = flaky
    return failed


async def _book_matches_fills(redis: aioredis.Redis, adapter: Any, cid: str, qty: int) -> None:
    """Persisted and in-memory simulated book hold exactly the fills of ``cid``, once."""
    fills = [e for e in await events(redis, cid) if e.fill_qty]
    assert sum(e.fill_qty for e in fills) == qty
    paid = sum(e.fill_qty * (e.fill_price or 0) * 100 + e.commission for e in fills)
    raw = {k.decode(): v for k, v in (await redis.hgetall("sim:account")).items()}
    start = float(raw["start"])
    assert round(float(raw["cash"]), 6) == round(start - paid, 6)
    (pos_field,) = [k for k in raw if k.startswith("pos:")]
    assert b'"qty":%d' % qty in raw[pos_field]
    book = adapter.adapter.sim_account
    assert round(book.cash, 6) == round(start - paid, 6)
    assert [p.qty for p in book.positions.values()] == [qty]


async def test_fill_when_journal_write_fails_sim_book_counts_it_once(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings)
    opt = await an_option(redis, settings)
    await wait_until(lambda: redis.hexists("sim:account", "cash"), timeout=3, what="book open")
    failed = _fail_first_write(adapter)
    buy = OrderNew(
        client_order_id="dbl-1",
        contract=opt,
        action=Action.BUY,
        quantity=1,
        order_type=OrderType.MKT,
    )
    await order(redis, settings, buy)
    assert await kinds_for(redis, "dbl-1", 2) == [OrderEventKind.ACK, OrderEventKind.FILL]
    assert failed
    await adapter.adapter.journal.drain()
    await _book_matches_fills(redis, adapter, "dbl-1", 1)


async def test_modify_when_journal_write_fails_sim_book_counts_the_fill_once(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings)
    opt = await an_option(redis, settings)
    low = OrderNew(
        client_order_id="dbl-2", contract=opt, action=Action.BUY, quantity=1, limit_price=0.01
    )
    await order(redis, settings, low)
    assert await kinds_for(redis, "dbl-2", 1) == [OrderEventKind.ACK]
    failed = _fail_first_write(adapter)
    await order(redis, settings, OrderModify(client_order_id="dbl-2", limit_price=100_000.0))
    kinds = await kinds_for(redis, "dbl-2", 3)
    assert kinds == [OrderEventKind.ACK, OrderEventKind.MODIFIED, OrderEventKind.FILL]
    assert failed
    await adapter.adapter.journal.drain()
    await _book_matches_fills(redis, adapter, "dbl-2", 1)


async def test_submit_when_guard_refuses_fill_sim_book_unchanged(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings)
    opt = await an_option(redis, settings)
    await wait_until(lambda: redis.hexists("sim:account", "cash"), timeout=3, what="book open")
    journal = adapter.adapter.journal
    real = journal._apply
    raced: list[bool] = []

    async def seen_meanwhile(w: Any) -> bool:  # another instance took the id first
        if w.guard and not raced:
            raced.append(True)
            await redis.hset("orders:seen", w.guard[1], "{}")
        return await real(w)

    journal._apply = seen_meanwhile  # type: ignore[method-assign]
    book = adapter.adapter.sim_account
    cash = book.cash
    buy = OrderNew(
        client_order_id="race-1",
        contract=opt,
        action=Action.BUY,
        quantity=1,
        order_type=OrderType.MKT,
    )
    await order(redis, settings, buy)

    async def handled() -> bool:
        info: Any = await redis.xpending("orders:requests", "gateway_adapter")
        return bool(raced) and int(info["pending"]) == 0

    await wait_until(handled, timeout=4, what="request handled")
    assert await events(redis, "race-1") == []  # nothing was written
    assert book.cash == cash and opt.key not in book.positions
    assert float(await redis.hget("sim:account", "cash") or 0) == cash
