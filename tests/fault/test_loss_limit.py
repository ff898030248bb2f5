"""The market turns against what is held until the daily-loss limit breaches.

Issue 14's scenario with real processes: the strategy holds a position; the
simulator's regime turns against it (what ``optbot sim fault regime name=…`` does)
until the daily-loss limit breaches. Then: the risk engine sets REDUCING (never
HALTED), no entry is sent after it, no exit is denied because of it, and every
position is closed by the normal exits within two minutes at the simulator's 60x clock.

The turn is forced as soon as the first position is held (a call meets
``trending_down``, a put ``trending_up``), before gains build a cushion. A call held
into ``trending_down`` can gain for a while first: the simulator's VIX rises with that
regime and lifts every option's implied volatility, so the wait for the breach is long.
"""

from __future__ import annotations

import time

import pytest

from services.strategy.risk import RiskState, load_status
from shared.contract import STRATEGY_DECISIONS
from shared.envelope import decode
from shared.schemas import Decision, DecisionKind, DecisionOutcome, OrderEventKind
from tests.fault.conftest import MakeSystem, assert_invariants
from tests.fault.harness import wait_for
from tests.fault.invariants import read_record

pytestmark = [pytest.mark.slow, pytest.mark.timeout(480)]

CLOSE_BOUND_S = 120.0


async def test_loss_limit_when_market_falls_reduces_and_the_normal_exits_close_everything(
    make_system: MakeSystem,
) -> None:
    # 0.5 % of 3,756.96 = 18.78: a move of a few cents against what is held breaches it.
    # The put is held into the rally (no take-profit, no exit on the sentiment flip), so
    # the stop-loss is the normal exit that must still go out.
    system = await make_system(
        risk_max_daily_loss_pct=0.5,
        strat_take_profit_pct=400.0,
        strat_exit_on_flip=False,
        risk_max_positions=1,
    )

    async def held() -> bool:  # the one slot taken: nothing new is bought in the turn
        return bool((await read_record(system.redis)).positions)

    await wait_for(held, 120, "a position held", interval=0.2)
    (key,) = (await read_record(system.redis)).positions
    assert system.sim is not None
    system.sim.force_regime("trending_down" if key.endswith(" C") else "trending_up")
    fell_at = time.time()

    async def breached() -> bool:
        return (await load_status(system.redis)).state is not RiskState.ACTIVE

    try:
        await wait_for(breached, 180, "the daily-loss limit to breach", interval=0.2)
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
    assert exit_fills, "the position was closed before the breach: nothing was tested"
    print(
        f"breach {breach_at - fell_at:.1f}s after the fall; flat {took:.1f}s after; "
        f"exit fills after the breach {len(exit_fills)}; {report}"
    )
