"""Client-id conflicts (326) and recovery from drops and IB connectivity codes."""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

import pytest
import redis.asyncio as aioredis
from ib_async import IB

from services.tws_simulator import Simulator
from shared.ib_schedule import NEW_YORK
from shared.schemas import ConnState, ContractRef, GatewayStatus, IbError, Subscribe
from shared.settings import Settings
from tests.gateway_adapter.conftest import AdapterHandle, StartAdapter, bodies
from tests.gateway_adapter.test_quotes import send
from tests.helpers import wait_until

RECOVERY_BOUND_S = 3.0  # reconnect backoff 0.1-0.5 s + handshake + resubscribe


async def foreign_client(sim: Simulator, client_id: int = 1) -> IB:
    ib = IB()
    await ib.connectAsync("127.0.0.1", sim.port, client_id, timeout=3)
    return ib


async def status_reasons(redis: aioredis.Redis) -> list[str]:
    return [s.reason for s in await bodies(redis, "gw:status", GatewayStatus)]


async def test_connect_when_client_id_in_use_and_policy_wait_reports_326_and_retries_same_id(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis
) -> None:
    other = await foreign_client(sim)
    adapter = await start_adapter(sim, ib_client_id_policy="wait")

    async def conflict_reported() -> bool:
        errors = await bodies(redis, "gw:status", IbError)
        reasons = await status_reasons(redis)
        return any(e.code == 326 for e in errors) and any("326" in r for r in reasons)

    await wait_until(conflict_reported, timeout=4, what="326 on gw:status")
    assert adapter.adapter.conn.client_id == 1 and not adapter.connected
    other.disconnect()
    await wait_until(lambda: adapter.connected, timeout=3, what="connected once the id is free")
    assert adapter.adapter.status.info.client_id == 1


async def test_connect_when_client_id_in_use_and_policy_next_uses_next_id(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis
) -> None:
    other = await foreign_client(sim)
    adapter = await start_adapter(sim, ib_client_id_policy="next", ib_client_id_max=3)
    await wait_until(lambda: adapter.connected, timeout=4, what="connected with another id")
    assert adapter.adapter.status.info.client_id == 2 and 2 in sim.status()["clients"]  # type: ignore[operator]
    assert any("326" in r for r in await status_reasons(redis))
    other.disconnect()


async def states_since(redis: aioredis.Redis, first: int = 0) -> list[ConnState]:
    """States on gw:status from the ``first``-th GatewayStatus entry on."""
    return [s.state for s in await bodies(redis, "gw:status", GatewayStatus)][first:]


async def says_connected(redis: aioredis.Redis) -> bool:
    """The latest state on gw:status is CONNECTED."""
    states = await states_since(redis)
    return bool(states) and states[-1] is ConnState.CONNECTED


async def subscribed(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> AdapterHandle:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    await send(
        redis, settings, Subscribe(contracts=[ContractRef(symbol="SPY"), ContractRef(symbol="QQQ")])
    )
    await wait_until(lambda: len(adapter.adapter.subs.open) == 2, timeout=3)
    await wait_until(lambda: says_connected(redis), timeout=5, what="CONNECTED on gw:status")
    return adapter


LAST_KEYS = ("md:last:SPY", "md:last:QQQ")


async def quotes_flow_again(redis: aioredis.Redis) -> float:
    """Seconds until both SPY and QQQ publish a fresh md:last after we delete them.

    ``EXISTS k1 k2`` counts the keys that exist: one of the two would make it truthy,
    so the wait asks for the count of both."""
    started = time.monotonic()
    await redis.delete(*LAST_KEYS)

    async def both() -> bool:
        return await redis.exists(*LAST_KEYS) == len(LAST_KEYS)

    await wait_until(
        both, timeout=RECOVERY_BOUND_S, what="quotes of SPY and QQQ again", interval=0.01
    )
    return time.monotonic() - started


async def test_reconnect_when_simulator_drops_connection_resubscribes_same_lines(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await subscribed(sim, start_adapter, redis, settings)
    connects = adapter.adapter.conn.connects
    before = len(await states_since(redis))
    sim.drop_all()
    await wait_until(
        lambda: adapter.adapter.conn.connects > connects and adapter.connected,
        timeout=RECOVERY_BOUND_S,
        what="reconnected",
    )
    took = await quotes_flow_again(redis)
    assert set(adapter.adapter.subs.open) == {"SPY", "QQQ"}

    # The lines are reopened before the adapter says CONNECTED, and the status goes
    # through the publisher's batch: quotes can be on Redis before that entry is.
    async def down_then_connected() -> list[ConnState]:
        states = await states_since(redis, before)
        ok = ConnState.DISCONNECTED in states and states[-1] is ConnState.CONNECTED
        return states if ok else []

    await wait_until(down_then_connected, timeout=5, what="DISCONNECTED, then CONNECTED")
    print(f"quotes again {took:.2f}s after the drop")


async def test_restore_when_1100_then_1101_resubscribes_and_quotes_flow(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await subscribed(sim, start_adapter, redis, settings)
    sim.connectivity_lost()
    await wait_until(lambda: adapter.adapter.status.state is ConnState.DEGRADED, timeout=2)
    started = time.monotonic()
    sim.connectivity_restored(data_maintained=False)  # the simulator forgets every line
    await wait_until(lambda: len(sim.sessions[1].lines) == 2, timeout=RECOVERY_BOUND_S)
    await quotes_flow_again(redis)
    took = time.monotonic() - started
    assert adapter.adapter.status.state is ConnState.CONNECTED
    assert adapter.adapter.conn.connects == 1  # same connection, lines requested again
    # the lost lines are not cancelled: IB no longer knows them ("Can't find EId", 300)
    codes = [e.code for e in await bodies(redis, "gw:status", IbError)]
    assert 300 not in codes, codes
    print(f"quotes again {took:.2f}s after 1101")


async def test_restore_when_1100_then_1102_keeps_subscriptions(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await subscribed(sim, start_adapter, redis, settings)
    before = dict(adapter.adapter.subs.open)
    sim.connectivity_lost()
    await wait_until(lambda: adapter.adapter.status.state is ConnState.DEGRADED, timeout=2)
    sim.connectivity_restored(data_maintained=True)
    await wait_until(lambda: adapter.adapter.status.state is ConnState.CONNECTED, timeout=2)
    await quotes_flow_again(redis)
    assert adapter.adapter.subs.open == before and len(sim.sessions[1].lines) == 2
    codes = [e.code for e in await bodies(redis, "gw:status", IbError)]
    assert 1100 in codes and 1102 in codes


async def test_logon_when_ib_link_already_lost_reports_degraded_until_restored(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis
) -> None:
    # 1100 can reach the adapter while it is still setting up (before its "connected"):
    # the fault suite caught it losing that 1100 and saying "connected, logged on".
    sim.connectivity_lost()  # nobody connected: the next client hears 1100 at logon
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.adapter.status.state is ConnState.DEGRADED, timeout=5)
    assert "1100" in adapter.adapter.status.reason
    assert ConnState.CONNECTED not in [
        s.state for s in await bodies(redis, "gw:status", GatewayStatus)
    ]
    sim.connectivity_restored(data_maintained=True)
    await wait_until(lambda: adapter.adapter.status.state is ConnState.CONNECTED, timeout=2)


async def test_reconnect_when_simulator_restarts_recovers_within_bound(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await subscribed(sim, start_adapter, redis, settings)
    started = time.monotonic()
    await sim.restart(downtime=0.5)
    await quotes_flow_again(redis)
    print(f"quotes again {time.monotonic() - started:.2f}s after a 0.5 s restart")
    assert adapter.adapter.qualifier.from_ib == 2  # cached conIds reused after reconnect


async def test_receive_when_malformed_frame_arrives_adapter_keeps_streaming_on_same_connection(
    sim: Simulator,
    start_adapter: StartAdapter,
    redis: aioredis.Redis,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="ib_async")
    adapter = await subscribed(sim, start_adapter, redis, settings)
    session = sim.sessions[1]
    before = len(await states_since(redis))
    sim.send_malformed()

    def decoded() -> bool:  # ib_async logs the frame it could not handle: it has read it
        return any("garbage" in r.getMessage() for r in caplog.records)

    await wait_until(decoded, timeout=5, what="the malformed frame decoded")
    await quotes_flow_again(redis)
    assert adapter.adapter.conn.connects == 1, "the IB connection was reopened"
    assert sim.sessions.get(1) is session and not session.closed
    later = await states_since(redis, before)
    assert not later, f"state changed on a malformed frame: {later}"


async def test_drop_when_inside_the_scheduled_restart_window_says_so_in_its_reason(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis
) -> None:
    """IBC restarts the Gateway daily at OPTBOT_IB_RESTART_TIME: a drop then is expected."""
    now = datetime.now(NEW_YORK) - timedelta(minutes=1)  # the restart began a minute ago
    adapter = await start_adapter(sim, ib_restart_time=f"{now:%H:%M}", ib_restart_window_s=600.0)
    await wait_until(lambda: adapter.connected, timeout=10, what="connected")
    await wait_until(lambda: _said_connected(redis), timeout=10, what="CONNECTED on gw:status")
    sim.drop_all()

    async def dropped() -> list[str]:
        return [r for r in await status_reasons(redis) if r.startswith("connection lost")]

    (reason,) = (await wait_until(dropped, timeout=5, what="the drop's status"))[:1]
    assert reason == f"connection lost (scheduled daily IB Gateway restart at {now:%H:%M} New York)"


async def test_drop_when_outside_any_restart_window_is_a_plain_connection_loss(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis
) -> None:
    later = datetime.now(NEW_YORK) + timedelta(hours=3)
    adapter = await start_adapter(sim, ib_restart_time=f"{later:%H:%M}")
    await wait_until(lambda: adapter.connected, timeout=10, what="connected")
    await wait_until(lambda: _said_connected(redis), timeout=10, what="CONNECTED on gw:status")
    sim.drop_all()

    async def dropped() -> list[str]:
        return [r for r in await status_reasons(redis) if r.startswith("connection lost")]

    reasons = await wait_until(dropped, timeout=5, what="the drop's status")
    assert reasons[0] == "connection lost" or "weekly" in reasons[0]  # Sunday 01:00 NY


async def _said_connected(redis: aioredis.Redis) -> bool:
    states = [b.state for b in await bodies(redis, "gw:status", GatewayStatus)]
    return ConnState.CONNECTED in states
