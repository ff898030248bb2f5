"""End-to-end latency through the real system, next to a bare Redis round trip.

What is timed (all clocks: ``time.time_ns()``, CLOCK_REALTIME of this one host, which
every process shares; the simulator runs in this process so its steps are stamped):

- ``quote`` (the headline): the simulator's market step that moves a contract's
  bid/ask (stamped just before the step's frames are written to the TWS socket) ->
  the first ``md:ticks`` entry carrying that new bid/ask, received by a probe
  consumer-group reader in this process (the same ``GroupConsumer`` path the
  strategy reads; ``md:last:{SYM}`` is written in the same pipeline as the entry, so
  it is visible at the same moment). Split into sim -> adapter (``ib_ts``: ib_async's
  receipt time), adapter -> Redis (envelope ``ts``: publish time, includes the
  publish linger) and Redis -> reader.
- ``bar``: the ``md:ticks`` entry (envelope ``ts``) of the first quote of a symbol
  past a bar's end -> market_data's ``bar`` on ``md:signals`` (envelope ``ts``).
- ``order``: the latest ``candidates`` signal naming a symbol -> the strategy's
  ``order.new`` for it (includes the option-chain request and the strategy's wait for
  the chain's quotes, ``OPTBOT_STRAT_QUOTE_WAIT_S``: a design wait, reported, no goal).

Baseline, same Redis, same run: one entry XADDed at a time by plain redis-py and read
by a blocking XREADGROUP on another connection, at the same rate; sender stamp ->
receipt. ``ratio`` = ours p50 / baseline p50. Goal (issue 9): quote p99 < 10 ms.

    BENCH_E2E_S=60 .venv/bin/python -m bench e2e_latency
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import defaultdict, deque
from typing import Any

import redis.asyncio as aioredis

from bench.common import progress
from bench.system import WATCHLIST, start_system
from services.tws_simulator import Simulator
from shared.bus import GroupConsumer, connect_redis
from shared.envelope import Message
from shared.schemas import Bar, CandidatesSignal, OrderNew, Quote
from shared.settings import load_settings
from shared.streams import MD_SIGNALS, MD_TICKS, ORDERS_REQUESTS

SECONDS = float(os.environ.get("BENCH_E2E_S", "60"))
QUOTES_PER_S = 2000  # the fixed rate
SYMBOLS = [s for s in WATCHLIST.split(",") if s != "VIX"]  # the index has no bid/ask
BASELINE_SECONDS = 5.0


def percentiles(samples_ns: list[int]) -> dict[str, Any]:
    """p50/p99/max in ms of nanosecond samples."""
    if not samples_ns:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None, "samples": 0}
    s = sorted(samples_ns)
    return {
        "p50_ms": round(s[len(s) // 2] / 1e6, 3),
        "p99_ms": round(s[min(len(s) - 1, int(len(s) * 0.99))] / 1e6, 3),
        "max_ms": round(s[-1] / 1e6, 3),
        "samples": len(s),
    }


async def baseline(url: str, rate: float, seconds: float) -> list[int]:
    """Bare redis-py: one XADD per entry -> blocking XREADGROUP on another connection."""
    writer = aioredis.Redis.from_url(url)
    reader = aioredis.Redis.from_url(url)
    stream = "bench:e2e:baseline"
    await writer.delete(stream)
    await writer.xgroup_create(stream, "g", "$", mkstream=True)
    samples: list[int] = []
    done = asyncio.Event()

    async def read() -> None:
        while not done.is_set():
            reply: Any = await reader.xreadgroup("g", "c", {stream: ">"}, count=100, block=100)
            now = time.time_ns()
            for _s, entries in reply or []:
                samples.extend(now - int(f[b"t"]) for _i, f in entries)
                await reader.xack(stream, "g", *[i for i, _f in entries])

    task = asyncio.create_task(read())
    interval, next_at = 1.0 / rate, time.monotonic()
    end = next_at + seconds
    while next_at < end:
        await writer.xadd(stream, {"t": str(time.time_ns())}, maxlen=10_000, approximate=True)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.sleep(0.3)
    done.set()
    await task
    await writer.delete(stream)
    await writer.aclose()
    await reader.aclose()
    return samples


class Probe:
    """Stamps simulator steps and reads md:ticks, md:signals, orders:requests."""

    def __init__(self) -> None:
        self.moved: dict[tuple[str, float | None, float | None], int] = {}
        self._sim_pair: dict[str, tuple[float, float]] = {}
        self._seen_pair: dict[str, tuple[float | None, float | None]] = {}
        self.total: list[int] = []
        self.sim_to_adapter: list[int] = []
        self.adapter_to_redis: list[int] = []
        self.redis_to_reader: list[int] = []
        self.unmatched = 0
        self.quotes = 0
        self._recent: dict[str, deque[tuple[int, int]]] = defaultdict(lambda: deque(maxlen=400))
        self.bar: list[int] = []
        self._candidates: dict[str, int] = {}
        self.order: list[int] = []
        self.orders = 0

    def on_step(self, sim: Simulator, started_ns: int) -> None:
        for sym, q in sim.market.quotes.items():
            pair = (q.bid, q.ask)
            if self._sim_pair.get(sym) != pair:
                self._sim_pair[sym] = pair
                self.moved[(sym, q.bid, q.ask)] = started_ns

    async def on_tick(self, msg: Message[Any]) -> None:
        now = time.time_ns()
        q = msg.body
        if not isinstance(q, Quote) or q.contract.sec_type.value != "STK":
            return
        sym = q.contract.symbol
        self.quotes += 1
        self._recent[sym].append((q.ib_ts, msg.ts))
        pair = (q.bid, q.ask)
        if self._seen_pair.get(sym) == pair:
            return  # another field changed: not a new bid/ask
        self._seen_pair[sym] = pair
        stamped = self.moved.get((sym, q.bid, q.ask))
        if stamped is None or not q.ib_ts:
            self.unmatched += 1
            return
        self.total.append(now - stamped)
        self.sim_to_adapter.append(q.ib_ts - stamped)
        self.adapter_to_redis.append(msg.ts - q.ib_ts)
        self.redis_to_reader.append(now - msg.ts)

    async def on_signal(self, msg: Message[Any]) -> None:
        body = msg.body
        if isinstance(body, Bar):
            end = body.start_ns + body.interval_s * 1_000_000_000
            closing = next((ts for ib_ts, ts in self._recent[body.symbol] if ib_ts >= end), None)
            if closing is not None:
                self.bar.append(msg.ts - closing)
        elif isinstance(body, CandidatesSignal):
            for c in body.candidates:
                self._candidates[c.symbol] = msg.ts

    async def on_order(self, msg: Message[Any]) -> None:
        body = msg.body
        if isinstance(body, OrderNew) and not body.reduce_only:
            self.orders += 1
            since = self._candidates.get(body.contract.symbol)
            if since is not None:
                self.order.append(msg.ts - since)


async def _system_run(url: str, seconds: float) -> Probe:
    probe = Probe()
    tick_interval = len(SYMBOLS) / QUOTES_PER_S  # every stock moves every step
    system = await start_system(url, tick_interval=tick_interval, step_hook=probe.on_step)
    redis = connect_redis(url)
    settings = load_settings(redis_url=url, consume_block_ms=100, consume_batch=500)
    stop = asyncio.Event()
    consumers = [
        GroupConsumer(redis, settings, stream=s, group="bench-probe", consumer="p", handler=h)
        for s, h in (
            (MD_TICKS, probe.on_tick),
            (MD_SIGNALS, probe.on_signal),
            (ORDERS_REQUESTS, probe.on_order),
        )
    ]
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    try:
        await asyncio.sleep(3.0)  # warm-up: history, first subscriptions
        for lst in (probe.total, probe.sim_to_adapter, probe.adapter_to_redis):
            lst.clear()
        probe.redis_to_reader.clear()
        started = last_t = time.monotonic()
        last_q = probe.quotes
        while (left := seconds - (time.monotonic() - started)) > 0:
            await asyncio.sleep(min(10.0, left))
            now = time.monotonic()
            rate = (probe.quotes - last_q) / max(now - last_t, 1e-9)
            last_q, last_t = probe.quotes, now
            progress(
                f"e2e_latency: {now - started:4.0f}/{seconds:.0f} s, "
                f"{len(probe.total)} quote samples, {rate:,.0f} stock quotes/s read, "
                f"{len(probe.bar)} bars, {probe.orders} orders"
            )
        dead = [n for n, ok in system.alive().items() if not ok]
        if dead:
            raise RuntimeError(f"service died during the run: {dead}")
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await redis.aclose()
        await system.stop()
    return probe


async def run(url: str) -> dict[str, Any]:
    progress(f"e2e_latency: baseline, bare XADD -> XREADGROUP at {QUOTES_PER_S}/s")
    base = percentiles(await baseline(url, QUOTES_PER_S, BASELINE_SECONDS))
    progress(f"e2e_latency: system at {QUOTES_PER_S} quotes/s for {SECONDS:.0f} s")
    probe = await _system_run(url, SECONDS)
    ours = percentiles(probe.total)
    ratio = round(ours["p50_ms"] / base["p50_ms"], 2) if ours["p50_ms"] and base["p50_ms"] else None
    return {
        **ours,
        "ratio": ratio,
        "unit": "ms, sim step -> md:ticks entry read by a group consumer",
        "goal": "p99 < 10 ms",
        "met": bool(ours["p99_ms"] is not None and ours["p99_ms"] < 10.0),
        "baseline": base,
        "segments": {
            "sim_to_adapter": percentiles(probe.sim_to_adapter),
            "adapter_to_redis": percentiles(probe.adapter_to_redis),
            "redis_to_reader": percentiles(probe.redis_to_reader),
        },
        "quote_to_bar": percentiles(probe.bar),
        "candidates_to_order": percentiles(probe.order),
        "unmatched_quotes": probe.unmatched,
        "quotes_per_s_target": QUOTES_PER_S,
        "run_s": SECONDS,
        "clock": "time.time_ns() (CLOCK_REALTIME, one host, shared by all processes)",
    }
