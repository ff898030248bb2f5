"""One active adapter, one hot standby; a crash hands the IB connection over."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from services.tws_simulator import Simulator
from shared.contract import lease_key
from shared.schemas import ConnState, ContractRef, GatewayStatus, IbError, SecType, Subscribe
from shared.settings import Settings
from tests.gateway_adapter.conftest import FAST, AdapterHandle, StartAdapter, bodies
from tests.gateway_adapter.test_quotes import connected, send
from tests.helpers import wait_until

LEASE_TTL_S = FAST["gw_lease_ttl_ms"] / 1000.0
# The lease lapses (TTL), the standby polls every TTL/3, then connects and resubscribes
# (2 s budget, ample on a loaded machine): 1.5 + 0.5 + 2.0 = 4.0 s with the test TTL.
TAKEOVER_BOUND_S = LEASE_TTL_S + LEASE_TTL_S / 3 + 2.0


async def sample_exclusive(
    a: AdapterHandle, b: AdapterHandle, sim: Simulator, stop: asyncio.Event, seen: list[str]
) -> None:
    """Fail loudly if both adapters are ever connected at the same moment.

    The last sample is taken after ``stop``: on a loaded machine the sampler may not
    get a turn between the takeover and the stop, and the handover must still show.
    """
    while True:
        assert not (a.connected and b.connected), "two adapters connected at once"
        assert len(sim.status()["clients"]) <= 1  # type: ignore[arg-type]
        seen.append("a" if a.connected else "b" if b.connected else "-")
        if stop.is_set():
            return
        await asyncio.sleep(0.005)


async def test_start_when_two_adapters_one_active_other_standby_then_takes_over_after_crash(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    a = await start_adapter(sim, instance="a")
    await wait_until(lambda: a.connected, timeout=5, what="a connected")
    b = await start_adapter(sim, instance="b")
    await wait_until(lambda: b.ctx.state == "standby", timeout=2, what="b standby")
    await wait_until(  # the heartbeat loop writes it on its next beat (0.3 s)
        lambda: redis.exists("svc:gateway_adapter:standby:b"), timeout=2, what="b advertised"
    )
    await send(
        redis,
        settings,
        Subscribe(
            contracts=[ContractRef(symbol="SPY"), ContractRef(symbol="VIX", sec_type=SecType.IND)]
        ),
    )
    await wait_until(lambda: len(a.adapter.subs.open) == 2, timeout=5, what="a subscribed")
    assert not b.connected and b.adapter.conn.connects == 0

    stop, seen = asyncio.Event(), []
    sampler = asyncio.create_task(sample_exclusive(a, b, sim, stop, seen))
    await asyncio.sleep(0.2)
    killed = time.monotonic()
    await a.kill()
    await wait_until(
        lambda: b.connected and len(b.adapter.subs.open) == 2,
        timeout=TAKEOVER_BOUND_S,
        what="b active with both lines",
    )
    took = time.monotonic() - killed
    stop.set()
    await sampler
    await redis.delete("md:last:SPY")
    await wait_until(lambda: redis.exists("md:last:SPY"), timeout=2, what="SPY quotes from b")

    key = lease_key(b.settings.ib_host, b.settings.ib_port, b.settings.ib_client_id)
    assert (await redis.get(key)).decode().startswith("b/")
    assert "a" in seen and "b" in seen
    errors = await bodies(redis, "gw:status", IbError)
    assert not [e for e in errors if e.code == 326]
    states = [s for s in await bodies(redis, "gw:status", GatewayStatus) if s.instance == "b"]
    assert [s.state for s in states][:1] == [ConnState.STANDBY] and states[
        -1
    ].state is ConnState.CONNECTED
    print(f"takeover after crash: {took:.2f}s (bound {TAKEOVER_BOUND_S}s)")


# A lease a clean stop must release: far longer than the takeover bound, so a standby
# that took over within the bound cannot have waited for it to expire.
LONG_TTL_MS = 30_000
RELEASE_TAKEOVER_BOUND_S = 5.0  # b polls every TTL/3 = 0.5 s, then connects; ample under load


async def test_stop_when_active_stops_cleanly_releases_lease_and_standby_takes_over_fast(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis
) -> None:
    a = await start_adapter(sim, instance="a", gw_lease_ttl_ms=LONG_TTL_MS)
    await wait_until(lambda: a.connected, timeout=5)
    key = a.adapter.lease.key
    assert await redis.pttl(key) > RELEASE_TAKEOVER_BOUND_S * 1000 * 2  # renewed every 10 s
    b = await start_adapter(sim, instance="b")
    await wait_until(lambda: b.ctx.state == "standby", timeout=2)
    started = time.monotonic()
    await a.stop()
    holder = await redis.get(key)
    assert holder is None or holder.decode().startswith("b/"), f"lease kept by {holder!r}"
    await wait_until(
        lambda: b.connected, timeout=RELEASE_TAKEOVER_BOUND_S, what="b connected after clean stop"
    )
    assert (await redis.get(key)).decode().startswith("b/")
    print(f"takeover after clean stop: {time.monotonic() - started:.2f}s")


async def test_renew_when_lease_taken_by_other_active_disconnects_at_once(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis
) -> None:
    a = await start_adapter(sim, instance="a")
    await wait_until(lambda: a.connected, timeout=5)
    await redis.set(a.adapter.lease.key, "intruder/1", px=5000)  # someone else owns it now
    await wait_until(lambda: not a.connected, timeout=1.5, what="a disconnected")
    await wait_until(lambda: a.ctx.state == "standby", timeout=1)
    await wait_until(lambda: connected(redis), timeout=1)
