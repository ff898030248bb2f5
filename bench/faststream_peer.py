"""Peer: the same publish + consume work through FastStream's Redis Streams broker.

End to end: messages published one call each (FastStream's publish is one XADD per
call) and consumed by a consumer-group subscriber, vs our batched publisher and
GroupConsumer. Reported as messages/s end to end; goal: ours >= 10x FastStream.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.bus_publish import quotes
from bench.common import Timer, progress, rate_result
from shared.bus import GroupConsumer, Publisher, connect_redis
from shared.envelope import Message
from shared.settings import load_settings

N_OURS = 50_000
N_PEER = 5_000


async def _faststream(url: str) -> float:
    from faststream.redis import RedisBroker, StreamSub

    broker = RedisBroker(url, logger=None)
    seen = 0
    done = asyncio.Event()

    @broker.subscriber(
        stream=StreamSub("bench:peer", group="peer", consumer="c1", polling_interval=10)
    )
    async def handle(body: dict[str, Any]) -> None:
        nonlocal seen
        seen += 1
        if seen == N_PEER:
            done.set()

    await broker.start()
    payloads = [
        {"symbol": q.contract.symbol, "bid": q.bid, "ask": q.ask, "last": q.last}
        for q in quotes(N_PEER)
    ]
    t = Timer()
    for p in payloads:
        await broker.publish(p, stream="bench:peer")
    await asyncio.wait_for(done.wait(), 180)
    elapsed = t.elapsed
    await broker.stop()
    return N_PEER / elapsed


async def _ours(url: str) -> float:
    settings = load_settings(redis_url=url, consume_block_ms=50, maxlen_ticks=1_000_000)
    redis = connect_redis(url)
    await redis.xgroup_create("bench:ours", "ours", "$", mkstream=True)
    seen = 0
    done = asyncio.Event()

    async def handle(msg: Message[Any]) -> None:
        nonlocal seen
        seen += 1
        if seen == N_OURS:
            done.set()

    consumer = GroupConsumer(
        redis, settings, stream="bench:ours", group="ours", consumer="c1", handler=handle
    )
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    pub = Publisher(redis, settings, src="bench/1")
    items = quotes(N_OURS)
    t = Timer()
    for start in range(0, N_OURS, 500):
        for q in items[start : start + 500]:
            pub.add("bench:ours", q, key=q.contract.symbol)
        await pub.flush()
    await asyncio.wait_for(done.wait(), 180)
    elapsed = t.elapsed
    stop.set()
    await task
    await redis.aclose()
    return N_OURS / elapsed


async def run(url: str) -> dict[str, Any]:
    progress(f"faststream_peer: FastStream end to end, {N_PEER} messages")
    peer = await _faststream(url)
    progress(f"faststream_peer: ours end to end, {N_OURS} messages")
    ours = await _ours(url)
    return rate_result(
        ours,
        peer,
        "messages/s end to end",
        ours_messages=N_OURS,
        peer_messages=N_PEER,
        goal=">= 10",
    )
