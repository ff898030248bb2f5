"""Publisher: batches share one round trip, streams stay capped, outages lose nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection
from redis.exceptions import RedisError

from shared.bus import Publisher, connect_redis
from shared.envelope import decode
from shared.redis_server import RedisHandle
from shared.schemas import ContractRef, Quote
from shared.settings import Settings
from tests.helpers import wait_until


class CountingConnection(Connection):
    """Counts what actually crosses the socket: one send per round trip."""

    sends = 0

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.sends += 1
        await super().send_packed_command(command, check_health)


def _counting_client(url: str) -> aioredis.Redis:
    pool = aioredis.ConnectionPool.from_url(url, connection_class=CountingConnection)
    return aioredis.Redis(connection_pool=pool)


def _quote(i: int) -> Quote:
    return Quote(
        contract=ContractRef(symbol=f"S{i % 50}"), bid=100.0 + i / 100, ask=100.5 + i / 100
    )


async def test_flush_when_many_entries_uses_one_round_trip_per_batch(
    redis_server: RedisHandle, settings: Settings, redis: aioredis.Redis
) -> None:
    client = _counting_client(redis_server.url)
    await client.ping()
    pub = Publisher(client, settings.model_copy(update={"publish_batch": 500}), src="t")
    for i in range(2000):
        pub.add("md:ticks", _quote(i), key=f"S{i % 50}")
    before = CountingConnection.sends
    await pub.flush()
    sends = CountingConnection.sends - before
    assert await redis.xlen("md:ticks") == 2000
    assert sends == 4, f"2000 entries at batch 500 should take 4 round trips, took {sends}"
    assert pub.round_trips == 4 and pub.published == 2000
    await client.aclose()


async def test_flush_when_hash_updates_queued_writes_them_in_same_batch(
    settings: Settings, redis: aioredis.Redis
) -> None:
    pub = Publisher(redis, settings, src="t")
    pub.add("md:ticks", _quote(1), key="S1")
    pub.add_hash("md:last:S1", {"bid": "100.01", "ask": "100.51"})
    await pub.flush()
    assert pub.round_trips == 1
    assert await redis.hgetall("md:last:S1") == {b"bid": b"100.01", b"ask": b"100.51"}


async def test_publish_when_stream_over_cap_trims_approximately(
    settings: Settings, redis: aioredis.Redis
) -> None:
    capped = settings.model_copy(update={"maxlen_ticks": 1000})
    pub = Publisher(redis, capped, src="t")
    for i in range(6000):
        pub.add("md:ticks", _quote(i))
    await pub.flush()
    length = await redis.xlen("md:ticks")
    assert 1000 <= length < 1500, length
    newest = await redis.xrevrange("md:ticks", count=1)
    assert decode(newest[0][1]).body == _quote(5999)


async def test_run_when_entries_added_flushes_within_linger(
    settings: Settings, redis: aioredis.Redis
) -> None:
    pub = Publisher(redis, settings, src="t")
    stop = asyncio.Event()
    task = asyncio.create_task(pub.run(stop))
    pub.add("md:ticks", _quote(1))
    await wait_until(lambda: redis.xlen("md:ticks"), timeout=5, what="background flush")
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_flush_when_redis_down_keeps_entries_for_retry(settings: Settings) -> None:
    dead = connect_redis("redis://127.0.0.1:1/0")
    pub = Publisher(dead, settings, src="t")
    pub.add("md:ticks", _quote(1))
    pub.add("md:ticks", _quote(2))
    with pytest.raises(RedisError):
        await pub.flush()
    assert pub.backlog == 2 and pub.errors == 1
    await dead.aclose()


async def test_flush_when_acl_refuses_one_op_drops_it_and_writes_the_rest_once(
    settings: Settings, redis: aioredis.Redis, redis_server: RedisHandle
) -> None:
    """A NOPERM is permanent: retrying would wedge the queue and repeat its batch-mates."""
    await redis.execute_command("ACL", "SETUSER", "pubtest", "on", ">pw", "~md:*", "+@all")
    client = connect_redis(redis_server.url, username="pubtest", password="pw")
    try:
        pub = Publisher(client, settings, src="t")
        pub.add("md:ticks", _quote(1))
        pub.add("orders:events", _quote(2))  # outside this user's keys
        pub.add_hash("risk:state", {"state": "ACTIVE"})  # outside too
        pub.add("md:ticks", _quote(3))
        assert await pub.flush() == 2
        assert await pub.flush() == 0  # nothing left to retry
        assert (pub.refused, pub.backlog, pub.published) == (2, 0, 2)
        assert await redis.xlen("md:ticks") == 2
        assert not await redis.exists("orders:events", "risk:state")
    finally:
        await client.aclose()
        await redis.execute_command("ACL", "DELUSER", "pubtest")
