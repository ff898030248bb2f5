"""Bus consume: our consumer-group reader (decode + handler + ack) vs raw XREADGROUP + XACK.

Same entries, same Redis, same batch size; the baseline does not decode. Goal: >= 0.8.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

from bench.bus_publish import quotes
from bench.common import Timer, best_of, progress, rate_result
from shared.bus import GroupConsumer, Publisher, connect_redis
from shared.envelope import Message
from shared.settings import load_settings

N = 50_000
BATCH = 500
ROUNDS = 3


async def _fill(redis: aioredis.Redis, url: str, stream: str) -> None:
    settings = load_settings(redis_url=url, maxlen_ticks=1_000_000)
    pub = Publisher(redis, settings, src="bench/1")
    for q in quotes(N):
        pub.add(stream, q, key=q.contract.symbol)
    await pub.flush()


async def _ours(redis: aioredis.Redis, url: str, stream: str) -> float:
    settings = load_settings(redis_url=url, consume_batch=BATCH, consume_block_ms=50)
    seen = 0
    done = asyncio.Event()

    async def handle(msg: Message[Any]) -> None:
        nonlocal seen
        seen += 1
        if seen == N:
            done.set()

    consumer = GroupConsumer(
        redis, settings, stream=stream, group="ours", consumer="c", handler=handle, start_id="0"
    )
    stop = asyncio.Event()
    t = Timer()
    task = asyncio.create_task(consumer.run(stop))
    await asyncio.wait_for(done.wait(), 120)
    elapsed = t.elapsed
    stop.set()
    await task
    return N / elapsed


async def _raw(redis: aioredis.Redis, stream: str) -> float:
    await redis.xgroup_create(stream, "raw", "0")
    seen = 0
    t = Timer()
    while seen < N:
        reply: Any = await redis.xreadgroup("raw", "c", {stream: ">"}, count=BATCH, block=50)
        for _s, entries in reply or []:
            ids = [entry_id for entry_id, _fields in entries]
            await redis.xack(stream, "raw", *ids)
            seen += len(ids)
    return N / t.elapsed


async def run(url: str) -> dict[str, Any]:
    redis = connect_redis(url)
    stock = aioredis.Redis.from_url(url)  # the baseline: plain redis-py, stock settings
    ours, raw = [], []
    for r in range(ROUNDS):
        stream = f"bench:consume:{r}"
        progress(f"bus_consume round {r + 1}/{ROUNDS}: {N} entries, batch {BATCH}")
        await _fill(redis, url, stream)
        raw.append(await _raw(stock, stream))
        ours.append(await _ours(redis, url, stream))
        await redis.delete(stream)
    await redis.aclose()
    await stock.aclose()
    return rate_result(
        best_of(ours), best_of(raw), "entries/s", entries=N, batch=BATCH, goal=">= 0.8"
    )
