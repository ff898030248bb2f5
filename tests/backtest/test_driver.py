"""The lockstep driver against a real simulator (in lockstep) and stand-in followers.

The followers here do what shared/clock_sync.py does for a service (read each tick,
ack it on the service's list), so the driver's own rules are tested alone: one tick
per quiet step, another round while something was published, a clear error when a
service does not ack or the bus never goes quiet, and a clean stop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis.asyncio as aioredis

from optbot.backtest.clockwire import SYS_CLOCK, ack_key
from optbot.backtest.control import SimControl
from optbot.backtest.driver import Lockstep, LockstepError
from optbot.backtest.options import plan
from services.tws_simulator import SimConfig, Simulator
from shared.contract import GW_STATUS, MD_SIGNALS
from shared.envelope import decode, encode
from shared.schemas import Alert, AlertSeverity, ClockAck, ClockTick, ConnState, GatewayStatus

DAY = "2025-03-03"
FOLLOWERS = ("gateway_adapter", "market_data", "strategy")

OnTick = Callable[[str, ClockTick], Any]


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = Simulator(
        SimConfig(port=0, control_port=0, lockstep=True, start=DAY, market_hours="regular",
                  tick_interval=0, lockstep_step_seconds=5.0)
    )  # fmt: skip
    await s.start()
    yield s
    await s.stop()


async def follow(
    redis: aioredis.Redis, name: str, stop: asyncio.Event, on_tick: OnTick | None = None
) -> None:
    """A stand-in service: ack every tick (after ``on_tick``), like ClockFollower."""
    cursor = "0-0"
    while not stop.is_set():
        reply: Any = await redis.xread({SYS_CLOCK: cursor}, block=100)
        for _stream, entries in reply or []:
            for entry_id, fields in entries:
                cursor = entry_id.decode()
                tick = decode(fields).body
                assert isinstance(tick, ClockTick)
                if on_tick is not None:
                    await on_tick(name, tick)
                ack = ClockAck(seq=tick.seq, t=tick.t)
                await redis.rpush(ack_key(name), msgspec.json.encode(ack))


@contextlib.asynccontextmanager
async def followers(
    redis: aioredis.Redis, names: tuple[str, ...] = FOLLOWERS, on_tick: OnTick | None = None
) -> AsyncIterator[None]:
    up = GatewayStatus(state=ConnState.CONNECTED)
    await redis.xadd(GW_STATUS, encode(up, "gateway_adapter/test"))  # type: ignore[arg-type]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(follow(redis, n, stop, on_tick)) for n in names]
    try:
        yield
    finally:
        stop.set()
        await asyncio.gather(*tasks)


async def _driver(redis: aioredis.Redis, sim: Simulator, **kw: Any) -> Lockstep:
    assert sim.control_port is not None
    control = SimControl("127.0.0.1", sim.control_port)
    await control.connect(5.0)
    return Lockstep(redis, control, FOLLOWERS, stop=kw.pop("stop", asyncio.Event()), **kw)


async def test_a_quiet_minute_is_two_ticks_per_step(
    redis: aioredis.Redis, sim: Simulator, tmp_path: Path
) -> None:
    checked = plan(days=1, out=tmp_path, start=DAY, minutes=1)
    lock = await _driver(redis, sim)
    async with followers(redis):
        assert await lock.run(checked) is True
    first = checked.sessions[0]
    assert lock.pos.t == first.open + 60 and sim.now() == first.open + 60
    assert lock.pos.steps == 12 and lock.pos.sim_seconds == 60
    ticks: Any = await redis.xrange(SYS_CLOCK)
    times = [decode(f).body.t for _, f in ticks]
    # each step: the clocks move (time), then the simulator's data is consumed (data)
    assert times[-24:] == [first.open + 5 * (i // 2) for i in range(2, 26)]


async def test_a_step_that_publishes_gets_another_round(
    redis: aioredis.Redis, sim: Simulator, tmp_path: Path
) -> None:
    """Whatever a tick made a service publish may wake another: tick the same t again."""
    seen: set[float] = set()

    async def publish_once_per_t(name: str, tick: ClockTick) -> None:
        if name == "strategy" and tick.t not in seen:
            seen.add(tick.t)
            alert = Alert(code="t", severity=AlertSeverity.INFO, message="m")
            await redis.xadd(MD_SIGNALS, encode(alert, "strategy/test"))  # type: ignore[arg-type]

    lock = await _driver(redis, sim)
    async with followers(redis, on_tick=publish_once_per_t):
        await lock.start(sim.now())
        rounds = await lock.settle(sim.now() + 0)  # t seen at start: already quiet
        assert rounds == 1
        now, _ = await lock.control.advance(sim.now() + 5)
        assert await lock.settle(now) == 2


async def test_a_service_that_does_not_ack_is_named(redis: aioredis.Redis, sim: Simulator) -> None:
    lock = await _driver(redis, sim, ack_timeout_s=1.0)
    async with followers(redis, names=("gateway_adapter", "strategy")):
        with pytest.raises(LockstepError, match="no clock ack from market_data"):
            await lock.settle(sim.now())


async def test_a_bus_that_never_goes_quiet_is_an_error(
    redis: aioredis.Redis, sim: Simulator
) -> None:
    async def always(name: str, tick: ClockTick) -> None:
        if name == "market_data":
            alert = Alert(code="t", severity=AlertSeverity.INFO, message=str(tick.seq))
            await redis.xadd(MD_SIGNALS, encode(alert, "md/test"))  # type: ignore[arg-type]

    lock = await _driver(redis, sim, max_rounds=4)
    async with followers(redis, on_tick=always):
        with pytest.raises(LockstepError, match=r"did not go quiet .* after 4 ticks"):
            await lock.settle(sim.now())


async def test_a_dead_service_stops_the_run(redis: aioredis.Redis, sim: Simulator) -> None:
    lock = await _driver(redis, sim, alive=lambda: "strategy exited with code 1")
    with pytest.raises(LockstepError, match="strategy exited with code 1"):
        await lock.settle(sim.now())


async def test_stop_ends_the_run_between_steps(
    redis: aioredis.Redis, sim: Simulator, tmp_path: Path
) -> None:
    stop = asyncio.Event()
    lock = await _driver(redis, sim, stop=stop)

    def on_step(pos: Any) -> None:
        if pos.steps == 3:
            stop.set()

    async with followers(redis):
        done = await lock.run(plan(days=1, out=tmp_path, start=DAY, minutes=5), on_step)
    assert done is False and lock.pos.steps == 3
