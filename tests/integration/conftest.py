"""The system in one event loop: simulator, and services run by the real service runner."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from optbot.registry import by_name
from services.tws_simulator import SimConfig, Simulator
from shared.redis_server import RedisHandle
from shared.runner import run_service
from shared.settings import Settings, load_settings

FAST = {
    "consume_block_ms": 100,
    "claim_idle_ms": 500,
    "heartbeat_interval_s": 0.3,
    "ib_connect_timeout_s": 2.0,
    "ib_reconnect_min_s": 0.1,
    "ib_reconnect_max_s": 0.5,
    "gw_lease_ttl_ms": 1500,
}


@dataclasses.dataclass
class System:
    sim: Simulator
    settings: Settings
    stops: list[asyncio.Event]
    tasks: list[asyncio.Task[int]]


StartSystem = Callable[..., Awaitable[System]]


@pytest.fixture
async def start_system(redis_server: RedisHandle) -> AsyncIterator[StartSystem]:
    systems: list[System] = []

    async def factory(
        services: list[str], sim: dict[str, Any] | None = None, **overrides: Any
    ) -> System:
        simulator = Simulator(SimConfig(port=0, **(sim or {})))
        await simulator.start()
        settings = load_settings(
            **{**FAST, "redis_url": redis_server.url, "ib_port": simulator.port, **overrides}
        )
        system = System(simulator, settings, [], [])
        systems.append(system)
        for name in services:
            spec = by_name(name)
            assert spec is not None
            stop = asyncio.Event()
            system.stops.append(stop)
            system.tasks.append(
                asyncio.create_task(run_service(name, spec.load(), settings, stop=stop))
            )
        return system

    yield factory
    for system in systems:
        for stop in system.stops:
            stop.set()
        codes = await asyncio.wait_for(asyncio.gather(*system.tasks, return_exceptions=True), 30)
        await system.sim.stop()
        assert all(c == 0 for c in codes), codes
