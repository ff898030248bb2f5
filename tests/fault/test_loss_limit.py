"""The market falls through the daily-loss limit while positions are held.

Issue 14's scenario with real processes: the strategy holds positions in a rising
market; the simulator's regime turns to ``trending_down`` (what ``optbot sim fault
regime name=trending_down`` does) until the daily-loss limit breaches. Then: the
risk engine sets REDUCING (never HALTED), no entry is sent after it, no exit is
denied because of it, and every position is closed by the normal exits within two
minutes at the simulator's 60x clock.
"""

from __future__ import annotations

import time

import pytest

from services.strategy.risk import RiskState, load_status
from shared.envelope import decode
from shared.schemas import Decision, DecisionKind, DecisionOutcome, OrderEventKind
from shared.streams import STRATEGY_DECISIONS
from tests.fault.conftest import MakeSystem, assert_invariants
from tests.fault.harness import wait_for
from tests.fault.invariants import entry_time, read_record

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

CLOSE_BOUND_S = 120.0


async def test_loss_limit_when_market_falls_reduces_and_the_normal_exits_close_everything(
    make_system: MakeSystem,
) -> None:
    # 0.5 % of 3,756.96 = 18.78: a fall of a few cents on what is held breaches it. The
    # calls bought in the rising market are held into the fall (no take-profit, no exit on
    # the sentiment flip), so the stop-loss is the normal exit that must still go out.
    system = await make_system(
        risk_max_daily_loss_pct=0.5,
        strat_take_profit_pct=400.0,
        strat_exit_on_flip=False,
        risk_max_positions=1,
    )

    async def full() -> bool:  # the one slot taken: nothing new is bought on the way down
        return len((await read_record(system.redis)).positions) >= 1

    await wait_for(full, 120, "a position held", interval=0.2)
    assert system.sim is not None
    system.sim.force_regime("trending_down")
    fell_at = time.time()

    async def breached() -> bool:
        return (await load_status(system.redis)).state is not RiskState.ACTIVE

    try:
        await wait_for(breached, 90, "the daily-loss limit to breach", interval=0.2)
    except AssertionError:
        pnl = await system.redis.hgetall("strategy:pnl")
        pos = await system.redis.hgetall("strategy:positions")
        raise AssertionError(f"no breach: pnl {pnl} positions {pos}") from None
    status = await load_status(system.redis)
    assert (status.state, status.who) == (RiskState.REDUCING, "risk-engine"), status
    assert "daily loss" in status.why and "limit" in status.why
    rec = await read_record(system.redis)
    breach_at = max(t for t, c in rec.controls if c.who == "risk-engine")
    assert breach_at >= fell_at - 5

    async def flat() -> bool:
        r = await read_record(system.redis)
        return not r.positions and not r.net_from_fills()

    took = await wait_for(flat, CLOSE_BOUND_S, "every position closed", interval=0.5)
    rec = await read_record(system.redis)
    late_entries = [o.client_order_id for t, o in rec.entries if t > breach_at + 1.0]
    assert late_entries == [], f"entries after the breach: {late_entries}"
    exit_fills = [
        e
        for t, e in rec.events
        if t > breach_at
        and e.kind in (OrderEventKind.FILL, OrderEventKind.PARTIAL)
        and e.client_order_id.startswith("ox-")
    ]
    rows = await system.redis.xrange(STRATEGY_DECISIONS)
    decisions: list[Decision] = [d for i, f in rows if isinstance(d := decode(f, i).body, Decision)]
    denied_exits = [
        d.reason
        for d in decisions
        if d.kind is DecisionKind.EXIT and d.outcome is DecisionOutcome.DENIED
    ]
    assert denied_exits == [], denied_exits
    assert (await load_status(system.redis)).state is RiskState.REDUCING  # never HALTED
    report = await assert_invariants(system)
    print(
        f"breach {breach_at - fell_at:.1f}s after the fall; flat {took:.1f}s after; "
        f"exit fills after the breach {len(exit_fills)}; {report}"
    )
    assert all(entry_time(i) for i, _ in rows[:1])
