"""Option-chain lines against the real simulator: narrow windows, the lowest priority."""

from __future__ import annotations

import redis.asyncio as aioredis

from services.gateway_adapter.budget import PRIO_CHAIN
from services.tws_simulator import Simulator
from shared.schemas import (
    ContractRef,
    IbError,
    OptionChain,
    OptionChainRequest,
    Right,
    Subscribe,
)
from shared.settings import Settings
from tests.gateway_adapter.conftest import MakeSim, StartAdapter, bodies
from tests.gateway_adapter.test_quotes import send
from tests.helpers import wait_until

WATCH = [ContractRef(symbol="AAPL"), ContractRef(symbol="MSFT")]


async def _chain(redis: aioredis.Redis, settings: Settings, req: OptionChainRequest) -> OptionChain:
    await send(redis, settings, req)
    replies = await wait_until(
        lambda: bodies(redis, "gw:replies:strategy", OptionChain), timeout=10, what="chain"
    )
    (chain,) = [c for c in replies if c.request_id == req.request_id]
    return chain


async def test_chain_when_itm_and_count_narrowed_returns_only_otm_calls_within_count(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: adapter.connected, timeout=4)
    await send(redis, settings, Subscribe(contracts=[ContractRef(symbol="AAPL")], priority=8))
    await wait_until(lambda: adapter.adapter.quotes.quote("AAPL"), timeout=5, what="AAPL quote")
    req = OptionChainRequest(
        request_id="n1",
        underlying="AAPL",
        min_dte=0,
        max_dte=60,
        moneyness=0.10,
        itm_moneyness=0.0,
        max_contracts=12,
        right=Right.CALL,
        requester="strategy",
    )
    chain = await _chain(redis, settings, req)
    spot = adapter.adapter.quotes.quote("AAPL")
    assert spot is not None and spot.mark is not None
    assert 0 < len(chain.contracts) <= 12
    # 1 % slack: the adapter's spot and ours are quotes a few ticks apart
    assert all((c.strike or 0.0) >= spot.mark * 0.99 for c in chain.contracts), chain.contracts


async def test_ib_refusal_when_chain_lines_fill_ib_limit_watchlist_line_takes_a_chain_line(
    make_sim: MakeSim, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    """IB grants 6 lines although OPTBOT_IB_MAX_LINES says 100 (TWS or another client
    holds the rest). Option lines IB refuses are dropped; a watchlist line IB refuses
    takes a chain line, never the other way round, and is not lost."""
    sim = await make_sim(market_data_lines=6)
    adapter = await start_adapter(sim)
    subs = adapter.adapter.subs
    await wait_until(lambda: adapter.connected, timeout=4)
    await send(redis, settings, Subscribe(contracts=WATCH, priority=8, requester="md"))
    await wait_until(lambda: {"AAPL", "MSFT"} <= set(subs.open), timeout=5, what="watchlist")
    req = OptionChainRequest(
        request_id="c1",
        underlying="AAPL",
        min_dte=0,
        max_dte=60,
        moneyness=0.10,
        requester="strategy",
    )
    chain = await _chain(redis, settings, req)
    assert len(chain.contracts) > 4  # more than IB's 4 free lines

    async def chain_settled() -> bool:
        errs = await bodies(redis, "gw:status", IbError)
        refused = {e.symbol for e in errs if e.code == 101 and e.severity == "refused"}
        return len(subs.open) == 6 and len(refused) == len(chain.contracts) - 4

    await wait_until(chain_settled, timeout=10, what="4 chain lines open, the rest refused")
    assert {"AAPL", "MSFT"} <= set(subs.open)
    assert {subs.budget.priority(c.key) for c in chain.contracts} <= {PRIO_CHAIN, None}

    await send(redis, settings, Subscribe(contracts=[ContractRef(symbol="META")], priority=8))
    await wait_until(
        lambda: "META" in subs.open and sim_lines(sim) <= 6, timeout=5, what="META line"
    )
    await wait_until(lambda: redis.exists("md:last:META"), timeout=5, what="META quote")
    assert {"AAPL", "MSFT", "META"} <= set(subs.desired)
    assert sum(1 for k in subs.open if k in {c.key for c in chain.contracts}) == 3


def sim_lines(sim: Simulator) -> int:
    return sum(len(s.lines) for s in sim.sessions.values())
