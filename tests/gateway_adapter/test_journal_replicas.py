"""The order journal behind Sentinel: a write returns once a replica has it.

A real primary and replica (``tests/replica_pair.py``). The journal's Lua write and
``WAIT 1`` share one pipeline (one connection: WAIT counts that connection's writes).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.gateway_adapter.journal import OrderJournal, Write, seen_guard
from shared.bus import connect_redis
from shared.bus.replicas import ReplicaWait
from shared.contract import ORDERS_EVENTS, ORDERS_SEEN
from shared.schemas import Action, ContractRef, OrderEvent, OrderEventKind
from shared.settings import load_settings
from tests.replica_pair import ReplicaPair, start_pair

WAIT_MS = 400


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


def _journal(pair: ReplicaPair, redis: aioredis.Redis) -> OrderJournal:
    settings = load_settings(
        redis_url=pair.primary.url,
        redis_sentinels="127.0.0.1:26379",  # Sentinel mode on; the client is direct
        redis_replica_wait_ms=WAIT_MS,
    )
    return OrderJournal(redis, "gateway_adapter/t", 1000, ReplicaWait(settings))


def _fill(cid: str) -> OrderEvent:
    return OrderEvent(
        client_order_id=cid,
        kind=OrderEventKind.FILL,
        contract=ContractRef(symbol="SPY"),
        action=Action.BUY,
        fill_qty=1,
        fill_price=500.0,
        filled_total=1,
        exec_id=f"e-{cid}",
    )


async def test_journal_write_when_sentinel_mode_is_on_the_replica_once_recorded(
    pair: ReplicaPair, primary: aioredis.Redis
) -> None:
    journal = _journal(pair, primary)
    assert await journal.record(Write([_fill("c-j1")], guard=seen_guard("c-j1", "x")))
    replica = connect_redis(pair.replica.url)
    try:  # read at once: the write returned, so the replica has it
        rows: Any = await replica.xrange(ORDERS_EVENTS)
        seen = await replica.hget(ORDERS_SEEN, "c-j1")
    finally:
        await replica.aclose()
    assert len(rows) == 1 and seen == b"x"
    assert not await journal.record(Write([_fill("c-j1")], guard=seen_guard("c-j1", "x")))


async def test_journal_write_when_replica_stalled_waits_the_timeout_and_counts_short(
    pair: ReplicaPair, primary: aioredis.Redis
) -> None:
    journal = _journal(pair, primary)
    with pair.replica_stalled():
        t0 = time.monotonic()
        assert await journal.record(Write([_fill("c-j2")]))
        elapsed = time.monotonic() - t0
    assert elapsed >= WAIT_MS / 1000 * 0.9, f"returned after {elapsed:.3f}s without the replica"
    replicas = journal._replicas
    assert replicas is not None and (replicas.waits, replicas.short) == (1, 1)
    assert await primary.xlen(ORDERS_EVENTS) == 1  # the write stands on the primary
