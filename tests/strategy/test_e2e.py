"""End to end: simulator + adapter + market data + strategy over a real Redis."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.contract import STRATEGY_DECISIONS, STRATEGY_PNL, STRATEGY_POSITIONS, service_key
from shared.envelope import decode
from shared.redis_server import RedisHandle
from shared.schemas import Decision, DecisionKind, DecisionOutcome, Right
from tests.helpers import wait_until
from tests.strategy.stack import Stack, fills, held_from_fills, orders, start_stack

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def stack(
    redis_server: RedisHandle, redis: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Stack]:
    s = await start_stack(redis_server.url, str(tmp_path))
    try:
        yield s
    finally:
        await s.close()


async def decisions(redis: aioredis.Redis) -> list[tuple[str, Decision]]:
    rows: Any = await redis.xrange(STRATEGY_DECISIONS)
    return [(i.decode(), decode(f).body) for i, f in rows]


async def positions(redis: aioredis.Redis) -> dict[str, int]:
    raw: Any = await redis.hgetall(STRATEGY_POSITIONS)
    return {k.decode(): json.loads(v)["qty"] for k, v in raw.items()}


def cli(stack: Stack, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "optbot.cli", *args], env=stack.env(), check=True, timeout=20
    )


async def test_trade_when_bullish_regime_buys_calls_fills_and_exits_then_halt_stops_entries(
    stack: Stack, redis: aioredis.Redis
) -> None:
    t0 = time.monotonic()
    stack.start_strategy(strat_take_profit_pct=8.0, strat_stop_loss_pct=8.0)

    entry = await wait_until(lambda: _entries(redis), timeout=25, what="a first entry order")
    t_order = time.monotonic() - t0
    first = entry[0]
    assert first.contract.right is Right.CALL and first.action.value == "BUY"
    assert 1 <= first.quantity <= stack.settings.risk_max_contracts
    assert first.limit_price is not None
    assert first.limit_price * 100 * first.quantity <= 563.54  # 15 % of 3,756.96

    await wait_until(lambda: fills(redis), timeout=15, what="a fill")
    t_fill = time.monotonic() - t0
    await wait_until(lambda: positions(redis), timeout=5, what="strategy:positions")
    pnl: Any = await redis.hgetall(STRATEGY_PNL)
    assert int(pnl[b"fills"]) >= 1 and pnl[b"risk_state"] == b"ACTIVE"

    async def closed_by_exit() -> list[Decision]:
        return [
            d
            for _, d in await decisions(redis)
            if d.kind is DecisionKind.EXIT and d.outcome is DecisionOutcome.TAKEN
        ]

    exits = await wait_until(closed_by_exit, timeout=25, what="a take-profit or stop-loss exit")
    assert any(("take-profit" in d.reason or "stop-loss" in d.reason) for d in exits)

    async def realized() -> bool:
        pnl = await redis.hgetall(STRATEGY_PNL)
        return pnl.get(b"realized", b"0.00") != b"0.00"

    await wait_until(realized, timeout=15, what="realized P&L after the exit fill")
    print(f"\nfirst order {t_order:.1f}s, first fill {t_fill:.1f}s after strategy start")

    # optbot halt: the strategy applies it from sys:control at once (any entry after it
    # is denied by the risk check) and says so by the next cycle. A cycle in progress
    # may be waiting on a chain (request timeout) and its first quotes (quote wait).
    await asyncio.to_thread(cli, stack, "halt", "--why", "e2e test", "--who", "tester")
    s = stack.settings
    longest_cycle = s.ib_request_timeout_s + s.strat_quote_wait_s + s.strat_cycle_interval_s
    halted = await wait_until(
        lambda: _halt_decision(redis), timeout=longest_cycle + 1, what="the halt decision"
    )
    await asyncio.sleep(2 * stack.settings.strat_cycle_interval_s)  # two more cycles, watched
    late = [o for i, o in await orders(redis) if i > halted and not o.reduce_only]
    assert late == []


async def _entries(redis: aioredis.Redis) -> list[Any]:
    return [o for _, o in await orders(redis) if not o.reduce_only]


async def _halt_decision(redis: aioredis.Redis) -> str | None:
    """The first decision made under the halt: an entry denied, or a cycle skipped."""
    for entry_id, d in await decisions(redis):
        if d.outcome in (DecisionOutcome.SKIPPED, DecisionOutcome.DENIED) and "HALTED" in d.reason:
            return entry_id
    return None


async def test_restart_when_strategy_sigkilled_rebuilds_positions_and_sends_no_duplicate(
    stack: Stack, redis: aioredis.Redis
) -> None:
    wide = {"strat_take_profit_pct": 500.0, "strat_stop_loss_pct": 95.0}
    stack.spawn_strategy(**wide)
    await wait_until(lambda: positions(redis), timeout=30, what="a position")
    before = await positions(redis)

    stack.kill_strategy()
    sent_before = {o.client_order_id for _, o in await orders(redis)}
    assert await redis.exists(service_key("strategy"))  # the heartbeat outlives a SIGKILL
    stack.spawn_strategy(**wide)

    async def restarted() -> bool:
        pid = await redis.hget(service_key("strategy"), "pid")
        return pid is not None and int(pid) == stack.proc.pid  # type: ignore[union-attr]

    await wait_until(restarted, timeout=15, what="the restarted strategy's heartbeat")
    expected = await held_from_fills(redis)
    assert set(before) <= set(expected)  # nothing already held was lost
    await wait_until(lambda: _positions_equal(redis), timeout=5, what="strategy:positions == fills")
    await asyncio.sleep(3 * stack.settings.strat_cycle_interval_s)  # cycles after the restart

    sent = await orders(redis)
    ids = [o.client_order_id for _, o in sent]
    assert len(ids) == len(set(ids)), "a client order id was sent twice"
    held_symbols = {key.split()[0] for key in before}
    again = [
        o
        for _, o in sent
        if o.client_order_id not in sent_before
        and not o.reduce_only
        and o.contract.symbol in held_symbols
    ]
    assert again == [], "the restarted strategy bought again what it already held"
    by_symbol: dict[str, set[str]] = {}
    for key in (await held_from_fills(redis)) | before:
        by_symbol.setdefault(key.split()[0], set()).add(key)
    assert all(len(keys) == 1 for keys in by_symbol.values()), by_symbol
    assert max((await held_from_fills(redis)).values()) <= stack.settings.risk_max_contracts


async def _positions_equal(redis: aioredis.Redis) -> bool:
    return await positions(redis) == await held_from_fills(redis)
