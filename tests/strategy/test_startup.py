"""Start-up state: a (re)started strategy knows the gateway and the sentiment at once."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis

from services.strategy.main import StrategyService
from services.strategy.main import main as strategy_main
from shared.bus import Publisher
from shared.contract import GW_STATUS, MD_CANDIDATES, MD_SENTIMENT, MD_SIGNALS
from shared.contract.values import CandidatesHash, SentimentHash
from shared.runner import ServiceContext, run_service
from shared.schemas import (
    Candidate,
    ConnState,
    Direction,
    GatewayStatus,
    IbError,
    Sentiment,
    SentimentSignal,
)
from shared.settings import Settings
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
    await redis.hset(MD_SENTIMENT, mapping=_sentiment(Sentiment.BULLISH))

    class ReadThenChanged(StrategyService):
        async def _load_signals(self) -> None:
            await super()._load_signals()
            pub = Publisher(redis, settings, src="market_data/m")
            pub.add(MD_SIGNALS, SentimentSignal(state=Sentiment.BEARISH), key="sentiment")
            pub.add_hash(MD_SENTIMENT, _sentiment(Sentiment.BEARISH))
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


def _sentiment(state: Sentiment) -> dict[str, str]:
    """``md:sentiment`` as market_data writes it (the contract's Struct)."""
    return SentimentHash(
        state=state, since="2026-12-02T15:00:00+00:00", reason="test", data_type="live",
        updated="2026-12-02T15:00:00+00:00",
    ).fields()  # fmt: skip


async def test_start_when_market_data_wrote_signal_hashes_loads_sentiment_and_candidates(
    settings: Settings, redis: aioredis.Redis
) -> None:
    """The hashes decode with the contract's Structs: a renamed field would be an error."""
    await redis.hset(MD_SENTIMENT, mapping=_sentiment(Sentiment.BULLISH))
    rows = [{"symbol": "AAPL", "direction": "long", "score": 2.5, "roc_short": 1.0}]
    head = CandidatesHash(updated="u", count=1, data_type="live", excluded="{}",
                          json=json.dumps(rows))  # fmt: skip
    await redis.hset(MD_CANDIDATES, mapping=head.fields() | {"1": "AAPL long 2.500"})
    loaded: list[tuple[Sentiment | None, list[Candidate]]] = []

    class Loaded(StrategyService):
        async def _load_signals(self) -> None:
            await super()._load_signals()
            loaded.append((self.books.market.sentiment, list(self.books.market.candidates)))

    async def main(ctx: ServiceContext) -> None:
        await Loaded(ctx).start()

    stop = asyncio.Event()
    task = asyncio.create_task(run_service("strategy", main, settings, stop=stop))
    try:
        await wait_until(lambda: loaded, timeout=15, what="signals loaded")
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0
    assert loaded == [
        (Sentiment.BULLISH, [Candidate(symbol="AAPL", direction=Direction.LONG, score=2.5)])
    ]


async def test_start_when_sentiment_field_renamed_logs_signals_unreadable(
    settings: Settings, redis: aioredis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    """A writer that renamed ``state`` is an error naming the field, not a silent None."""
    renamed = {
        ("status" if k == "state" else k): v for k, v in _sentiment(Sentiment.BULLISH).items()
    }
    await redis.hset(MD_SENTIMENT, mapping=renamed)
    loaded: list[Sentiment | None] = []

    class Loaded(StrategyService):
        async def _load_signals(self) -> None:
            await super()._load_signals()
            loaded.append(self.books.market.sentiment)

    async def main(ctx: ServiceContext) -> None:
        await Loaded(ctx).start()

    stop = asyncio.Event()
    task = asyncio.create_task(run_service("strategy", main, settings, stop=stop))
    try:
        await wait_until(lambda: loaded, timeout=15, what="signals loaded")
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0
    assert loaded == [None]
    logged = capsys.readouterr().err
    assert "signals_unreadable" in logged and "state" in logged


async def _sentiment_is(redis: aioredis.Redis, state: bytes) -> bool:
    return await redis.hget("svc:strategy", "sentiment") == state
