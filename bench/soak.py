"""Soak: the whole simulated system for a bounded time; memory growth and stream caps.

The simulator (in this process) paces its steps so that all open lines together
(stocks, the VIX index, the strategy's options) send about 2,000 quotes/s; the four
services run as subprocesses. Every few seconds the RSS of each
service (``/proc`` via psutil), Redis' ``used_memory`` and every stream's length are
sampled. Growth is judged after a warm-up (history loaded, streams filled to their
caps): ``baseline`` = summed RSS right after warm-up, ``ours`` = summed RSS at the
end, ``ratio`` = ours / baseline (goal: growth under 10 %, i.e. ratio < 1.10), plus a
least-squares slope in MB/min per service. A service growing more than 10 % or
faster than 2 MB/min is flagged as a possible leak (a short soak cannot prove one;
it bounds it). ``md:ticks`` is capped low (``OPTBOT_MAXLEN_TICKS`` 20,000) so the cap
is exercised within the run. Also checked: zero ``sys:dlq`` entries, zero lost
orders (every ``order.new`` has at least one ``order.event``).

    BENCH_SOAK_S=120 .venv/bin/python -m bench soak   # default 600 s (10 minutes)
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psutil
import redis.asyncio as aioredis

from bench.common import progress
from bench.system import FASTEST_STEP_S, QUOTES_PER_S, System, start_system, ticks_added
from shared.contract import ALL_STREAMS, MD_TICKS, ORDERS_EVENTS, ORDERS_REQUESTS, SYS_DLQ
from shared.envelope import decode
from shared.schemas import OrderEvent, OrderNew
from shared.settings import load_settings

SECONDS = float(os.environ.get("BENCH_SOAK_S", "600"))
WARMUP_S = float(os.environ.get("BENCH_SOAK_WARMUP_S", "20"))
SAMPLE_S = 5.0
MAXLEN_TICKS = 20_000
LEAK_PCT = 10.0
LEAK_MB_PER_MIN = 2.0
MB = 1024 * 1024


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    cov = sum((t - mx) * (v - my) for t, v in points)
    return cov / var * 60.0 if var else 0.0


async def _sample(system: System, redis: aioredis.Redis) -> dict[str, Any]:
    rss: dict[str, float] = {}
    for name, pid in system.pids().items():
        try:
            rss[name] = psutil.Process(pid).memory_info().rss / MB
        except psutil.NoSuchProcess:
            rss[name] = 0.0
    info: Any = await redis.info("memory")
    pipe = redis.pipeline(transaction=False)
    for s in ALL_STREAMS:
        pipe.xlen(s)
    for s in ALL_STREAMS:
        pipe.memory_usage(s, samples=0)  # every node: exact
    replies = await pipe.execute()
    lengths = dict(zip(ALL_STREAMS, replies[: len(ALL_STREAMS)], strict=True))
    streams_mb = sum(int(b or 0) for b in replies[len(ALL_STREAMS) :]) / MB
    used = info["used_memory"] / MB
    return {
        "rss": rss,
        "redis_mb": used,
        "redis_streams_mb": streams_mb,
        "redis_other_mb": used - streams_mb,
        "streams": lengths,
    }


async def _lost_orders(redis: aioredis.Redis) -> tuple[int, int]:
    """(order.new sent, of which without any order.event)."""
    requests: Any = await redis.xrange(ORDERS_REQUESTS)
    events: Any = await redis.xrange(ORDERS_EVENTS)
    sent: set[str] = set()
    for _i, fields in requests:
        body = decode(fields).body
        if isinstance(body, OrderNew):
            sent.add(body.client_order_id)
    answered: set[str] = set()
    for _i, fields in events:
        body = decode(fields).body
        if isinstance(body, OrderEvent):
            answered.add(body.client_order_id)
    return len(sent), len(sent - answered)


def _summary(samples: list[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """Per service: RSS after warm-up, final, growth % and slope; flagged leaks."""
    warm = samples[0][1]
    final = samples[-1][1]
    services: dict[str, Any] = {}
    for name, start_mb in warm["rss"].items():
        end_mb = final["rss"][name]
        growth = (end_mb / start_mb - 1) * 100 if start_mb else 0.0
        slope = slope_per_min([(t, s["rss"][name]) for t, s in samples])
        services[name] = {
            "warm_mb": round(start_mb, 1),
            "final_mb": round(end_mb, 1),
            "growth_pct": round(growth, 1),
            "mb_per_min": round(slope, 2),
            "leak_suspected": growth > LEAK_PCT or slope > LEAK_MB_PER_MIN,
        }
    redis_slope = slope_per_min([(t, s["redis_mb"]) for t, s in samples])
    services["redis"] = {
        "warm_mb": round(warm["redis_mb"], 1),
        "final_mb": round(final["redis_mb"], 1),
        "growth_pct": round((final["redis_mb"] / warm["redis_mb"] - 1) * 100, 1),
        "mb_per_min": round(redis_slope, 2),
        # Capped streams fill toward their caps during a soak (bounded by design, and
        # checked separately); a leak is growth in everything else.
        "streams_mb": [round(warm["redis_streams_mb"], 1), round(final["redis_streams_mb"], 1)],
        "other_mb": [round(warm["redis_other_mb"], 1), round(final["redis_other_mb"], 1)],
        "leak_suspected": final["redis_other_mb"] > warm["redis_other_mb"] * (1 + LEAK_PCT / 100),
    }
    return services


async def run(url: str) -> dict[str, Any]:
    progress(f"soak: system at ~2,000 quotes/s, {WARMUP_S:.0f} s warm-up + {SECONDS:.0f} s")
    system = await start_system(
        url,
        tick_interval=FASTEST_STEP_S,
        quotes_per_sec=QUOTES_PER_S,
        maxlen_ticks=MAXLEN_TICKS,
    )
    redis = aioredis.Redis.from_url(url)
    samples: list[tuple[float, dict[str, Any]]] = []
    max_ticks = 0
    try:
        await asyncio.sleep(WARMUP_S)
        t0 = time.monotonic()
        ticks0 = await ticks_added(redis)
        while True:
            now = time.monotonic() - t0
            sample = await _sample(system, redis)
            samples.append((now, sample))
            max_ticks = max(max_ticks, sample["streams"][MD_TICKS])
            total = sum(sample["rss"].values())
            progress(
                f"soak: {now:4.0f}/{SECONDS:.0f} s, RSS {total:6.1f} MB over services, "
                f"redis {sample['redis_mb']:5.1f} MB, md:ticks {sample['streams'][MD_TICKS]}"
            )
            if now >= SECONDS:
                break
            await asyncio.sleep(min(SAMPLE_S, SECONDS - now + 0.01))
        elapsed = time.monotonic() - t0
        added = await ticks_added(redis) - ticks0
        dead = [n for n, ok in system.alive().items() if not ok]
        dlq = await redis.xlen(SYS_DLQ)
        orders, lost = await _lost_orders(redis)
    finally:
        await redis.aclose()
        codes = await system.stop()
    services = _summary(samples)
    warm_total = sum(samples[0][1]["rss"].values())
    final_total = sum(samples[-1][1]["rss"].values())
    leaks = [n for n, s in services.items() if s["leak_suspected"]]
    caps = load_settings(maxlen_ticks=MAXLEN_TICKS)
    over_cap = {  # MAXLEN ~ trims whole nodes: a little over the cap is normal
        name: n for name, n in samples[-1][1]["streams"].items() if n > caps.maxlen(name) * 1.2
    }
    capped = max_ticks <= MAXLEN_TICKS * 1.2 and not over_cap
    return {
        "ours": round(final_total, 1),
        "baseline": round(warm_total, 1),
        "unit": "MB RSS, all services: end vs after warm-up",
        "ratio": round(final_total / warm_total, 3) if warm_total else None,
        "goal": "< 1.10 (growth under 10 %), streams capped, 0 DLQ, 0 lost orders",
        "met": not leaks and capped and dlq == 0 and lost == 0 and not dead,
        "services": services,
        "leaks_suspected": leaks,
        "quotes_per_s": round(added / elapsed, 1),
        "md_ticks_max_len": max_ticks,
        "md_ticks_cap": MAXLEN_TICKS,
        "streams_capped": capped,
        "streams_over_cap": over_cap,
        "stream_lengths_final": samples[-1][1]["streams"],
        "dlq_entries": dlq,
        "orders": orders,
        "lost_orders": lost,
        "services_died": dead,
        "exit_codes": codes,
        "soak_s": SECONDS,
        "warmup_s": WARMUP_S,
    }
