"""The reconcile after a reconnect: SYNCING before CONNECTED, missed fills, vanished orders.

Real adapter over a real socket to the real simulator, real Redis: the simulator
drops or restarts, IB-side state changes while we are away, and the tests read
what really went to ``gw:status``, ``orders:events`` and ``sys:alerts``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from services.gateway_adapter.connection import SYNC_ATTEMPTS
from services.tws_simulator import Simulator
from shared.contract import GW_STATUS, ORDERS_EVENTS, SYS_ALERTS
from shared.schemas import (
    Alert,
    AlertSeverity,
    ConnState,
    GatewayStatus,
    IbError,
    OrderEventKind,
)
from shared.settings import Settings
from tests.gateway_adapter.conftest import StartAdapter, bodies, entries
from tests.gateway_adapter.test_execution import events, kinds_for, order, ready
from tests.gateway_adapter.test_order_recovery import resting
from tests.helpers import wait_until


async def states(redis: aioredis.Redis) -> list[ConnState]:
    """Every state the active adapter published, in order (standby left out)."""
    found = await bodies(redis, GW_STATUS, GatewayStatus)
    return [b.state for b in found if b.state is not ConnState.STANDBY]


async def connected_on_stream(redis: aioredis.Redis) -> None:
    """Wait until the adapter's last published state is CONNECTED (its batches are written)."""

    async def last_connected() -> bool:
        seq = await states(redis)
        return bool(seq) and seq[-1] is ConnState.CONNECTED

    await wait_until(last_connected, timeout=2, what="CONNECTED on gw:status")


async def reconcile_alerts(redis: aioredis.Redis) -> list[Alert]:
    return [a for a in await bodies(redis, SYS_ALERTS, Alert) if a.code == "reconcile"]


async def sync_ms(redis: aioredis.Redis) -> float:
    """Milliseconds from the last SYNCING to the CONNECTED after it (entry timestamps)."""
    rows = [m for m in await entries(redis, GW_STATUS) if isinstance(m.body, GatewayStatus)]
    began = [m.ts for m in rows if m.body.state is ConnState.SYNCING][-1]
    done = next(m.ts for m in rows if m.ts >= began and m.body.state is ConnState.CONNECTED)
    return (done - began) / 1e6


def syncing(adapter: Any) -> bool:
    """The reconcile runs (ib_async's own start-up requests come before, while connecting)."""
    return adapter.adapter.status.state in (ConnState.SYNCING, ConnState.DEGRADED)


def after_last(seq: list[ConnState], state: ConnState) -> list[ConnState]:
    return seq[len(seq) - seq[::-1].index(state) :]


async def test_reconnect_when_simulator_drops_syncs_before_it_says_connected(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings)
    await connected_on_stream(redis)
    first = await states(redis)
    assert first == [ConnState.CONNECTING, ConnState.SYNCING, ConnState.CONNECTED]
    runs = adapter.adapter.reconciler.runs
    sim.drop_all()
    await wait_until(lambda: adapter.adapter.reconciler.runs > runs, timeout=5, what="resynced")
    await wait_until(
        lambda: adapter.adapter.status.state is ConnState.CONNECTED, timeout=2, what="connected"
    )
    await connected_on_stream(redis)
    again = after_last(await states(redis), ConnState.DISCONNECTED)
    assert again == [ConnState.CONNECTING, ConnState.SYNCING, ConnState.CONNECTED]
    status = (await bodies(redis, GW_STATUS, GatewayStatus))[-1]
    assert "synced: 0 missed fill(s)" in status.reason
    print(f"\nsyncing took {await sync_ms(redis):.1f} ms (simulated orders)")


async def test_reconnect_when_ib_filled_order_while_away_books_it_once_before_connected(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings, ib_route_orders=True)
    await order(redis, settings, resting("away-fill", qty=3))
    assert await kinds_for(redis, "away-fill", 1) == [OrderEventKind.ACK]
    restart = asyncio.create_task(sim.restart(downtime=0.6))
    await wait_until(lambda: not adapter.connected, timeout=2, what="adapter disconnected")
    (working,) = sim.book.open_orders()
    working.lmt_price = 100_000.0  # the market crosses the limit while we are away
    sim.book.on_step()
    await restart
    kinds = await kinds_for(redis, "away-fill", 2)
    assert kinds == [OrderEventKind.ACK, OrderEventKind.FILL]
    await wait_until(
        lambda: adapter.adapter.status.state is ConnState.CONNECTED, timeout=4, what="connected"
    )
    await connected_on_stream(redis)
    rows = await entries(redis, ORDERS_EVENTS) + await entries(redis, GW_STATUS)
    fill_at = next(m.ts for m in rows if getattr(m.body, "kind", None) is OrderEventKind.FILL)
    connected = [
        m.ts for m in rows if getattr(m.body, "state", None) is ConnState.CONNECTED
    ]  # the fill is booked before trading resumes
    assert connected[-1] > fill_at
    sim.drop_all()  # the next reconcile sees the same execution again: still one fill
    runs = adapter.adapter.reconciler.runs
    await wait_until(lambda: adapter.adapter.reconciler.runs > runs, timeout=5, what="resynced")
    await adapter.adapter.journal.drain()
    assert [e.kind for e in await events(redis, "away-fill")] == kinds
    assert not await redis.hexists("orders:ib", "away-fill")


async def test_reconnect_when_order_cancelled_at_ib_while_away_closes_it_in_journal(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings, ib_route_orders=True)
    await order(redis, settings, resting("away-cxl", qty=2))
    assert await kinds_for(redis, "away-cxl", 1) == [OrderEventKind.ACK]
    assert await redis.hexists("orders:ib", "away-cxl")
    restart = asyncio.create_task(sim.restart(downtime=0.6))
    await wait_until(lambda: not adapter.connected, timeout=2, what="adapter disconnected")
    (working,) = sim.book.open_orders()
    sim.book.cancel(working.client_id, working.order_id)  # e.g. by the trader in TWS
    await restart
    kinds = await kinds_for(redis, "away-cxl", 2)
    assert kinds == [OrderEventKind.ACK, OrderEventKind.CANCELLED]
    cancelled = (await events(redis, "away-cxl"))[-1]
    assert "Cancelled at IB while we were disconnected" in cancelled.reason
    assert not cancelled.simulated
    assert not await redis.hexists("orders:ib", "away-cxl")
    assert "away-cxl" not in adapter.adapter.executor.orders  # type: ignore[attr-defined]
    await wait_until(
        lambda: adapter.adapter.status.state is ConnState.CONNECTED, timeout=4, what="connected"
    )
    await connected_on_stream(redis)
    (alert,) = await wait_until(lambda: reconcile_alerts(redis), timeout=2, what="alert")
    assert alert.key == "reconcile:order:away-cxl" and alert.source == "gateway_adapter"
    assert alert.details["ib_status"] == "Cancelled" and alert.details["event"] == "cancelled"
    assert "1 order(s) closed" in adapter.adapter.status.reason
    print(f"\nsyncing took {await sync_ms(redis):.1f} ms (routed, one order closed)")


async def test_takeover_when_ib_works_order_journal_does_not_hold_raises_critical_alert(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    a = await ready(sim, start_adapter, redis, settings, ib_route_orders=True, instance="a")
    await order(redis, settings, resting("lost-1"))
    assert await kinds_for(redis, "lost-1", 1) == [OrderEventKind.ACK]
    await a.stop()
    await redis.hdel("orders:ib", "lost-1")  # the journal lost it (it thinks it done)
    b = await ready(sim, start_adapter, redis, settings, ib_route_orders=True, instance="b")
    await connected_on_stream(redis)
    (alert,) = await wait_until(lambda: reconcile_alerts(redis), timeout=2, what="alert")
    assert alert.key == "reconcile:order:lost-1" and alert.severity is AlertSeverity.CRITICAL
    assert "journal does not hold" in alert.message
    assert "1 unknown at IB" in b.adapter.status.reason
    assert len(sim.book.open_orders()) == 1  # reported, not touched


async def test_sync_when_ib_does_not_answer_reports_degraded_with_reason_then_retries(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings, ib_request_timeout_s=0.4)
    ib: Any = adapter.adapter.conn.ib
    real = ib.reqPositionsAsync
    hung: list[bool] = []

    def silent_once() -> Any:  # IB takes the reconcile's request and never answers
        if not hung and syncing(adapter):
            hung.append(True)
            return asyncio.get_running_loop().create_future()
        return real()

    ib.reqPositionsAsync = silent_once
    sim.drop_all()
    await wait_until(lambda: hung, timeout=5, what="the hanging sync")
    await wait_until(
        lambda: adapter.adapter.status.state is ConnState.CONNECTED, timeout=5, what="connected"
    )
    await connected_on_stream(redis)
    after = [
        b for b in await bodies(redis, GW_STATUS, GatewayStatus) if b.state is not ConnState.STANDBY
    ]
    tail = after[-4:]
    assert [b.state for b in tail] == [
        ConnState.CONNECTING,
        ConnState.SYNCING,
        ConnState.DEGRADED,
        ConnState.CONNECTED,
    ]
    assert "sync failed (1/" in tail[2].reason and "TimeoutError" in tail[2].reason


async def test_sync_when_it_keeps_failing_drops_the_link_and_reconnects(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings, ib_request_timeout_s=0.2)
    ib: Any = adapter.adapter.conn.ib
    real = ib.reqPositionsAsync
    calls: list[int] = []

    def silent_on_one_link() -> Any:  # every reconcile on the next link hangs
        if not syncing(adapter):
            return real()
        calls.append(adapter.adapter.conn.connects)
        if calls[-1] == calls[0]:
            return asyncio.get_running_loop().create_future()
        return real()

    ib.reqPositionsAsync = silent_on_one_link
    connects = adapter.adapter.conn.connects
    sim.drop_all()
    await wait_until(
        lambda: adapter.adapter.conn.connects >= connects + 2, timeout=10, what="a new link"
    )
    await wait_until(
        lambda: adapter.adapter.status.state is ConnState.CONNECTED, timeout=5, what="connected"
    )
    assert calls.count(connects + 1) == SYNC_ATTEMPTS  # then the link was dropped
    assert adapter.adapter.status.history.count(ConnState.DEGRADED) >= SYNC_ATTEMPTS


async def test_restore_notice_when_sync_has_not_succeeded_does_not_say_connected(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await ready(sim, start_adapter, redis, settings, ib_request_timeout_s=0.3)
    ib: Any = adapter.adapter.conn.ib
    real = ib.reqPositionsAsync
    hold = [True]

    def silent_while_held() -> Any:
        if hold and syncing(adapter):
            return asyncio.get_running_loop().create_future()
        return real()

    ib.reqPositionsAsync = silent_while_held
    runs = adapter.adapter.reconciler.runs
    sim.drop_all()
    status = adapter.adapter.status
    await wait_until(
        lambda: status.state is ConnState.DEGRADED and "sync failed" in status.reason,
        timeout=5,
        what="a failed sync",
    )
    sim.connectivity_restored(data_maintained=True)  # 1102 (and farm OK codes) arrive now

    async def heard_1102() -> bool:
        return any(e.code == 1102 for e in await bodies(redis, GW_STATUS, IbError))

    await wait_until(heard_1102, timeout=2, what="1102 reported")
    assert status.state is not ConnState.CONNECTED and adapter.adapter.reconciler.runs == runs
    hold.clear()
    await wait_until(lambda: status.state is ConnState.CONNECTED, timeout=5, what="synced")
    assert adapter.adapter.reconciler.runs == runs + 1
