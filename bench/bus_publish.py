"""Bus publish: our batched envelope publisher vs raw pipelined XADD of the same bytes.

Ours includes building and encoding the envelope; the baseline gets the encoded
fields ready-made, so the ratio shows everything our layer costs. Goal: >= 0.8.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from bench.common import Timer, best_of, progress, rate_result
from shared.bus import Publisher, connect_redis
from shared.envelope import encode
from shared.schemas import ContractRef, Quote
from shared.settings import load_settings

N = 50_000
BATCH = 500
ROUNDS = 3


def quotes(n: int) -> list[Quote]:
    contracts = [ContractRef(symbol=f"S{i}", con_id=1000 + i) for i in range(100)]
    return [
        Quote(
            contract=contracts[i % 100],
            bid=100 + i % 7 * 0.01,
            ask=100.02 + i % 7 * 0.01,
            last=100.01,
            bid_size=3,
            ask_size=4,
            volume=1e6 + i,
        )
        for i in range(n)
    ]


async def _ours(redis: aioredis.Redis, url: str, items: list[Quote]) -> float:
    settings = load_settings(redis_url=url, publish_batch=BATCH, maxlen_ticks=1_000_000)
    pub = Publisher(redis, settings, src="bench/1")
    await redis.delete("md:ticks")
    t = Timer()
    for start in range(0, len(items), BATCH):
        for q in items[start : start + BATCH]:
            pub.add("md:ticks", q, key=q.contract.symbol)
        await pub.flush()
    return len(items) / t.elapsed


async def _raw(redis: aioredis.Redis, fields: list[dict[bytes, bytes]]) -> float:
    await redis.delete("md:ticks")
    t = Timer()
    for start in range(0, len(fields), BATCH):
        pipe = redis.pipeline(transaction=False)
        for f in fields[start : start + BATCH]:
            pipe.xadd("md:ticks", f, maxlen=1_000_000, approximate=True)  # type: ignore[arg-type]
        await pipe.execute()
    return len(fields) / t.elapsed


async def run(url: str) -> dict[str, Any]:
    redis = connect_redis(url)
    stock = aioredis.Redis.from_url(url)  # the baseline: plain redis-py, stock settings
    items = quotes(N)
    fields = [encode(q, "bench/1", q.contract.symbol) for q in items]
    ours, raw = [], []
    for r in range(ROUNDS):
        progress(f"bus_publish round {r + 1}/{ROUNDS}: {N} entries, batch {BATCH}")
        raw.append(await _raw(stock, fields))
        ours.append(await _ours(redis, url, items))
    await redis.aclose()
    await stock.aclose()
    return rate_result(
        best_of(ours), best_of(raw), "entries/s", entries=N, batch=BATCH, goal=">= 0.8"
    )
