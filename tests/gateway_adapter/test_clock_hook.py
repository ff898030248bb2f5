"""The adapter's sys:clock hook (OPTBOT_CLOCK=sim): a reqCurrentTime round trip to TWS
sets its clock from the answer, then its quotes are written. Real simulator, real socket."""

from __future__ import annotations

import asyncio

from services.tws_simulator import Simulator
from shared import clock
from shared.clock import SimClock
from tests.gateway_adapter.conftest import MakeSim, StartAdapter
from tests.helpers import wait_until

START = 1_000_000_000.0  # 2001: long before anything the simulator can answer


async def test_clock_hook_when_connected_sets_the_clock_from_the_tws_answer(
    sim: Simulator, start_adapter: StartAdapter
) -> None:
    sim_clock = SimClock(START)
    with clock.using(sim_clock):
        handle = await start_adapter(sim, clock="sim")
        await wait_until(lambda: handle.connected, what="adapter connected")
        flushes = handle.adapter.quotes.flushes
        await handle.adapter.on_clock_tick(START)
        answer = sim_clock.time()
        assert answer > START, "the clock moved to the simulator's currentTime"
        assert answer.is_integer(), "TWS answers currentTime in whole seconds"
        assert handle.adapter.quotes.flushes > flushes, "the quotes were written before the ack"
        await handle.stop()


async def test_clock_hook_when_tws_is_not_connected_only_flushes(
    sim: Simulator, start_adapter: StartAdapter
) -> None:
    sim_clock = SimClock(START)
    with clock.using(sim_clock):
        handle = await start_adapter(sim, clock="sim", ib_port=1)  # nothing listens there
        await handle.adapter.on_clock_tick(START)
        assert sim_clock.time() == START
        await handle.stop()


async def test_clock_hook_when_many_steps_run_is_not_throttled_by_ib_async(
    make_sim: MakeSim, start_adapter: StartAdapter
) -> None:
    """A backtest makes ~2 currentTime round trips a step; ib_async's own throttle (45
    requests a second) would hold 60 of them for over a second. Live, it stays on."""
    sim = await make_sim(lockstep=True, start="2025-03-03", market_hours="regular")
    sim_clock = SimClock(START)
    with clock.using(sim_clock):
        handle = await start_adapter(sim, clock="sim")
        await wait_until(lambda: handle.connected, what="adapter connected")
        assert handle.adapter.conn.ib.client.MaxRequests == 0
        loop = asyncio.get_running_loop()
        began = loop.time()
        for _ in range(60):
            await handle.adapter.on_clock_tick(START)
        assert loop.time() - began < 1.0
        await handle.stop()
    live = await start_adapter(sim, ib_port=1)
    assert live.adapter.conn.ib.client.MaxRequests == 45
    await live.stop()
