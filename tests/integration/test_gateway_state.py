"""Every follower of ``gw:status`` knows the gateway's state, whatever the start order.

The strategy used to read the adapter's heartbeat (which mirrors a transition only
at the adapter's next beat) and only then create its ``gw:status`` group at ``$``:
a CONNECTED published in between was never seen, and it refused every trade until
the next transition. Here the real adapter (against the real simulator) and the
real strategy and market_data services run over a real Redis in each start order.
The adapter beats every 5 s, so its heartbeat is stale for seconds after it
connects, as it is for up to 2 s with the default interval.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.gateway_adapter.main import main as gateway_main
from services.market_data.main import MarketDataService
from services.strategy.main import StrategyService
from services.tws_simulator import SimConfig, Simulator
from shared.contract import GW_STATUS
from shared.envelope import decode
from shared.redis_server import RedisHandle
from shared.runner import ServiceContext, run_service
from shared.schemas import ConnState, GatewayStatus
from shared.settings import Settings, load_settings
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(90)

KNOWN_WITHIN_S = 1.0
COMMON: dict[str, Any] = {
    "consume_block_ms": 100,
    "claim_idle_ms": 500,
    "log_level": "WARNING",
    "ib_connect_timeout_s": 2.0,
    "ib_reconnect_min_s": 0.1,
    "ib_reconnect_max_s": 0.5,
    "gw_lease_ttl_ms": 1500,
    "md_watchlist": "SPY,QQQ,VIX,AAPL",
}


@dataclass
class Running:
    """One service run by the real runner, with its service object exposed."""

    name: str
    stop: asyncio.Event
    task: asyncio.Task[int]
    objects: list[Any] = field(default_factory=list)
    started_at: float = 0.0  # monotonic, when ``start()`` returned

    async def close(self) -> None:
        self.stop.set()
        assert await asyncio.wait_for(self.task, 20) == 0


def follower_view(svc: Any) -> ConnState | None:
    """What a follower believes the gateway's state is."""
    if isinstance(svc, StrategyService):
        status = svc.books.market.gateway
        return status.state if status is not None else None
    assert isinstance(svc, MarketDataService)
    return svc.gateway


@dataclass
class System:
    settings: Settings
    adapter_settings: Settings
    running: list[Running] = field(default_factory=list)

    def start(self, name: str, instance: str = "") -> Running:
        stop = asyncio.Event()
        holder = Running(name, stop, asyncio.create_task(asyncio.sleep(0)))
        if name == "gateway_adapter":
            settings = self.adapter_settings.model_copy(update={"instance": instance or "gw-a"})
            holder.task = asyncio.create_task(run_service(name, gateway_main, settings, stop=stop))
        else:
            cls: Callable[[ServiceContext], Any] = (
                StrategyService if name == "strategy" else MarketDataService
            )

            async def main(ctx: ServiceContext) -> None:
                svc = cls(ctx)
                holder.objects.append(svc)
                await svc.start()
                holder.started_at = time.monotonic()

            holder.task = asyncio.create_task(run_service(name, main, self.settings, stop=stop))
        self.running.append(holder)
        return holder

    def followers(self) -> list[Running]:
        return [r for r in self.running if r.name != "gateway_adapter" and not r.stop.is_set()]


@pytest.fixture
async def system(redis_server: RedisHandle, redis: aioredis.Redis) -> AsyncIterator[System]:
    sim = Simulator(SimConfig(port=0, tick_interval=0.05, regime_period=0))
    await sim.start()
    base = {**COMMON, "redis_url": redis_server.url, "ib_port": sim.port}
    system = System(
        load_settings(**base, heartbeat_interval_s=0.2),
        load_settings(**base, heartbeat_interval_s=5.0),
    )
    try:
        yield system
    finally:
        for r in system.running:
            r.stop.set()
        await asyncio.wait_for(asyncio.gather(*(r.task for r in system.running)), 30)
        await sim.stop()


async def adapter_state(redis: aioredis.Redis) -> tuple[ConnState, float] | None:
    """The newest non-standby state the adapter published, and when this test saw it."""
    rows: Any = await redis.xrevrange(GW_STATUS, count=200)
    for _id, fields in rows:
        if fields.get(b"type") != b"status":
            continue
        body = decode(fields).body
        assert isinstance(body, GatewayStatus)
        if body.state is not ConnState.STANDBY:
            return body.state, time.monotonic()
    return None


async def adapter_reaches(redis: aioredis.Redis, state: ConnState) -> float:
    """Monotonic time at which ``state`` was seen as the adapter's newest."""

    async def seen() -> float | None:
        now = await adapter_state(redis)
        return now[1] if now is not None and now[0] is state else None

    return await wait_until(seen, timeout=20, interval=0.01, what=f"adapter {state.value}")


async def followers_know(system: System, state: ConnState, since: float) -> None:
    """Each running follower holds ``state`` within a second of ``since`` (or of its own
    start, when it started later); it is waited for a few seconds to show how late."""
    for r in system.followers():
        await wait_until(lambda r=r: r.objects and r.started_at, timeout=20, what=f"{r.name} up")
        svc = r.objects[0]
        reached = await wait_until(
            lambda svc=svc: follower_view(svc) is state and time.monotonic(),
            timeout=4,
            interval=0.01,
            what=f"{r.name} to know the gateway is {state.value}",
        )
        late = reached - max(since, r.started_at)
        assert late <= KNOWN_WITHIN_S, f"{r.name} knew {state.value} {late:.2f}s late"


async def test_followers_when_started_after_adapter_connected_know_it_at_once(
    system: System, redis: aioredis.Redis
) -> None:
    system.start("gateway_adapter")
    at = await adapter_reaches(redis, ConnState.CONNECTED)
    system.start("strategy")
    system.start("market_data")
    await followers_know(system, ConnState.CONNECTED, at)
    # a standby adapter announces itself: it says nothing about the active connection
    system.start("gateway_adapter", instance="gw-b")

    async def standby_said_so() -> bool:
        rows: Any = await redis.xrevrange(GW_STATUS, count=50)
        bodies = [decode(f).body for _, f in rows if f.get(b"type") == b"status"]
        return any(b.state is ConnState.STANDBY and b.instance == "gw-b" for b in bodies)

    await wait_until(standby_said_so, timeout=10, what="the standby's STANDBY status")
    await followers_know(system, ConnState.CONNECTED, time.monotonic())


async def test_followers_when_started_before_adapter_learn_connected_within_a_second(
    system: System, redis: aioredis.Redis
) -> None:
    system.start("strategy")
    system.start("market_data")
    for r in system.followers():
        await wait_until(lambda r=r: r.started_at, timeout=20, what=f"{r.name} up")
    system.start("gateway_adapter")
    at = await adapter_reaches(redis, ConnState.CONNECTED)
    await followers_know(system, ConnState.CONNECTED, at)


async def test_followers_when_started_with_adapter_learn_connected_within_a_second(
    system: System, redis: aioredis.Redis
) -> None:
    for name in ("gateway_adapter", "strategy", "market_data"):
        system.start(name)
    at = await adapter_reaches(redis, ConnState.CONNECTED)
    await followers_know(system, ConnState.CONNECTED, at)


async def test_followers_when_restarted_while_adapter_connected_know_it_at_once(
    system: System, redis: aioredis.Redis
) -> None:
    system.start("gateway_adapter")
    at = await adapter_reaches(redis, ConnState.CONNECTED)
    first = [system.start("strategy"), system.start("market_data")]
    await followers_know(system, ConnState.CONNECTED, at)
    for r in first:
        await r.close()
    # their groups stay, positioned after the CONNECTED they already consumed
    system.start("strategy")
    system.start("market_data")
    await followers_know(system, ConnState.CONNECTED, time.monotonic())


async def test_followers_when_adapter_restarts_see_it_go_and_come_back(
    system: System, redis: aioredis.Redis
) -> None:
    adapter = system.start("gateway_adapter")
    system.start("strategy")
    system.start("market_data")
    at = await adapter_reaches(redis, ConnState.CONNECTED)
    await followers_know(system, ConnState.CONNECTED, at)
    await adapter.close()
    gone = await adapter_reaches(redis, ConnState.DISCONNECTED)
    await followers_know(system, ConnState.DISCONNECTED, gone)
    system.start("gateway_adapter")
    back = await adapter_reaches(redis, ConnState.CONNECTED)
    await followers_know(system, ConnState.CONNECTED, back)
