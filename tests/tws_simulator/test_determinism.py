"""Seeded market: identical paths and ticks for identical seeds; regimes; greeks sanity."""

from __future__ import annotations

import asyncio

from ib_async import Stock
from tws_sim_helpers import Connect, MakeSim
from vollib.black_scholes import black_scholes as vollib_price
from vollib.black_scholes.greeks.analytical import delta as vollib_delta

from services.tws_simulator.greeks import RATE, black_scholes
from services.tws_simulator.market import Market
from services.tws_simulator.regimes import Regime


async def _ticks(
    make_sim: MakeSim, connect: Connect, seed: int, client_id: int, chunks: int = 1
) -> list:
    """Every SPY tick the client decodes over 30 steps, taken in ``chunks`` parts.

    ib_async's ``ticker.ticks`` holds only the ticks of the latest socket read, so
    collect each update's; how the bytes are cut into reads (load decides) must not
    matter. A reqCurrentTime round trip is the barrier: its answer comes after every
    tick written before it on the same socket."""
    sim = await make_sim(seed=seed, tick_interval=0)
    client = await connect(sim, client_id=client_id)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    ticker = client.ib.reqMktData(spy)
    seen: list = []
    ticker.updateEvent += lambda t: seen.extend((k.tickType, k.price, k.size) for k in t.ticks)

    async def barrier() -> None:
        await asyncio.wait_for(client.ib.reqCurrentTimeAsync(), 5)

    await barrier()
    assert ticker.bid > 0
    for _ in range(chunks):
        sim.step(30 // chunks)
        await barrier()
    assert ticker.volume == sim.market.quotes["SPY"].volume
    return seen


async def test_ticks_when_same_seed_are_identical(make_sim: MakeSim, connect: Connect) -> None:
    a = await _ticks(make_sim, connect, 11, 1)
    b = await _ticks(make_sim, connect, 11, 2, chunks=3)  # the same ticks in other reads
    c = await _ticks(make_sim, connect, 12, 3)
    assert a == b and len(a) > 30
    assert a != c


def test_market_when_same_seed_same_path_and_vix_inverse() -> None:
    m1, m2 = (Market(5, 1.0, 0.0, Regime.TRENDING_DOWN, 0) for _ in range(2))
    m1.step(), m2.step()
    for _ in range(3000):
        m1.step()
        m2.step()
    assert m1.price("NVDA") == m2.price("NVDA") and m1.price("VIX") == m2.price("VIX")
    assert m1.price("SPY") < 590 and m1.price("VIX") > 16


def test_force_regime_when_trending_up_drifts_up() -> None:
    m = Market(5, 1.0, 0.0, Regime.CHOPPY, 0)
    m.force_regime(Regime.TRENDING_UP)
    for _ in range(3000):
        m.step()
    assert m.price("SPY") > 590 and m.regime is Regime.TRENDING_UP


def test_black_scholes_when_compared_to_py_vollib_agrees() -> None:
    g = black_scholes(100.0, 105.0, 0.25, 0.3, call=False)
    assert abs(g.price - vollib_price("p", 100.0, 105.0, 0.25, RATE, 0.3)) < 1e-6
    assert abs(g.delta - vollib_delta("p", 100.0, 105.0, 0.25, RATE, 0.3)) < 1e-6
