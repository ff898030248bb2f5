"""Order-path writes wait for a replica behind Sentinel; nothing else does.

A real primary and replica (``tests/replica_pair.py``); the replica is stalled with
SIGSTOP so a write that waited for it (``WAIT 1 <ms>``) takes the whole timeout and
is reported short, while a write that did not wait returns at once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.bus import Publisher, connect_redis
from shared.contract import MD_TICKS, ORDERS_REQUESTS
from shared.schemas import Action, ContractRef, OrderNew, Quote, Right, SecType
from shared.settings import Settings, load_settings
from tests.replica_pair import ReplicaPair, start_pair

WAIT_MS = 400
# Any syntactically valid list turns Sentinel mode on; the publisher only reads the flag
# (these tests talk to the primary directly).
SENTINEL_ON = {"redis_sentinels": "127.0.0.1:26379", "redis_replica_wait_ms": WAIT_MS}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicaPair]:
    pair = start_pair(tmp_path_factory.mktemp("pair"))
    yield pair
    pair.stop()


@pytest.fixture
async def primary(pair: ReplicaPair) -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(pair.primary.url)
    await client.flushall()  # the pair is this module's own
    yield client
    await client.aclose()


def _settings(pair: ReplicaPair, **values: Any) -> Settings:
    return load_settings(redis_url=pair.primary.url, **values)


def _order(cid: str) -> OrderNew:
    call = ContractRef(symbol="SPY", sec_type=SecType.OPT, strike=500.0, right=Right.CALL)
    return OrderNew(
        client_order_id=cid, contract=call, action=Action.BUY, quantity=1, limit_price=1.5
    )


async def test_order_request_when_sentinel_mode_is_on_the_replica_once_published(
    pair: ReplicaPair, primary: aioredis.Redis
) -> None:
    pub = Publisher(primary, _settings(pair, **SENTINEL_ON), src="strategy/t")
    entry_id = await pub.publish(ORDERS_REQUESTS, _order("c-r1"), key="c-r1")
    replica = connect_redis(pair.replica.url)
    try:
        rows: Any = await replica.xrange(ORDERS_REQUESTS)  # read at once: no polling
    finally:
        await replica.aclose()
    assert [r[0].decode() for r in rows] == [entry_id]
    assert (pub.replicas.waits, pub.replicas.short) == (1, 0)


async def test_order_request_when_replica_stalled_waits_the_timeout_and_counts_short(
    pair: ReplicaPair, primary: aioredis.Redis
) -> None:
    pub = Publisher(primary, _settings(pair, **SENTINEL_ON), src="strategy/t")
    with pair.replica_stalled():
        t0 = time.monotonic()
        await pub.publish(ORDERS_REQUESTS, _order("c-r2"), key="c-r2")
        elapsed = time.monotonic() - t0
    assert elapsed >= WAIT_MS / 1000 * 0.9, f"returned after {elapsed:.3f}s without the replica"
    assert (pub.replicas.waits, pub.replicas.short) == (1, 1)
    assert await primary.xlen(ORDERS_REQUESTS) == 1  # the write stands on the primary


async def test_tick_when_replica_stalled_publish_does_not_wait(
    pair: ReplicaPair, primary: aioredis.Redis
) -> None:
    pub = Publisher(primary, _settings(pair, **SENTINEL_ON), src="gateway_adapter/t")
    with pair.replica_stalled():
        t0 = time.monotonic()
        await pub.publish(MD_TICKS, Quote(contract=ContractRef(symbol="SPY"), bid=1.0, ask=1.1))
        elapsed = time.monotonic() - t0
    assert elapsed < WAIT_MS / 1000 / 2
    assert pub.replicas.waits == 0


async def test_order_request_when_sentinel_off_does_not_wait(
    pair: ReplicaPair, primary: aioredis.Redis
) -> None:
    pub = Publisher(primary, _settings(pair, redis_replica_wait_ms=WAIT_MS), src="strategy/t")
    with pair.replica_stalled():
        t0 = time.monotonic()
        await pub.publish(ORDERS_REQUESTS, _order("c-r3"), key="c-r3")
        elapsed = time.monotonic() - t0
    assert elapsed < WAIT_MS / 1000 / 2
    assert pub.replicas.waits == 0
