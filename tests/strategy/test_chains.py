"""Option chains through the bus's request/reply helper, in the running strategy service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from services.strategy.main import StrategyService
from shared.bus import GatewayDown, Publisher
from shared.contract import GW_COMMANDS, GW_STATUS, MD_SIGNALS, SYS_DLQ, reply_stream
from shared.envelope import decode
from shared.runner import ServiceContext, run_service
from shared.schemas import ConnState, GatewayStatus, OptionChain, OptionChainRequest, Right
from shared.settings import Settings
from tests.helpers import wait_until


@pytest.fixture
async def strategy(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[StrategyService]:
    """The strategy service running in this loop, its gateway CONNECTED."""
    await Publisher(redis, settings, src="gateway_adapter/a").publish(
        GW_STATUS, GatewayStatus(state=ConnState.CONNECTED, client_id=1)
    )
    started: list[StrategyService] = []

    async def main(ctx: ServiceContext) -> None:
        service = StrategyService(ctx)
        await service.start()
        started.append(service)

    stop = asyncio.Event()
    task = asyncio.create_task(run_service("strategy", main, settings, stop=stop))
    try:
        yield await wait_until(lambda: started and started[0], timeout=15, what="strategy")
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0


def _fetch(service: StrategyService) -> asyncio.Task[OptionChain]:
    fetch = service.chains.fetch("SPY", Right.CALL, min_dte=14, max_dte=45, moneyness=0.1)
    return asyncio.create_task(fetch)


async def _chain_requests(redis: aioredis.Redis) -> list[OptionChainRequest]:
    found = [decode(f).body for _, f in await redis.xrange(GW_COMMANDS)]
    return [b for b in found if isinstance(b, OptionChainRequest)]


async def test_fetch_when_gateway_answers_gets_the_reply_on_its_own_stream(
    strategy: StrategyService, settings: Settings, redis: aioredis.Redis
) -> None:
    asking = _fetch(strategy)
    (req,) = await wait_until(lambda: _chain_requests(redis), what="chain request")
    assert (req.requester, req.reply_to) == ("strategy", "gw:replies:strategy")
    reply = OptionChain(request_id=req.request_id, underlying="SPY", contracts=[])
    await Publisher(redis, settings, src="gateway_adapter/a").publish(
        reply_stream("strategy"), reply
    )
    assert (await asyncio.wait_for(asking, 5)).request_id == req.request_id


async def test_fetch_when_gateway_disconnects_fails_at_once_with_gateway_down(
    strategy: StrategyService, settings: Settings, redis: aioredis.Redis
) -> None:
    asking = _fetch(strategy)
    await wait_until(lambda: _chain_requests(redis), what="chain request")
    await Publisher(redis, settings, src="gateway_adapter/a").publish(
        GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED, client_id=1)
    )
    with pytest.raises(GatewayDown, match="gateway disconnected"):
        await asyncio.wait_for(asking, 5)  # the chain timeout is 15 s
    assert strategy.requests.pending == 0


async def test_chain_reply_when_put_on_md_signals_is_dead_lettered_not_taken(
    strategy: StrategyService, settings: Settings, redis: aioredis.Redis
) -> None:
    # The old fallback for a request without reply_to: no consumer takes a reply there now.
    stray = OptionChain(request_id="st-x", underlying="SPY", contracts=[])
    await Publisher(redis, settings, src="gateway_adapter/a").publish(MD_SIGNALS, stray)
    dead = await wait_until(lambda: redis.xrange(SYS_DLQ), what="dead letter")
    assert dead[0][1][b"reason"] == b"type option_chain does not belong on md:signals"
