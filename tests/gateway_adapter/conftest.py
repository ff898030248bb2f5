"""Fixtures: an in-process TWS simulator on port 0 and adapters wired to the test Redis.

``AdapterHandle`` builds the ServiceContext itself (instead of ``run_service``) so a
test can stop an adapter cleanly (lease released) or kill it (task cancelled,
socket dropped, lease left to expire), as a crashed process would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.gateway_adapter.main import GatewayAdapter
from services.tws_simulator import SimConfig, Simulator
from shared.bus import Publisher, connect_redis
from shared.contract import service_key
from shared.envelope import decode
from shared.redis_server import RedisHandle
from shared.runner import ServiceContext, heartbeat_loop
from shared.settings import Settings, load_settings

FAST_SIM = SimConfig(port=0, tick_interval=0.05, regime_period=0)

FAST = {
    "consume_block_ms": 100,
    "claim_idle_ms": 300,
    "publish_linger_ms": 2,
    "heartbeat_interval_s": 0.3,
    "ib_connect_timeout_s": 2.0,
    "ib_request_timeout_s": 5.0,
    "ib_reconnect_min_s": 0.1,
    "ib_reconnect_max_s": 0.5,
    "gw_lease_ttl_ms": 1500,
}


class AdapterHandle:
    """A running adapter plus its own Redis client, publisher and tasks."""

    def __init__(self, settings: Settings, instance: str) -> None:
        self.settings = settings
        self.redis = connect_redis(settings.redis_url)
        stop = asyncio.Event()
        self.ctx = ServiceContext(
            name="gateway_adapter",
            instance=instance,
            settings=settings,
            redis=self.redis,
            publisher=Publisher(self.redis, settings, src=f"gateway_adapter/{instance}"),
            stop=stop,
        )
        self.adapter = GatewayAdapter(self.ctx)
        self.tasks = [
            asyncio.create_task(self.ctx.publisher.run(stop)),
            asyncio.create_task(heartbeat_loop(self.ctx, service_key("gateway_adapter"))),
            asyncio.create_task(self.adapter.run()),
        ]

    @property
    def connected(self) -> bool:
        return self.adapter.conn.connected

    async def stop(self) -> None:
        """Clean stop: lease released, publisher flushed."""
        self.ctx.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 10)
        await self.redis.aclose()

    async def kill(self) -> None:
        """Crash: cancel everything, nothing released (the socket drops like the OS would)."""
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.redis.aclose()


StartAdapter = Callable[..., Awaitable[AdapterHandle]]
MakeSim = Callable[..., Awaitable[Simulator]]


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    started: list[Simulator] = []

    async def factory(**overrides: Any) -> Simulator:
        sim = Simulator(dataclasses.replace(FAST_SIM, **overrides))
        await sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        await sim.stop()


@pytest.fixture
async def sim(make_sim: MakeSim) -> Simulator:
    return await make_sim()


@pytest.fixture
async def start_adapter(
    redis_server: RedisHandle, redis: aioredis.Redis
) -> AsyncIterator[StartAdapter]:
    handles: list[AdapterHandle] = []

    async def factory(sim: Simulator, instance: str = "a1", **overrides: Any) -> AdapterHandle:
        values = {**FAST, "redis_url": redis_server.url, "ib_port": sim.port, **overrides}
        handle = AdapterHandle(load_settings(**values), instance)
        handles.append(handle)
        return handle

    yield factory
    for h in handles:
        if not all(t.done() for t in h.tasks):
            with contextlib.suppress(Exception):
                await h.stop()


async def entries(redis: aioredis.Redis, stream: str) -> list[Any]:
    """Every entry of ``stream``, decoded."""
    rows = await redis.xrange(stream)
    return [decode(fields, entry_id.decode()) for entry_id, fields in rows]


async def bodies(redis: aioredis.Redis, stream: str, cls: type) -> list[Any]:
    return [m.body for m in await entries(redis, stream) if isinstance(m.body, cls)]
