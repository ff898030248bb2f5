"""market_data service over a real Redis, with the test playing the gateway's part.

The end-to-end version with the simulator and the adapter lives in
tests/integration; this one pins the service's own I/O contract.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.market_data.main import HISTORY_RETRY_S, MIN_REREQUEST_S
from services.market_data.main import main as market_data_main
from shared.bus import Publisher
from shared.contract import GW_COMMANDS, GW_STATUS, MD_SIGNALS, MD_TICKS, SYS_DLQ, reply_stream
from shared.envelope import decode
from shared.runner import run_service
from shared.schemas import (
    Bar,
    ConnState,
    ContractRef,
    GatewayStatus,
    HistoryBars,
    HistoryRequest,
    Quote,
    SecType,
    Subscribe,
)
from shared.settings import Settings
from tests.helpers import wait_until

REPLIES = reply_stream("market_data")

S = 1_000_000_000
PATHS = {
    "SPY": (100.0, 0.1),
    "QQQ": (200.0, 0.3),
    "VIX": (15.0, 0.0),
    "AAPL": (100.0, 1.0),
    "MSFT": (300.0, -1.0),
    "NVDA": (50.0, 0.2),
}


def _bars(symbol: str) -> list[Bar]:
    start, step = PATHS[symbol]
    return [
        Bar(
            symbol=symbol,
            start_ns=i * 60 * S,
            interval_s=60,
            open=start + step * i,
            high=start + step * i,
            low=start + step * i,
            close=start + step * i,
        )
        for i in range(40)
    ]


@pytest.fixture
def history_timeout_s() -> float:
    return 120.0


@pytest.fixture
async def service(
    settings: Settings, redis: aioredis.Redis, history_timeout_s: float
) -> AsyncIterator[asyncio.Event]:
    cfg = settings.model_copy(
        update={
            "md_watchlist": ",".join(PATHS),
            "md_eval_interval_s": 0.2,
            "md_stale_s": 30.0,
            "md_history_timeout_s": history_timeout_s,
        }
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_service("market_data", market_data_main, cfg, stop=stop))
    yield stop
    stop.set()
    assert await asyncio.wait_for(task, 15) == 0


async def _commands(redis: aioredis.Redis) -> list[Any]:
    return [decode(f).body for _, f in await redis.xrange(GW_COMMANDS)]


async def _play_gateway(redis: aioredis.Redis, settings: Settings) -> None:
    """Answer the history requests and send one live quote per symbol."""
    pub = Publisher(redis, settings, src="fake-gateway")
    for cmd in await _commands(redis):
        if isinstance(cmd, HistoryRequest):
            sym = cmd.contract.symbol
            pub.add(REPLIES, HistoryBars(request_id=cmd.request_id, symbol=sym, bars=_bars(sym)))
    for sym, (start, step) in PATHS.items():
        px = start + step * 39
        sec = SecType.IND if sym == "VIX" else SecType.STK
        quote = Quote(
            contract=ContractRef(symbol=sym, sec_type=sec),
            last=px,
            bid=None if sym == "VIX" else px - 0.01,
            ask=None if sym == "VIX" else px + 0.01,
            ib_ts=40 * 60 * S + S,
        )
        pub.add(MD_TICKS, quote, key=sym)
    await pub.flush()


async def test_start_when_gateway_answers_publishes_sentiment_and_candidates(
    service: asyncio.Event, settings: Settings, redis: aioredis.Redis
) -> None:
    commands = await wait_until(lambda: _commands(redis), what="start-up requests")
    subscribe = next(c for c in commands if isinstance(c, Subscribe))
    assert [c.symbol for c in subscribe.contracts] == list(PATHS)
    assert next(c for c in subscribe.contracts if c.symbol == "VIX").sec_type is SecType.IND
    await wait_until(lambda: _history_requests(redis, 6), what="six history requests")
    await wait_until(lambda: _groups_ready(redis), what="consumer groups")
    await _play_gateway(redis, settings)
    sentiment = await wait_until(lambda: redis.hgetall("md:sentiment"), what="md:sentiment")
    assert sentiment[b"state"] == b"BULLISH" and b"trend_pct" in sentiment
    # Early evaluations see part of the warm-up; the screen settles once all of it is in.
    candidates = await wait_until(lambda: _ranked_first(redis, b"AAPL long"), what="AAPL first")
    assert candidates[b"2"].startswith(b"MSFT short") and b"index" in candidates[b"excluded"]
    window = await redis.lrange("md:bars:AAPL", 0, -1)
    assert len(window) == 40 and json.loads(window[-1])["c"] == 139.0  # warm-up in the chart
    types = [f[b"type"] for _, f in await redis.xrange(MD_SIGNALS)]
    assert b"sentiment" in types and b"candidates" in types


async def test_tick_when_malformed_goes_to_dlq_and_service_keeps_going(
    service: asyncio.Event, redis: aioredis.Redis
) -> None:
    await wait_until(lambda: _commands(redis), what="service started")
    await wait_until(lambda: _groups_ready(redis), what="consumer groups")
    await redis.xadd(
        MD_TICKS,
        {
            b"type": b"quote",
            b"v": b"1",
            b"src": b"x",
            b"ts": b"1",
            b"body": b"\x81\xa3bid\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
        },
    )
    dead = await wait_until(lambda: redis.xrange(SYS_DLQ), what="dead letter")
    assert dead[0][1][b"stream"] == MD_TICKS.encode() and b"invalid body" in dead[0][1][b"reason"]
    assert await redis.exists("svc:market_data")


async def test_status_when_gateway_reconnects_requests_universe_again(
    service: asyncio.Event, settings: Settings, redis: aioredis.Redis
) -> None:
    first = await wait_until(lambda: _commands(redis), what="start-up requests")
    await wait_until(lambda: _groups_ready(redis), what="consumer groups")
    # Deliberate: re-requests are rate limited to one per MIN_REREQUEST_S after the last.
    await asyncio.sleep(MIN_WAIT := MIN_REREQUEST_S + 0.1)
    pub = Publisher(redis, settings, src="fake-gateway")
    for state in (ConnState.CONNECTED, ConnState.DISCONNECTED, ConnState.CONNECTED):
        await pub.publish(GW_STATUS, GatewayStatus(state=state, client_id=1))
    again = await wait_until(
        lambda: _more_subscribes(redis, len([c for c in first if isinstance(c, Subscribe)])),
        timeout=10 + MIN_WAIT,
        what="re-request after reconnect",
    )
    assert again


async def test_history_when_refused_before_gateway_connects_is_asked_again_and_warms_up(
    service: asyncio.Event, settings: Settings, redis: aioredis.Redis
) -> None:
    # The start-up race CI caught: market_data asks before the adapter is logged on,
    # every history request is refused, and CONNECTED arrives within MIN_REREQUEST_S.
    first = await wait_until(lambda: _history_requests(redis, 6), what="start-up history")
    await wait_until(lambda: _groups_ready(redis), what="consumer groups")
    pub = Publisher(redis, settings, src="fake-gateway")
    await pub.publish(GW_STATUS, GatewayStatus(state=ConnState.CONNECTING, client_id=1))
    for cmd in first:
        sym = cmd.contract.symbol
        pub.add(
            REPLIES,
            HistoryBars(
                request_id=cmd.request_id, symbol=sym, bars=[], error="gateway not connected"
            ),
        )
    await pub.flush()
    # Refused while the gateway is known to be away: nothing is asked again yet.
    await asyncio.sleep(HISTORY_RETRY_S[0] + 0.5)  # deliberate: proving nothing is sent
    assert len(await _history_requests(redis, 0)) == 6
    await pub.publish(GW_STATUS, GatewayStatus(state=ConnState.CONNECTED, client_id=1))
    again = await wait_until(lambda: _history_requests(redis, 12), timeout=10, what="retry")
    retried = again[6:]
    assert sorted(c.contract.symbol for c in retried) == sorted(PATHS)
    assert {c.request_id for c in retried}.isdisjoint(c.request_id for c in first)
    subscribes = [c for c in await _commands(redis) if isinstance(c, Subscribe)]
    assert len(subscribes) == 1  # the subscription itself was never refused
    await _play_gateway(redis, settings)  # answers every request; only the newest count
    sentiment = await wait_until(lambda: redis.hgetall("md:sentiment"), what="md:sentiment")
    assert sentiment[b"state"] == b"BULLISH"
    assert await wait_until(lambda: _ranked_first(redis, b"AAPL long"), what="warm screen")


async def _history_requests(redis: aioredis.Redis, at_least: int) -> list[HistoryRequest]:
    found = [c for c in await _commands(redis) if isinstance(c, HistoryRequest)]
    return found if len(found) >= at_least else []


async def _more_subscribes(redis: aioredis.Redis, before: int) -> bool:
    return len([c for c in await _commands(redis) if isinstance(c, Subscribe)]) > before


async def _groups_ready(redis: aioredis.Redis) -> bool:
    for stream in (MD_TICKS, GW_STATUS):
        if not await redis.exists(stream):
            return False
        groups = await redis.xinfo_groups(stream)
        if not any(g["name"] == b"market_data" for g in groups):
            return False
    return True


async def _ranked_first(redis: aioredis.Redis, prefix: bytes) -> dict[bytes, bytes] | None:
    fields = await redis.hgetall("md:candidates")
    return fields if fields.get(b"1", b"").startswith(prefix) else None


async def test_tick_when_type_does_not_belong_on_md_ticks_goes_to_dlq(
    service: asyncio.Event, settings: Settings, redis: aioredis.Redis
) -> None:
    await wait_until(lambda: _groups_ready(redis), what="consumer groups")
    pub = Publisher(redis, settings, src="somebody")
    await pub.publish(MD_TICKS, _bars("SPY")[0], key="SPY")
    dead = await wait_until(lambda: redis.xrange(SYS_DLQ), what="dead letter")
    assert dead[0][1][b"reason"] == b"type bar does not belong on md:ticks"


@pytest.mark.parametrize("history_timeout_s", [0.5])
async def test_history_when_gateway_never_answers_times_out_and_is_asked_again(
    service: asyncio.Event, settings: Settings, redis: aioredis.Redis
) -> None:
    # Before the helper a lost reply left the symbol cold for good: no timeout, no retry.
    first = await wait_until(lambda: _history_requests(redis, 6), what="start-up history")
    assert {c.requester for c in first} == {"market_data"}
    assert {c.reply_to for c in first} == {REPLIES}
    again = await wait_until(lambda: _history_requests(redis, 12), timeout=10, what="retry")
    assert sorted(c.contract.symbol for c in again[6:]) == sorted(PATHS)
    assert {c.request_id for c in again[6:]}.isdisjoint(c.request_id for c in first)


async def test_history_when_gateway_disconnects_fails_pending_and_asks_again_on_connect(
    service: asyncio.Event,
    settings: Settings,
    redis: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = await wait_until(lambda: _history_requests(redis, 6), what="start-up history")
    await wait_until(lambda: _groups_ready(redis), what="consumer groups")
    pub = Publisher(redis, settings, src="fake-gateway")
    await pub.publish(GW_STATUS, GatewayStatus(state=ConnState.CONNECTED, client_id=1))
    await pub.publish(GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED, client_id=1))

    def failed() -> list[Any]:  # the pending requests fail at once, not after 120 s
        return [r.msg for r in caplog.records if "'requests_failed'" in str(r.msg)]

    (event,) = await wait_until(failed, timeout=5, what="pending history failed on disconnect")
    assert event["requests"] == 6 and event["reason"] == "gateway disconnected"
    await pub.publish(GW_STATUS, GatewayStatus(state=ConnState.CONNECTED, client_id=1))
    again = await wait_until(lambda: _history_requests(redis, 12), timeout=10, what="retry")
    assert sorted(c.contract.symbol for c in again[6:]) == sorted(PATHS)
    assert {c.request_id for c in again[6:]}.isdisjoint(c.request_id for c in first)
    await _play_gateway(redis, settings)  # answers every request; only the newest count
    assert await wait_until(lambda: _ranked_first(redis, b"AAPL long"), what="warm screen")
