"""A consumer that falls behind, and a host whose wall clock is wrong.

Slow consumer: the strategy is SIGSTOPped for longer than the staleness limit while
quotes keep coming, then SIGCONTed. It must catch up (its group's lag on ``md:ticks``
back to ~0) and every order it sends afterwards must be priced from a quote that
reached Redis within the staleness limit before the order (not from the backlog).

Clock skew: the strategy's wall clock runs 120 s ahead (``tests/fault/skew``), so every
envelope ``ts`` it sees looks two minutes old. Quote age is measured on its monotonic
clock from arrival, so it still trades, and the invariants hold.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from services.strategy.orders import PricingParams, limit_price
from shared.envelope import decode
from shared.schemas import Quote
from tests.fault.conftest import MakeSystem, assert_invariants, first_fill
from tests.fault.harness import FaultSystem, wait_for
from tests.fault.invariants import GRACE_S, entry_time, read_record

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

CHURN = {"strat_take_profit_pct": 8.0, "strat_stop_loss_pct": 8.0}
PAUSE_S = 8.0  # > OPTBOT_RISK_MAX_QUOTE_AGE_S (5)
SKEW_S = 120.0


async def _lag(system: FaultSystem, stream: str = "md:ticks", group: str = "strategy") -> int:
    for info in await system.redis.xinfo_groups(stream):
        if info["name"].decode() == group:
            return int(info.get("lag") or 0) + int(info.get("pending") or 0)
    return -1


async def _ticks(system: FaultSystem) -> dict[str, list[tuple[float, float, float]]]:
    rows: Any = await system.redis.xrange("md:ticks")
    out: dict[str, list[tuple[float, float, float]]] = {}
    for entry_id, fields in rows:
        q = decode(fields).body
        if isinstance(q, Quote) and q.bid is not None and q.ask is not None:
            out.setdefault(q.contract.key, []).append((entry_time(entry_id), q.bid, q.ask))
    return out


async def test_slow_consumer_when_resumed_catches_up_and_prices_from_fresh_quotes(
    make_system: MakeSystem,
) -> None:
    system = await make_system(**CHURN)
    await first_fill(system)
    await system.signal("strategy", signal.SIGSTOP)
    await asyncio.sleep(PAUSE_S)  # the market keeps moving; md:ticks piles up
    backlog = await _lag(system)
    resumed = time.time()
    await system.signal("strategy", signal.SIGCONT)
    t0 = time.monotonic()
    await wait_for(lambda: _lag_small(system), 20, "the strategy caught up on md:ticks")
    caught_up = time.monotonic() - t0
    await wait_for(lambda: system.healthy("strategy"), 10, "strategy heartbeat fresh")
    await asyncio.sleep(6)  # a few cycles after the pause: entries, exits, reprices

    max_age = system.settings.risk_max_quote_age_s
    pricing = PricingParams.from_settings(system.settings)
    ticks = await _ticks(system)
    rec = await read_record(system.redis)
    after = [(t, o) for t, o in rec.requests if t >= resumed and o.limit_price is not None]
    old_priced = []
    for t, o in after:
        window = [
            (b, a) for x, b, a in ticks.get(o.contract.key, []) if t - max_age - GRACE_S <= x <= t
        ]
        prices = {limit_price(o.action, b, a, 0, pricing) for b, a in window}
        if o.limit_price not in prices:
            old_priced.append((o.client_order_id, o.limit_price, sorted(prices)[:5]))
    assert old_priced == [], old_priced
    await assert_invariants(system)
    print(
        f"\nRECOVERY slow consumer: backlog {backlog} ticks after {PAUSE_S:.0f}s stopped, "
        f"caught up in {caught_up:.1f}s; {len(after)} orders after, all on fresh quotes"
    )


async def _lag_small(system: FaultSystem) -> bool:
    return 0 <= await _lag(system) < 200


async def test_clock_skew_when_strategy_clock_ahead_still_trades_on_arrival_age(
    make_system: MakeSystem,
) -> None:
    system = await make_system(**CHURN)
    # Restart the strategy with its wall clock 120 s ahead of everyone else's.
    await system.stop("strategy")
    hook = str(Path(__file__).parent / "skew")
    path = os.pathsep.join([hook, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    system.spawn("strategy", extra_env={"PYTHONPATH": path, "FAULT_CLOCK_OFFSET_S": str(SKEW_S)})
    await wait_for(lambda: system.healthy("strategy"), 20, "skewed strategy healthy")
    hb = await system.heartbeat("strategy")
    assert float(hb["heartbeat"]) - time.time() > SKEW_S - 5  # the hook took effect
    t0 = time.monotonic()
    before = len((await read_record(system.redis)).requests)

    async def traded() -> bool:
        return len((await read_record(system.redis)).requests) > before

    await wait_for(traded, 45, "an order from the skewed strategy", interval=0.5)
    await assert_invariants(system)
    print(f"\nclock skew +{SKEW_S:.0f}s: first order {time.monotonic() - t0:.1f}s after restart")
