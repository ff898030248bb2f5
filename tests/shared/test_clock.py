"""shared.clock: the host clock live, a SimClock that moves only when told to."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared import clock
from shared.clock import HostClock, SimClock

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> float:
    return datetime(*args, tzinfo=NY).timestamp()  # type: ignore[misc]


def trading_date(c: clock.Clock) -> str:
    """The NY calendar date of the clock's now, as trading logic computes it."""
    return c.now().astimezone(NY).date().isoformat()


# --- host clock ---------------------------------------------------------------------
async def test_host_clock_reads_the_host_time() -> None:
    host = HostClock()
    assert abs(host.time() - time.time()) < 1.0
    assert host.now().tzinfo is UTC
    assert abs(host.now().timestamp() - time.time()) < 1.0
    assert abs(host.monotonic() - time.monotonic()) < 1.0


async def test_host_clock_sleeps_and_times_out_on_asyncio() -> None:
    host = HostClock()
    started = time.monotonic()
    await host.sleep(0.02)
    assert time.monotonic() - started >= 0.015
    with pytest.raises(TimeoutError):
        await host.wait_for(asyncio.Event().wait(), 0.01)
    stop = asyncio.Event()
    assert await host.sleep_or_stop(stop, 0.01) is False
    stop.set()
    assert await host.sleep_or_stop(stop, 60) is True
    with host.busy():
        pass


def test_current_is_the_host_clock_unless_one_is_installed() -> None:
    assert isinstance(clock.current(), HostClock)
    sim = SimClock(1000.0)
    with clock.using(sim) as installed:
        assert installed is sim
        assert clock.current() is sim
    assert isinstance(clock.current(), HostClock)


# --- SimClock: moving and sleeping --------------------------------------------------
def test_sim_clock_moves_only_when_advanced_and_never_backwards() -> None:
    sim = SimClock(ny(2026, 3, 2, 9, 30))
    first = sim.time()
    assert sim.monotonic() == first
    assert sim.now() == datetime.fromtimestamp(first, UTC)
    assert sim.now().tzinfo is UTC
    sim.advance(first + 5)
    assert sim.time() == first + 5
    sim.advance(first + 1)
    assert sim.time() == first + 5


async def test_sleepers_wake_in_deadline_order_at_the_new_time() -> None:
    sim = SimClock(100.0)
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await sim.sleep(seconds)
        woke.append((name, sim.time()))

    tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("c", 3), ("a", 1), ("b", 2))]
    await sim.settled()
    assert sim.next_deadline() == 101.0
    assert sim.advance(100.5) == 0
    await sim.settled()
    assert woke == []
    assert sim.advance(105) == 3
    await sim.settled()
    assert woke == [("a", 105.0), ("b", 105.0), ("c", 105.0)]
    assert sim.next_deadline() is None
    await asyncio.gather(*tasks)


async def test_a_sleeper_added_after_advance_waits_for_the_next_one() -> None:
    sim = SimClock(0.0)
    rounds: list[float] = []

    async def loop() -> None:
        while True:
            await sim.sleep(10)
            rounds.append(sim.time())

    task = asyncio.create_task(loop())
    await sim.settled()
    sim.advance(10)
    await sim.settled()
    sim.advance(15)
    await sim.settled()
    assert rounds == [10.0]
    assert sim.next_deadline() == 20.0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_cancelled_sleeper_leaves_no_deadline() -> None:
    sim = SimClock(0.0)
    task = asyncio.create_task(sim.sleep(5))
    await sim.settled()
    assert sim.next_deadline() == 5.0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert sim.next_deadline() is None
    assert sim.advance(10) == 0


# --- wait_for -----------------------------------------------------------------------
async def test_wait_for_times_out_on_simulated_time_not_host_time() -> None:
    sim = SimClock(0.0)
    gate = asyncio.Event()
    waiter = asyncio.create_task(sim.wait_for(gate.wait(), 30))
    await sim.settled()
    assert not waiter.done()  # host time passes, simulated time does not
    assert sim.next_deadline() == 30.0
    sim.advance(29.9)
    await sim.settled()
    assert not waiter.done()
    sim.advance(30)
    with pytest.raises(TimeoutError):
        await waiter
    assert sim.next_deadline() is None


async def test_wait_for_returns_the_result_and_drops_its_deadline() -> None:
    sim = SimClock(0.0)
    future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    waiter = asyncio.create_task(sim.wait_for(future, 30))
    await sim.settled()
    future.set_result("filled")
    assert await waiter == "filled"
    assert sim.next_deadline() is None


async def test_wait_for_counts_the_task_parked_only_while_the_awaitable_is_pending() -> None:
    sim = SimClock(0.0)
    gate = asyncio.Event()
    release = asyncio.Event()
    after: list[str] = []

    async def reader() -> None:
        await sim.wait_for(gate.wait(), 60)
        await release.wait()  # work after the wait, not on the clock
        after.append("done")
        await sim.sleep(60)

    task = asyncio.create_task(reader())
    await sim.settled()  # parked in wait_for: settled
    gate.set()
    settling = asyncio.create_task(sim.settled())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not settling.done()  # gate done -> the task is running, not parked
    assert sim.running() == [task.get_name()]
    release.set()
    await asyncio.wait_for(settling, 5)
    assert after == ["done"]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_sleep_or_stop_wakes_on_stop_or_on_simulated_time() -> None:
    sim = SimClock(0.0)
    stop = asyncio.Event()
    timed = asyncio.create_task(sim.sleep_or_stop(stop, 5))
    await sim.settled()
    sim.advance(5)
    assert await timed is False
    stopped = asyncio.create_task(sim.sleep_or_stop(stop, 5))
    await sim.settled()
    stop.set()
    assert await stopped is True
    assert await sim.sleep_or_stop(stop, 5) is True


# --- settled --------------------------------------------------------------------------
async def test_settled_waits_for_a_woken_task_to_park_again() -> None:
    sim = SimClock(0.0)
    host_work = asyncio.Event()
    cycles: list[float] = []

    async def cycle() -> None:
        while True:
            await sim.sleep(1)
            await host_work.wait()  # e.g. a Redis round trip
            cycles.append(sim.time())

    task = asyncio.create_task(cycle())
    await sim.settled()
    sim.advance(1)
    settling = asyncio.create_task(sim.settled())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not settling.done()
    host_work.set()
    await asyncio.wait_for(settling, 5)
    assert cycles == [1.0]
    assert sim.next_deadline() == 2.0
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_settled_follows_a_chain_of_wake_ups() -> None:
    """A woken task sets an event that wakes a second task parked in wait_for."""
    sim = SimClock(0.0)
    signal = asyncio.Event()
    seen: list[str] = []

    async def producer() -> None:
        await sim.sleep(1)
        signal.set()
        await sim.sleep(100)

    async def consumer() -> None:
        await sim.wait_for(signal.wait(), 50)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        seen.append("consumed")
        await sim.sleep(100)

    tasks = [asyncio.create_task(producer()), asyncio.create_task(consumer())]
    await sim.settled()
    sim.advance(1)
    await sim.settled()
    assert seen == ["consumed"]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_settled_waits_for_an_open_busy_section() -> None:
    sim = SimClock(0.0)
    handled = asyncio.Event()

    async def handler() -> None:
        with sim.busy():
            await handled.wait()

    task = asyncio.create_task(handler())
    await asyncio.sleep(0)
    settling = asyncio.create_task(sim.settled())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not settling.done()
    handled.set()
    await asyncio.wait_for(settling, 5)
    await task


async def test_settled_counts_a_finished_task_as_settled() -> None:
    sim = SimClock(0.0)

    async def once() -> None:
        await sim.sleep(1)
        await asyncio.sleep(0)

    task = asyncio.create_task(once())
    await sim.settled()
    sim.advance(1)
    await asyncio.wait_for(sim.settled(), 5)
    assert task.done()


# --- overnight ------------------------------------------------------------------------
async def test_a_one_second_loop_across_the_night_runs_once_at_the_open() -> None:
    close = ny(2026, 3, 2, 16, 0)
    next_open = ny(2026, 3, 3, 9, 30)
    sim = SimClock(close)
    runs: list[float] = []

    async def every_second() -> None:
        while True:
            await sim.sleep(1)
            runs.append(sim.time())

    task = asyncio.create_task(every_second())
    await sim.settled()
    sim.advance(next_open)  # 63,000 s in one step
    await sim.settled()
    assert runs == [next_open]
    assert sim.next_deadline() == next_open + 1
    sim.advance(next_open + 1)
    await sim.settled()
    assert runs == [next_open, next_open + 1]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_a_timer_across_the_night_fires_at_the_open() -> None:
    close = ny(2026, 3, 2, 16, 0)
    sim = SimClock(close)
    stop = asyncio.Event()
    waiter = asyncio.create_task(sim.wait_for(stop.wait(), 300))  # a 5-minute staleness timer
    await sim.settled()
    sim.advance(ny(2026, 3, 3, 9, 30))
    with pytest.raises(TimeoutError):
        await waiter


# --- day boundaries -------------------------------------------------------------------
def test_trading_date_is_new_york_not_utc_across_midnight_utc() -> None:
    # 19:30 NY on March 2 is 00:30 UTC on March 3 (EST, UTC-5)
    sim = SimClock(ny(2026, 3, 2, 19, 30))
    assert sim.now().date().isoformat() == "2026-03-03"
    assert trading_date(sim) == "2026-03-02"
    sim.advance(ny(2026, 3, 2, 23, 59, 59))
    assert trading_date(sim) == "2026-03-02"
    sim.advance(ny(2026, 3, 3, 0, 0))
    assert trading_date(sim) == "2026-03-03"


def test_trading_date_follows_daylight_saving() -> None:
    # DST began 2026-03-08 02:00 NY: the open moves from 14:30 UTC to 13:30 UTC
    sim = SimClock(ny(2026, 3, 6, 9, 30))
    assert sim.now().hour == 14
    sim.advance(ny(2026, 3, 9, 9, 30))
    assert sim.now().hour == 13
    assert trading_date(sim) == "2026-03-09"
    # 20:00 NY in summer (EDT, UTC-4) is already the next day in UTC
    sim.advance(ny(2026, 3, 9, 20, 0))
    assert sim.now().date().isoformat() == "2026-03-10"
    assert trading_date(sim) == "2026-03-09"
