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
import multiprocessing
import os
import time
from bisect import bisect_left, bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bench.common import progress
from bench.system import FASTEST_STEP_S, QUOTES_PER_S, WATCHLIST, start_system, ticks_added
from services.tws_simulator import Simulator
from shared.bus import GroupConsumer, connect_redis
from shared.contract import MD_SIGNALS, MD_TICKS, ORDERS_REQUESTS
from shared.envelope import Message
from shared.schemas import Bar, CandidatesSignal, OrderNew, Quote, SecType
from shared.settings import load_settings

SECONDS = float(os.environ.get("BENCH_E2E_S", "60"))
SYMBOLS = [s for s in WATCHLIST.split(",") if s != "VIX"]  # the index has no bid/ask
BASELINE_SECONDS = 5.0
WARMUP_S = 3.0  # history, first subscriptions


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


class Stamps:
    """The simulator side (this process): when each new bid/ask went to the socket."""

    def __init__(self) -> None:
        # (symbol, bid, ask) -> every time that pair went out (prices come back)
        self.moved: dict[tuple[str, float | None, float | None], list[int]] = defaultdict(list)
        self._pair: dict[str, tuple[float, float]] = {}

    def on_step(self, sim: Simulator, sent_ns: int) -> None:
        for sym, q in sim.market.quotes.items():
            pair = (q.bid, q.ask)
            if self._pair.get(sym) != pair:
                self._pair[sym] = pair
                self.moved[(sym, q.bid, q.ask)].append(sent_ns)

    def sent(self, key: tuple[str, float | None, float | None], before_ns: int) -> int | None:
        """When ``key`` last went out before ``before_ns`` (when it was read)."""
        times = self.moved.get(key)
        if not times:
            return None
        i = bisect_right(times, before_ns)
        return times[i - 1] if i else None


@dataclass
class Reading:
    """What the reader process saw; times are ``time.time_ns()`` of this host."""

    # every stock quote: symbol, bid, ask, ib_ts, envelope ts, read at, new bid/ask?
    ticks: list[tuple[str, float | None, float | None, int, int, int, bool]] = field(
        default_factory=list
    )
    bars: list[tuple[str, int, int, int]] = field(default_factory=list)  # sym, start, s, ts
    candidates: list[tuple[str, int]] = field(default_factory=list)  # symbol, signal ts
    orders: list[tuple[str, int]] = field(default_factory=list)  # symbol, order ts
    started_ns: int = 0  # when the timed part began (samples before it are warm-up)


@dataclass
class Load:
    """What the run fed the system, measured by the benchmark process."""

    quotes_per_s: float  # md:ticks entries/s written over the timed part
    lines: int  # market-data lines open at the simulator at the end
    requests: int  # orders:requests entries at the end


class Recorder:
    """The reader's handlers: as cheap as possible, everything is matched afterwards."""

    def __init__(self) -> None:
        self.r = Reading()
        self._pair: dict[str, tuple[float | None, float | None]] = {}

    async def on_tick(self, msg: Message[Any]) -> None:
        now = time.time_ns()
        q = msg.body
        if not isinstance(q, Quote) or q.contract.sec_type is not SecType.STK:
            return
        sym = q.contract.symbol
        new = self._pair.get(sym) != (q.bid, q.ask)  # else another field changed
        self._pair[sym] = (q.bid, q.ask)
        self.r.ticks.append((sym, q.bid, q.ask, q.ib_ts or 0, msg.ts, now, new))

    async def on_signal(self, msg: Message[Any]) -> None:
        body = msg.body
        if isinstance(body, Bar):
            self.r.bars.append((body.symbol, body.start_ns, body.interval_s, msg.ts))
        elif isinstance(body, CandidatesSignal):
            self.r.candidates.extend((c.symbol, msg.ts) for c in body.candidates)

    async def on_order(self, msg: Message[Any]) -> None:
        body = msg.body
        if isinstance(body, OrderNew) and not body.reduce_only:
            self.r.orders.append((body.contract.symbol, msg.ts))


def reader_process(url: str, warmup_s: float, stop: Any, out: Any) -> None:
    """Entry point of the reader process (a stand-in for the strategy's reading):
    group consumers on md:ticks, md:signals and orders:requests, as the services
    read them; sends its Reading through ``out`` when ``stop`` is set."""
    out.send(asyncio.run(_read(url, warmup_s, stop)))


async def _read(url: str, warmup_s: float, stop_flag: Any) -> Reading:
    rec = Recorder()
    redis = connect_redis(url)
    settings = load_settings(redis_url=url, consume_block_ms=100, consume_batch=500)
    stop = asyncio.Event()
    consumers = [
        GroupConsumer(redis, settings, stream=s, group="bench-probe", consumer="p", handler=h)
        for s, h in (
            (MD_TICKS, rec.on_tick),
            (MD_SIGNALS, rec.on_signal),
            (ORDERS_REQUESTS, rec.on_order),
        )
    ]
    tasks = [asyncio.create_task(c.run(stop)) for c in consumers]
    await asyncio.sleep(warmup_s)
    rec.r.started_ns = time.time_ns()
    await asyncio.to_thread(stop_flag.wait)
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    await redis.aclose()
    return rec.r


@dataclass
class Matched:
    total: list[int] = field(default_factory=list)
    sim_to_adapter: list[int] = field(default_factory=list)
    adapter_to_redis: list[int] = field(default_factory=list)
    redis_to_reader: list[int] = field(default_factory=list)
    bar: list[int] = field(default_factory=list)
    order: list[int] = field(default_factory=list)
    unmatched: int = 0


def match(stamps: Stamps, r: Reading) -> Matched:
    """Pair every new bid/ask the reader saw with the step that sent it."""
    m = Matched()
    last_sent: dict[str, int] = {}
    arrivals: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for sym, bid, ask, ib_ts, ts, read_at, new in r.ticks:
        ib_times, entry_times = arrivals[sym]
        ib_times.append(ib_ts)
        entry_times.append(ts)
        if not new or read_at < r.started_ns:
            continue
        sent = stamps.sent((sym, bid, ask), read_at)
        if sent is None or not ib_ts or sent < last_sent.get(sym, 0):
            # a pair seen before: the new bid arrived without its ask yet (IB sends
            # them as separate ticks), so it matches an older step; not a sample
            m.unmatched += 1
            continue
        last_sent[sym] = sent
        m.total.append(read_at - sent)
        m.sim_to_adapter.append(ib_ts - sent)
        m.adapter_to_redis.append(ts - ib_ts)
        m.redis_to_reader.append(read_at - ts)
    for sym, start_ns, interval_s, bar_ts in r.bars:
        # the bar closes on the first quote at or past its end
        ib_times, entry_times = arrivals[sym]
        i = bisect_left(ib_times, start_ns + interval_s * 1_000_000_000)
        if i < len(ib_times) and bar_ts >= entry_times[i]:
            m.bar.append(bar_ts - entry_times[i])
    events = sorted([(ts, 0, s) for s, ts in r.candidates] + [(ts, 1, s) for s, ts in r.orders])
    since: dict[str, int] = {}
    for ts, kind, sym in events:
        if kind == 0:
            since[sym] = ts
        elif sym in since:
            m.order.append(ts - since[sym])
    return m


async def _system_run(url: str, seconds: float) -> tuple[Stamps, Reading, Load]:
    stamps = Stamps()
    system = await start_system(
        url, tick_interval=FASTEST_STEP_S, quotes_per_sec=QUOTES_PER_S, step_hook=stamps.on_step
    )
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    receive, send = ctx.Pipe(duplex=False)
    reader = ctx.Process(target=reader_process, args=(url, WARMUP_S, stop, send), daemon=True)
    reader.start()
    redis = connect_redis(url)
    try:
        await asyncio.sleep(WARMUP_S)  # warm-up: history, first subscriptions
        started = last_t = time.monotonic()
        last_n = first_n = await ticks_added(redis)
        while (left := seconds - (time.monotonic() - started)) > 0:
            await asyncio.sleep(min(10.0, left))
            now, n = time.monotonic(), await ticks_added(redis)
            progress(
                f"e2e_latency: {now - started:4.0f}/{seconds:.0f} s, "
                f"{(n - last_n) / max(now - last_t, 1e-9):,.0f} md:ticks entries/s"
            )
            last_n, last_t = n, now
        load = Load(
            quotes_per_s=(last_n - first_n) / max(time.monotonic() - started, 1e-9),
            lines=sum(len(session.lines) for session in system.sim._all),
            requests=await redis.xlen(ORDERS_REQUESTS),
        )
        dead = [n for n, ok in system.alive().items() if not ok]
        if dead:
            raise RuntimeError(f"service died during the run: {dead}")
        stop.set()
        reading: Reading = await asyncio.to_thread(_receive, receive, 30.0)
    finally:
        stop.set()
        await asyncio.to_thread(reader.join, 10)
        await redis.aclose()
        await system.stop()
    return stamps, reading, load


def _receive(conn: Any, timeout: float) -> Reading:
    if not conn.poll(timeout):
        raise RuntimeError("the reader process sent nothing")
    reading: Reading = conn.recv()
    return reading


async def run(url: str) -> dict[str, Any]:
    progress(f"e2e_latency: baseline, bare XADD -> XREADGROUP at {QUOTES_PER_S}/s")
    base = percentiles(await baseline(url, QUOTES_PER_S, BASELINE_SECONDS))
    progress(f"e2e_latency: system at {QUOTES_PER_S} quotes/s for {SECONDS:.0f} s")
    stamps, reading, load = await _system_run(url, SECONDS)
    m = match(stamps, reading)
    ours = percentiles(m.total)
    ratio = round(ours["p50_ms"] / base["p50_ms"], 2) if ours["p50_ms"] and base["p50_ms"] else None
    return {
        **ours,
        "ratio": ratio,
        "unit": "ms, sim step -> md:ticks entry read by a group consumer",
        "goal": "p99 < 10 ms",
        "met": bool(ours["p99_ms"] is not None and ours["p99_ms"] < 10.0),
        "baseline": base,
        "segments": {
            "sim_to_adapter": percentiles(m.sim_to_adapter),
            "adapter_to_redis": percentiles(m.adapter_to_redis),
            "redis_to_reader": percentiles(m.redis_to_reader),
        },
        "quote_to_bar": percentiles(m.bar),
        "candidates_to_order": percentiles(m.order),
        "orders": len(reading.orders),
        "order_requests": load.requests,
        "lines_open": load.lines,
        "unmatched_quotes": m.unmatched,
        "quotes_per_s_target": QUOTES_PER_S,
        "quotes_per_s_measured": round(load.quotes_per_s),
        "run_s": SECONDS,
        "clock": "time.time_ns() (CLOCK_REALTIME, one host, shared by all processes)",
    }
