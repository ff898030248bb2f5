"""Market-data line churn: trades the strategy cannot take must not cost chains or lines.

The full stack (simulator at 60x in a trending market, the real adapter, market data
and strategy over a real Redis) runs with a per-trade budget no option fits, or with
no premium room at all, and the test counts the option chains asked for on
``gw:commands`` and the option lines they opened (the contracts of each reply, which
the adapter subscribes) over a number of entry cycles.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.contract import GW_COMMANDS, STRATEGY_DECISIONS, reply_stream, service_key
from shared.envelope import decode
from shared.redis_server import RedisHandle
from shared.schemas import Decision, OptionChain, OptionChainRequest
from tests.helpers import wait_until
from tests.strategy.stack import Stack, fills, orders, start_stack

pytestmark = pytest.mark.timeout(120)

CYCLES = 10  # entry cycles watched after the first look at every candidate


@pytest.fixture
async def stack(
    redis_server: RedisHandle, redis: aioredis.Redis, tmp_path: Path
) -> AsyncIterator[Stack]:
    s = await start_stack(redis_server.url, str(tmp_path))
    try:
        yield s
    finally:
        await s.close()


async def _bodies(redis: aioredis.Redis, stream: str, cls: type) -> list[Any]:
    rows: Any = await redis.xrange(stream)
    return [b for b in (decode(f).body for _, f in rows) if isinstance(b, cls)]


async def _cycles(redis: aioredis.Redis) -> int:
    return int(await redis.hget(service_key("strategy"), "cycles") or 0)


async def _watch_cycles(redis: aioredis.Redis, n: int, *, chains_asked: int = -1) -> None:
    """``n`` more entry cycles, or (with ``chains_asked``) until one more chain is asked."""
    start = await wait_until(lambda: _cycles(redis), timeout=20, what="a first entry cycle")

    async def done() -> bool:
        if chains_asked >= 0 and (await _churn(redis))[0].total() > chains_asked:
            return True
        return await _cycles(redis) >= start + n

    await wait_until(done, timeout=60, what=f"{n} more entry cycles")


async def _churn(redis: aioredis.Redis) -> tuple[Counter[str], int]:
    """Chain requests by underlying, and the option lines their replies opened."""
    asked = Counter(r.underlying for r in await _bodies(redis, GW_COMMANDS, OptionChainRequest))
    replies = await _bodies(redis, reply_stream("strategy"), OptionChain)
    lines = sum(len(c.contracts) for c in replies)
    return asked, lines


async def test_entry_cycles_when_top_candidates_unaffordable_ask_each_chain_once(
    stack: Stack, redis: aioredis.Redis
) -> None:
    # 0.5 % of 3,756.96 = 18.78 a trade: no 14-45 DTE option of the simulator fits. A 20 %
    # retry move keeps the trending market from lifting the cooldown inside the test.
    stack.start_strategy(risk_max_premium_pct=0.5, strat_chain_retry_move_pct=20.0)

    async def rested() -> list[Decision]:
        ds = await _bodies(redis, STRATEGY_DECISIONS, Decision)
        return [d for d in ds if "chain cooldown until" in d.reason]

    await wait_until(rested, timeout=40, what="a candidate resting in the chain cooldown")
    await _watch_cycles(redis, CYCLES)

    asked, lines = await _churn(redis)
    print(f"\nchains {dict(asked)}, option lines opened {lines}")
    assert await orders(redis) == []
    assert asked and max(asked.values()) == 1, asked
    assert lines <= sum(asked.values()) * stack.settings.strat_chain_max_contracts
    reasons = [d.reason for d in await rested()]
    assert any("size 0" in r or "no contract fits" in r for r in reasons), reasons


async def test_entry_cycles_when_no_premium_room_ask_no_chain_and_say_why(
    stack: Stack, redis: aioredis.Redis
) -> None:
    # 0.1 % of 3,756.96 = 3.76 in total: below the cheapest plausible contract (5.00).
    stack.start_strategy(risk_max_total_premium_pct=0.1)

    async def gated() -> list[Decision]:
        ds = await _bodies(redis, STRATEGY_DECISIONS, Decision)
        return [d for d in ds if d.reason.startswith("total_premium: room left 3.76")]

    await wait_until(gated, timeout=40, what="a total_premium skip before any chain")
    await _watch_cycles(redis, CYCLES)

    asked, lines = await _churn(redis)
    assert asked == Counter() and lines == 0, (asked, lines)


async def test_entry_cycles_when_positions_at_limit_ask_no_more_chains(
    stack: Stack, redis: aioredis.Redis
) -> None:
    # One position allowed, held (wide exits): every later entry would be denied by
    # max_positions, so no chain may be asked for after the fill.
    stack.start_strategy(
        risk_max_positions=1, strat_take_profit_pct=500.0, strat_stop_loss_pct=95.0
    )
    await wait_until(lambda: fills(redis), timeout=40, what="a first fill")

    async def gated() -> list[Decision]:
        ds = await _bodies(redis, STRATEGY_DECISIONS, Decision)
        return [d for d in ds if d.reason.startswith("max_positions: 1 positions open")]

    await wait_until(gated, timeout=20, what="a max_positions skip")
    before, _ = await _churn(redis)
    await _watch_cycles(redis, CYCLES, chains_asked=before.total())
    after, _ = await _churn(redis)
    assert after == before, (before, after)
    assert len([o for o in await orders(redis) if not o[1].reduce_only]) == 1
