"""Service runner: heartbeat with TTL, graceful stop that finishes and acks in-flight work."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.bus import Publisher
from shared.envelope import Message
from shared.runner import ServiceContext, run_service
from shared.schemas import OrderCancel
from shared.settings import Settings
from tests.helpers import wait_until


async def test_run_service_when_running_publishes_heartbeat_with_ttl(
    settings: Settings, redis: aioredis.Redis
) -> None:
    stop = asyncio.Event()

    async def main(ctx: ServiceContext) -> None:
        ctx.extra["role"] = "test"

    fast = settings.model_copy(update={"heartbeat_interval_s": 0.1, "heartbeat_ttl_s": 2.0})
    task = asyncio.create_task(run_service("unit", main, fast, stop=stop))
    info = await wait_until(lambda: redis.hgetall("svc:unit"), what="heartbeat")
    for field in (b"pid", b"version", b"started", b"last_loop", b"lag", b"heartbeat"):
        assert field in info
    assert info[b"role"] == b"test" and info[b"state"] == b"running"
    assert 0 < await redis.pttl("svc:unit") <= 2000
    stop.set()
    assert await asyncio.wait_for(task, 10) == 0
    assert not await redis.exists("svc:unit"), "a clean stop removes the heartbeat"


async def test_stop_when_handler_in_flight_finishes_and_acks_it(
    settings: Settings, redis: aioredis.Redis
) -> None:
    stop = asyncio.Event()
    started = asyncio.Event()
    finished: list[str] = []

    async def slow(msg: Message[Any]) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(msg.key)

    async def main(ctx: ServiceContext) -> None:
        ctx.consume("orders:requests", slow, start_id="0")

    pub = Publisher(redis, settings, src="t")
    pub.add("orders:requests", OrderCancel(client_order_id="x"), key="x")
    await pub.flush()
    task = asyncio.create_task(run_service("unit", main, settings, stop=stop))
    await asyncio.wait_for(started.wait(), 10)
    stop.set()  # as SIGTERM does
    assert await asyncio.wait_for(task, 10) == 0
    assert finished == ["x"]
    assert int((await redis.xpending("orders:requests", "unit"))["pending"]) == 0


async def test_run_service_when_main_raises_returns_1(
    settings: Settings, redis: aioredis.Redis
) -> None:
    async def broken(ctx: ServiceContext) -> None:
        raise RuntimeError("boom")

    assert await asyncio.wait_for(run_service("unit", broken, settings), 10) == 1


async def test_run_service_when_redis_unreachable_waits_reports_and_stops_cleanly(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    stop = asyncio.Event()
    ran: list[bool] = []
    logged: list[str] = []

    async def main(ctx: ServiceContext) -> None:
        ran.append(True)

    def retries_reported() -> bool:
        logged.append(capsys.readouterr().err)
        return "".join(logged).count('"redis_unavailable"') >= 3

    dead = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    task = asyncio.create_task(run_service("unit", main, dead, stop=stop))
    await wait_until(retries_reported, timeout=15, what="three reported retries")
    assert not task.done(), "a missing Redis must not crash the service"
    stop.set()
    assert await asyncio.wait_for(task, 10) == 0
    assert ran == []
