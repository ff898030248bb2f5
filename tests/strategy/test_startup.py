"""Start-up state: a (re)started strategy knows the gateway and the sentiment at once."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from services.strategy.main import StrategyService
from services.strategy.main import main as strategy_main
from shared.bus import Publisher
from shared.runner import ServiceContext, run_service
from shared.schemas import ConnState, GatewayStatus, IbError, Sentiment, SentimentSignal
from shared.settings import Settings
from shared.streams import GW_STATUS, MD_SIGNALS
from tests.helpers import wait_until


async def test_start_when_gateway_status_buried_under_ib_errors_knows_gateway_is_connected(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """The old read of the newest 50 gw:status entries missed the state behind 101/300s."""
    pub = Publisher(redis, settings, src="gateway_adapter/a")
    pub.add(GW_STATUS, GatewayStatus(state=ConnState.CONNECTED, client_id=1))
    for i in range(2000):
        pub.add(GW_STATUS, IbError(code=101, message="Max number of tickers", req_id=i))
    await pub.flush()
    # the active adapter mirrors its state into its heartbeat
    await redis.hset(
        "svc:gateway_adapter",
        mapping={
            "heartbeat": f"{time.time():.3f}",
            "ib_state": "connected",
            "client_id": "1",
            "server_version": "178",
            "data_type": "live",
            "account": "DU1234567",
        },
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_service("strategy", strategy_main, settings, stop=stop))
    beat = await wait_until(
        lambda: redis.hget("svc:strategy", "gateway"), timeout=15, what="strategy heartbeat"
    )
    stop.set()
    assert await asyncio.wait_for(task, 20) == 0
    assert beat == b"connected"


async def _gateway_seen_at_start(settings: Settings, redis: aioredis.Redis) -> bytes:
    stop = asyncio.Event()
    task = asyncio.create_task(run_service("strategy", strategy_main, settings, stop=stop))
    beat = await wait_until(
        lambda: redis.hget("svc:strategy", "gateway"), timeout=15, what="strategy heartbeat"
    )
    stop.set()
    assert await asyncio.wait_for(task, 20) == 0
    assert isinstance(beat, bytes)
    return beat


async def test_start_when_adapter_that_said_connected_is_gone_knows_gateway_is_down(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """A crashed adapter's last word is CONNECTED; its heartbeats have expired."""
    pub = Publisher(redis, settings, src="gateway_adapter/gw-x")
    pub.add(GW_STATUS, GatewayStatus(state=ConnState.CONNECTED, client_id=1, instance="gw-x"))
    await pub.flush()
    assert await _gateway_seen_at_start(settings, redis) == b"down"


async def test_start_when_connected_adapter_beats_only_as_standby_yet_knows_it_is_connected(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """Just after taking the lease the adapter still beats under its standby key."""
    pub = Publisher(redis, settings, src="gateway_adapter/gw-x")
    pub.add(GW_STATUS, GatewayStatus(state=ConnState.CONNECTED, client_id=1, instance="gw-x"))
    await pub.flush()
    await redis.hset("svc:gateway_adapter:standby:gw-x", mapping={"instance": "gw-x"})
    assert await _gateway_seen_at_start(settings, redis) == b"connected"


async def test_start_when_sentiment_changes_while_read_follows_the_change(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """market_data publishes BEARISH just after the strategy read BULLISH from its hash."""
    await redis.hset("md:sentiment", mapping={"state": "BULLISH"})

    class ReadThenChanged(StrategyService):
        async def _load_signals(self) -> None:
            await super()._load_signals()
            pub = Publisher(redis, settings, src="market_data/m")
            pub.add(MD_SIGNALS, SentimentSignal(state=Sentiment.BEARISH), key="sentiment")
            pub.add_hash("md:sentiment", {"state": "BEARISH"})
            await pub.flush()

    async def main(ctx: ServiceContext) -> None:
        await ReadThenChanged(ctx).start()

    stop = asyncio.Event()
    task = asyncio.create_task(run_service("strategy", main, settings, stop=stop))
    try:
        seen = await wait_until(
            lambda: _sentiment_is(redis, b"BEARISH"), timeout=8, what="strategy to see BEARISH"
        )
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0
    assert seen


async def _sentiment_is(redis: aioredis.Redis, state: bytes) -> bool:
    return await redis.hget("svc:strategy", "sentiment") == state
