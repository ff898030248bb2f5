"""Our Black-Scholes fallback agrees with the simulator's greeks.

Tolerances: against the simulator's function, 1e-9 (same model, independent code);
against what the simulator actually sends through the real ib_async client,
0.01 in delta (IB's wire format and the few milliseconds between its pricing
and ours).
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.strategy.greeks import YEAR_S, greeks
from services.strategy.selection import expiry_time
from services.tws_simulator import SimConfig, Simulator
from services.tws_simulator.greeks import black_scholes
from shared.bus import Publisher
from shared.contract import GW_COMMANDS, MD_TICKS
from shared.envelope import decode
from shared.redis_server import RedisHandle
from shared.runner import run_service
from shared.schemas import OptionChainRequest, Quote, Right
from shared.settings import load_settings
from tests.helpers import wait_until

GRID = itertools.product(
    (20.0, 100.0, 500.0), (0.8, 0.95, 1.0, 1.1), (3 / 365, 30 / 365, 1.0), (0.15, 0.45, 1.2)
)


@pytest.mark.parametrize(("spot", "moneyness", "years", "iv"), list(GRID))
def test_greeks_when_compared_with_simulator_model_match_within_1e9(
    spot: float, moneyness: float, years: float, iv: float
) -> None:
    strike = spot * moneyness
    for right in Right:
        ours = greeks(spot, strike, years, iv, right)
        sim = black_scholes(spot, strike, years, iv, right is Right.CALL)
        for name in ("price", "delta", "gamma", "vega", "theta"):
            assert getattr(ours, name) == pytest.approx(getattr(sim, name), abs=1e-9), name


async def test_greeks_when_simulator_sends_them_over_ib_async_match_within_001(
    redis_server: RedisHandle, redis: aioredis.Redis
) -> None:
    import asyncio

    from services.gateway_adapter.main import main as gateway_main

    sim = Simulator(SimConfig(port=0, tick_interval=0.1, regime_period=0))
    await sim.start()
    settings = load_settings(
        redis_url=redis_server.url, ib_port=sim.port, consume_block_ms=100, log_level="WARNING"
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_service("gateway_adapter", gateway_main, settings, stop=stop))
    try:
        pub = Publisher(redis, settings, src="test")
        req = OptionChainRequest(
            request_id="g1", underlying="SPY", min_dte=7, max_dte=60, requester="strategy"
        )
        await wait_until(lambda: redis.exists("svc:gateway_adapter"), timeout=10)
        await pub.publish(GW_COMMANDS, req)

        async def with_greeks() -> list[Quote]:
            rows: Any = await redis.xrange(MD_TICKS)
            quotes = [decode(f).body for _, f in rows]
            return [
                q
                for q in quotes
                if isinstance(q, Quote) and q.delta is not None and q.iv and q.und_price
            ]

        quotes = await wait_until(with_greeks, timeout=15, what="option quotes with greeks")
        now = dt.datetime.now(dt.UTC)
        for q in quotes[:40]:
            c = q.contract
            assert c.strike is not None and c.right is not None and q.und_price and q.iv
            years = (expiry_time(c.expiry) - now).total_seconds() / YEAR_S
            ours = greeks(q.und_price, c.strike, years, q.iv, c.right)
            assert ours.delta == pytest.approx(q.delta, abs=0.01), c.key
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
        await sim.stop()
