"""Current state from a stream: the newest entry of a type, and stale deliveries."""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.bus import Publisher
from shared.bus.latest import EntryOrder, latest_entry
from shared.schemas import ConnState, GatewayStatus, IbError
from shared.settings import Settings

STREAM = "gw:status"


async def test_latest_entry_when_buried_under_other_types_finds_newest_picked(
    settings: Settings, redis: aioredis.Redis
) -> None:
    pub = Publisher(redis, settings, src="gateway_adapter/a")
    pub.add(STREAM, GatewayStatus(state=ConnState.DISCONNECTED))
    pub.add(STREAM, GatewayStatus(state=ConnState.CONNECTED, client_id=7))
    for i in range(1200):  # more than two pages of errors
        pub.add(STREAM, IbError(code=101, message="Max number of tickers", req_id=i))
    pub.add(STREAM, GatewayStatus(state=ConnState.STANDBY, instance="b"))
    await pub.flush()

    found = await latest_entry(
        redis,
        STREAM,
        GatewayStatus.TYPE,
        lambda m: m.body.state is not ConnState.STANDBY,
        limit=10_000,
    )

    assert found is not None
    assert found.body.state is ConnState.CONNECTED and found.body.client_id == 7


async def test_latest_entry_when_limit_reached_or_stream_missing_returns_none(
    settings: Settings, redis: aioredis.Redis
) -> None:
    assert await latest_entry(redis, STREAM, GatewayStatus.TYPE, bool, limit=100) is None
    pub = Publisher(redis, settings, src="gateway_adapter/a")
    pub.add(STREAM, GatewayStatus(state=ConnState.CONNECTED))
    for i in range(30):
        pub.add(STREAM, IbError(code=2104, message="farm ok", req_id=i))
    await pub.flush()

    assert await latest_entry(redis, STREAM, GatewayStatus.TYPE, bool, limit=30) is None
    assert await latest_entry(redis, STREAM, GatewayStatus.TYPE, bool, limit=31) is not None


def test_entry_order_when_older_or_same_id_arrives_reports_it_stale() -> None:
    order = EntryOrder()
    assert order.newer("1700000000000-1")
    assert not order.newer("1700000000000-1")  # redelivered
    assert not order.newer("1699999999999-5")  # older than what is held
    assert order.newer("1700000000000-2")
    assert order.newer("")  # no id (built at start-up from a heartbeat): always applied
