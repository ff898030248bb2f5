"""OPTBOT_CLOCK=sim: a service run by the real runner follows sys:clock and acks each tick.

Real Redis; the test plays the backtest driver: it XADDs ticks and pops the acks.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from shared import clock
from shared.bus import Publisher
from shared.clock import HostClock
from shared.contract import SYS_CLOCK, clock_ack_key
from shared.envelope import Message, encode
from shared.runner import ServiceContext, ServiceMain, run_service
from shared.schemas import ClockAck, ClockTick, OrderCancel
from shared.settings import Settings

NAME = "strategy"  # a service on the clock (its ack list is declared in the contract)
OPEN = 1_772_634_600.0  # 2026-03-04 09:30 New York
NIGHT = 63_000.0  # 16:00 -> 09:30 next day


class Driver:
    """The backtest driver's side: publish ticks, pop acks."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self.seq = 0

    async def tick(self, t: float) -> int:
        self.seq += 1
        await self.redis.xadd(SYS_CLOCK, encode(ClockTick(t=t, seq=self.seq), src="backtest"))
        return self.seq

    async def ack(self, timeout: float = 10.0) -> ClockAck:
        popped = await self.redis.blpop([clock_ack_key(NAME)], timeout=timeout)
        assert popped is not None, "no ack"
        return msgspec.json.decode(popped[1], type=ClockAck)

    async def step(self, t: float) -> ClockAck:
        seq = await self.tick(t)
        ack = await self.ack()
        assert ack.seq == seq
        return ack


@pytest.fixture
def sim_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"clock": "sim"})


async def _run(main: ServiceMain, settings: Settings, stop: asyncio.Event) -> asyncio.Task[int]:
    return asyncio.create_task(run_service(NAME, main, settings, stop=stop))


async def _stop(task: asyncio.Task[int], stop: asyncio.Event) -> None:
    stop.set()
    assert await asyncio.wait_for(task, 15) == 0
    assert isinstance(clock.current(), HostClock), "the runner puts the host clock back"


async def test_sim_service_when_ticks_arrive_runs_sleepers_at_sim_times_and_acks_in_order(
    sim_settings: Settings, redis: aioredis.Redis
) -> None:
    runs: list[float] = []

    async def every_ten_seconds(stop: asyncio.Event) -> None:
        while not await clock.current().sleep_or_stop(stop, 10):
            runs.append(clock.current().time())

    async def main(ctx: ServiceContext) -> None:
        assert isinstance(clock.current(), clock.SimClock)
        assert clock.current().time() == OPEN  # started at the first tick
        ctx.spawn(every_ten_seconds(ctx.stop), "every-10s")

    driver = Driver(redis)
    await driver.tick(OPEN)  # published before the service starts: still answered
    stop = asyncio.Event()
    task = await _run(main, sim_settings, stop)
    first = await driver.ack()
    assert (first.seq, first.t, first.next_deadline) == (1, OPEN, OPEN + 10)

    ack = await driver.step(OPEN + 5)
    assert (ack.t, ack.next_deadline, runs) == (OPEN + 5, OPEN + 10, [])
    ack = await driver.step(OPEN + 10)
    assert (ack.next_deadline, runs) == (OPEN + 20, [OPEN + 10])
    # the same time again (the driver's quiescence round): nothing more runs
    ack = await driver.step(OPEN + 10)
    assert (ack.seq, ack.next_deadline, runs) == (4, OPEN + 20, [OPEN + 10])
    # overnight: one run at the new time, then the next deadline 10 s after it
    morning = OPEN + 10 + NIGHT
    ack = await driver.step(morning)
    assert runs == [OPEN + 10, morning]
    assert ack.next_deadline == morning + 10
    await _stop(task, stop)


async def test_sim_service_when_a_handler_is_busy_across_a_tick_acks_after_it(
    sim_settings: Settings, redis: aioredis.Redis
) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    handled: list[str] = []

    async def slow(msg: Message[Any]) -> None:
        started.set()
        await release.wait()  # e.g. Redis round trips of a long handler
        handled.append(msg.key)

    async def main(ctx: ServiceContext) -> None:
        ctx.consume("orders:requests", slow, start_id="0")

    driver = Driver(redis)
    await driver.tick(OPEN)
    stop = asyncio.Event()
    task = await _run(main, sim_settings, stop)
    await driver.ack()

    pub = Publisher(redis, sim_settings, src="t")
    pub.add("orders:requests", OrderCancel(client_order_id="x"), key="x")
    await pub.flush()
    await asyncio.wait_for(started.wait(), 10)
    seq = await driver.tick(OPEN + 5)
    assert await redis.blpop([clock_ack_key(NAME)], timeout=0.5) is None, "acked while busy"
    release.set()
    ack = await driver.ack()
    assert ack.seq == seq
    assert handled == ["x"], "the ack came after the batch was handled"
    await _stop(task, stop)


async def test_sim_service_when_a_sync_hook_is_registered_awaits_it_before_acking(
    sim_settings: Settings, redis: aioredis.Redis
) -> None:
    """The adapter's hook (a TWS round trip) runs on every tick, before the ack."""
    hooked: list[float] = []
    gate = asyncio.Event()

    async def hook(t: float) -> None:
        await gate.wait()
        hooked.append(t)

    async def main(ctx: ServiceContext) -> None:
        ctx.on_clock_tick = hook

    driver = Driver(redis)
    await driver.tick(OPEN)
    stop = asyncio.Event()
    task = await _run(main, sim_settings, stop)
    assert await redis.blpop([clock_ack_key(NAME)], timeout=0.3) is None
    gate.set()
    await driver.ack()
    await driver.step(OPEN + 5)
    assert hooked == [OPEN, OPEN + 5]
    await _stop(task, stop)
