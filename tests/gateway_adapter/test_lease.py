"""The lease: one holder, compare-and-set renewal, release only by the owner."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from services.gateway_adapter.lease import Lease
from services.gateway_adapter.pacing import TokenBucket


async def test_acquire_when_held_by_other_fails_and_names_holder(redis: aioredis.Redis) -> None:
    a, b = Lease(redis, "gw:lease:x", "a", 1000), Lease(redis, "gw:lease:x", "b", 1000)
    assert await a.try_acquire() and not await b.try_acquire()
    assert b.holder.startswith("a/") and a.held and not b.held


async def test_renew_when_lease_expired_and_taken_never_extends_new_owner(
    redis: aioredis.Redis,
) -> None:
    a, b = Lease(redis, "gw:lease:x", "a", 200), Lease(redis, "gw:lease:x", "b", 5000)
    assert await a.try_acquire()
    await redis.delete("gw:lease:x")  # a's lease lapsed
    assert await b.try_acquire()
    assert not await a.renew() and not a.held
    assert (await redis.get("gw:lease:x")).decode() == b.token
    assert 4000 < await redis.pttl("gw:lease:x") <= 5000  # untouched by a's renew


async def test_release_when_not_owner_leaves_lease(redis: aioredis.Redis) -> None:
    a, b = Lease(redis, "gw:lease:x", "a", 5000), Lease(redis, "gw:lease:x", "b", 5000)
    assert await a.try_acquire()
    await b.release()
    assert await redis.get("gw:lease:x") == a.token.encode()
    await a.release()
    assert await redis.get("gw:lease:x") is None


async def test_keep_when_lease_stolen_calls_on_lost(redis: aioredis.Redis) -> None:
    a = Lease(redis, "gw:lease:x", "a", 300)
    assert await a.try_acquire()
    lost: list[str] = []
    keeper = asyncio.create_task(a.keep(asyncio.Event(), lost.append))
    await redis.set("gw:lease:x", "thief")
    await asyncio.wait_for(keeper, 1.0)
    assert lost and "lost" in lost[0]


async def test_take_when_over_rate_waits_for_tokens() -> None:
    bucket = TokenBucket(rate=100.0, burst=5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(25):
        await bucket.take()
    assert loop.time() - started >= 0.18  # 20 tokens beyond the burst at 100/s
