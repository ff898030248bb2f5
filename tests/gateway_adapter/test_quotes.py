"""Qualify + subscribe through the simulator; quotes reach md:ticks and md:last."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from services.gateway_adapter.qualify import CACHE_KEY
from services.tws_simulator import Simulator
from shared.bus import Publisher
from shared.contract import GW_COMMANDS, GW_STATUS, MD_TICKS
from shared.schemas import (
    ConnState,
    ContractRef,
    GatewayStatus,
    IbError,
    OptionChain,
    OptionChainRequest,
    Quote,
    SecType,
    Subscribe,
)
from shared.settings import Settings
from tests.gateway_adapter.conftest import StartAdapter, bodies
from tests.helpers import wait_until

SYMBOLS = [
    ContractRef(symbol="SPY"),
    ContractRef(symbol="QQQ"),
    ContractRef(symbol="VIX", sec_type=SecType.IND),
    ContractRef(symbol="AAPL"),
]


async def connected(redis: aioredis.Redis) -> bool:
    states = await bodies(redis, GW_STATUS, GatewayStatus)
    return any(s.state is ConnState.CONNECTED for s in states)


async def send(redis: aioredis.Redis, settings: Settings, body: object, key: str = "") -> None:
    await Publisher(redis, settings, src="test").publish(GW_COMMANDS, body, key=key)  # type: ignore[arg-type]


async def test_subscribe_when_stocks_index_and_chain_requested_publishes_sane_quotes(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    adapter = await start_adapter(sim)
    await wait_until(lambda: connected(redis), timeout=5, what="connected status")
    await send(redis, settings, Subscribe(contracts=SYMBOLS, requester="test"))
    await send(
        redis,
        settings,
        OptionChainRequest(
            request_id="c1",
            underlying="SPY",
            min_dte=0,
            max_dte=60,
            moneyness=0.01,
            requester="strategy",
        ),
    )

    async def all_last() -> bool:
        return all([await redis.exists(f"md:last:{r.key}") for r in SYMBOLS])

    await wait_until(all_last, timeout=5, what="md:last for SPY QQQ VIX AAPL")
    vix = {k.decode(): v.decode() for k, v in (await redis.hgetall("md:last:VIX")).items()}
    assert float(vix["mark"]) > 0 and vix["bid"] == "" and vix["ask"] == ""
    spy = {k.decode(): v.decode() for k, v in (await redis.hgetall("md:last:SPY")).items()}
    assert float(spy["bid"]) > 0 and float(spy["ask"]) >= float(spy["bid"])
    assert spy["data_type"] == "live" and int(spy["ib_ts"]) > 0 and int(spy["con_id"]) > 0

    chain = (
        await wait_until(lambda: bodies(redis, "gw:replies:strategy", OptionChain), timeout=5)
    )[0]
    assert chain.error == "" and chain.contracts and all(c.con_id for c in chain.contracts)
    option_key = chain.contracts[0].key

    async def option_quote() -> list[Quote]:
        quotes = await bodies(redis, MD_TICKS, Quote)
        return [q for q in quotes if q.contract.key == option_key and q.delta is not None]

    await wait_until(option_quote, timeout=5, what="option quote with greeks")
    quotes = await bodies(redis, MD_TICKS, Quote)
    vix_quotes = [q for q in quotes if q.contract.symbol == "VIX"]
    assert vix_quotes and all(q.mark is not None and q.mark > 0 for q in vix_quotes)
    assert all(q.bid is None or q.bid > 0 for q in quotes)
    assert await redis.hexists(CACHE_KEY, "VIX") and await redis.hexists(CACHE_KEY, option_key)
    assert adapter.adapter.conn.conflicts == 0
    paced = [e for e in await bodies(redis, GW_STATUS, IbError) if e.code == 100]
    assert not paced, "IB pacing (error 100) violated"


async def test_pacing_when_chains_and_many_lines_requested_together_never_trips_error_100(
    sim: Simulator, start_adapter: StartAdapter, redis: aioredis.Redis, settings: Settings
) -> None:
    """Qualification sends one message per contract: it must be spread like the rest."""
    await start_adapter(sim)
    await wait_until(lambda: connected(redis), timeout=5, what="connected status")
    stocks = ["IWM", "DIA", "MSFT", "NVDA", "AMZN", "META", "GOOGL", "TSLA", "AMD", "NFLX"]
    await send(redis, settings, Subscribe(contracts=[ContractRef(symbol=s) for s in stocks]))
    for n, underlying in enumerate(("SPY", "QQQ", "AAPL")):
        request = OptionChainRequest(
            request_id=f"p{n}",
            underlying=underlying,
            min_dte=0,
            max_dte=60,
            moneyness=0.05,
            requester="strategy",
        )
        await send(redis, settings, request)
    replies = await wait_until(
        lambda: _all(bodies(redis, "gw:replies:strategy", OptionChain), 3),
        timeout=20,
        what="3 chains",
    )
    assert sum(len(r.contracts) for r in replies) >= 60  # > 50 qualifications in a burst
    codes = [e.code for e in await bodies(redis, GW_STATUS, IbError)]
    assert 100 not in codes, codes


async def _all(rows: Any, n: int) -> Any:
    got = await rows
    return got if len(got) >= n else None
