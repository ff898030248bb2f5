"""The strategy on a SimClock: quote age, the trading day, holding time and the time of
its decisions are simulated time; host time passing changes none of them."""

from __future__ import annotations

import asyncio
import datetime as dt

import redis.asyncio as aioredis

from services.strategy.cycle import clock_time
from shared import clock
from shared.clock import SimClock
from shared.schemas import Action, Candidate, DecisionOutcome, OrderNew
from shared.settings import Settings
from tests.helpers import wait_until
from tests.strategy.desk_rig import CALL, DAY1, cand, hold_long, make_rig


async def test_strategy_when_on_a_sim_clock_ages_quotes_rolls_days_and_exits_on_sim_time(
    redis: aioredis.Redis, settings: Settings
) -> None:
    sim = SimClock(DAY1)
    max_age = settings.risk_max_quote_age_s
    with clock.using(sim):
        rig = await make_rig(redis, settings)
        rig.cycles.wall_clock = clock_time  # as the service runs: the trading clock
        await hold_long(rig, 1.80)
        market = rig.books.market
        assert market.fresh(CALL.key, max_age) is not None
        sim.advance(DAY1 + max_age + 0.5)
        assert market.fresh(CALL.key, max_age) is None, "stale on simulated time"

        # five simulated days later (a max-hold exit) and a new New York trading day
        later = DAY1 + settings.strat_max_hold_s + 60
        sim.advance(later)
        rig.quote(1.78, 1.82)
        await rig.tick()
        assert rig.desk.day.current is not None
        assert rig.desk.day.current.day == dt.datetime.fromtimestamp(later, dt.UTC).date()
        exits = [o for o in await rig.sent() if isinstance(o, OrderNew)]
        assert [o.action for o in exits] == [Action.BUY, Action.SELL]
        assert "max holding time" in exits[-1].reason
        taken = await rig.decisions_of(DecisionOutcome.TAKEN)
        assert taken and {d.at for d in taken[-2:]} == {later}


async def test_entry_cycle_when_fetching_chains_counts_as_waiting_on_a_sim_clock(
    redis: aioredis.Redis, settings: Settings
) -> None:
    """The chains of a cycle are fetched in tasks that wait for quotes on the clock; the
    cycle task waiting for them must count as waiting too, or a backtest's step never
    settles (the clock moves only once everyone waits): it deadlocked the lockstep."""
    sim = SimClock(DAY1)
    with clock.using(sim):
        rig = await make_rig(redis, settings)
        rig.cycles.wall_clock = clock_time
        rig.books.market.candidates = [cand()]
        rig.cycles._ready = lambda *_a, **_k: True  # type: ignore[method-assign]

        async def chain_waiting_for_quotes(_cycle: str, _cand: Candidate) -> None:
            await clock.current().sleep(1.0)  # as _wait_for_quotes does

        rig.cycles._chain = chain_waiting_for_quotes  # type: ignore[method-assign,assignment]
        stop = asyncio.Event()
        task = asyncio.create_task(rig.cycles.run(stop))
        try:
            # A task is known to the clock from its first wait on it: until the first
            # cycle's chain sleeps, the cycle may still be reading Redis, unseen.
            await wait_until(lambda: sim.next_deadline() == DAY1 + 1, what="a chain waiting")
            await asyncio.wait_for(sim.settled(), 5)  # first cycle: its chain task waits
            sim.advance(DAY1 + 1)
            await asyncio.wait_for(sim.settled(), 5)  # the loop waits for its interval
            sim.advance(DAY1 + 1 + settings.strat_cycle_interval_s)
            await asyncio.wait_for(sim.settled(), 5)  # second cycle, a chain waiting again
            assert rig.cycles.cycles == 2
        finally:
            stop.set()
            sim.advance(DAY1 + 3600)
            await asyncio.wait_for(task, 5)
