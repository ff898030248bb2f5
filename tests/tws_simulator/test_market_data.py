"""Streaming quotes, option greeks, VIX, delayed data, entitlement/limit/pacing errors."""

from __future__ import annotations

import math

from ib_async import Index, Option, Stock
from tws_sim_helpers import Connect, MakeSim, until

from services.tws_simulator import Simulator


async def test_mkt_data_when_stock_subscribed_streams_quotes(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    ticker = client.ib.reqMktData(spy)
    await until(lambda: ticker.bid > 0 and ticker.ask > 0 and ticker.volume > 0)
    assert ticker.ask > ticker.bid and ticker.close > 0 and ticker.marketDataType == 1
    seen = ticker.volume
    await until(lambda: ticker.volume > seen)
    client.ib.cancelMktData(spy)
    await until(lambda: not sim.sessions[1].lines)
    assert 300 not in client.codes()


async def test_mkt_data_when_option_subscribed_sends_model_greeks(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    expiry = sim.universe.chain("AAPL").expirations[3]  # type: ignore[union-attr]
    opt = Option("AAPL", expiry, 230, "C", "SMART")
    await client.ib.qualifyContractsAsync(opt)
    ticker = client.ib.reqMktData(opt)
    await until(lambda: ticker.modelGreeks is not None and ticker.bidGreeks is not None)
    g = ticker.modelGreeks
    assert g is not None and 0.3 < (g.delta or 0) < 0.7 and (g.impliedVol or 0) > 0.1
    assert (g.theta or 0) < 0 and (g.gamma or 0) > 0 and abs((g.undPrice or 0) - 230) < 10
    assert ticker.ask - ticker.bid > 0.01


async def test_mkt_data_when_index_has_last_and_close_but_no_bid_ask(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    vix = Index("VIX", "CBOE")
    await client.ib.qualifyContractsAsync(vix)
    ticker = client.ib.reqMktData(vix)
    await until(lambda: ticker.last > 0 and ticker.close > 0)
    assert math.isnan(ticker.bid) and math.isnan(ticker.ask)


async def test_mkt_data_when_delayed_type_requested_uses_delayed_ticks(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    client.ib.reqMarketDataType(3)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    ticker = client.ib.reqMktData(spy)
    await until(lambda: ticker.bid > 0 and ticker.marketDataType == 3)
    assert {t.tickType for t in ticker.ticks} <= {66, 67, 68, 69, 70, 71, 72, 73, 74, 75}


async def test_mkt_data_when_symbol_not_subscribed_gets_354(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(unsubscribed_symbols=frozenset({"TSLA"}))
    client = await connect(sim)
    tsla = Stock("TSLA", "SMART", "USD")
    await client.ib.qualifyContractsAsync(tsla)
    client.ib.reqMktData(tsla)
    await until(lambda: 354 in client.codes())
    assert not sim.sessions[1].lines


async def test_mkt_data_when_delayed_only_gets_10167_then_delayed_data(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(delayed_only_symbols=frozenset({"NFLX"}))
    client = await connect(sim)
    nflx = Stock("NFLX", "SMART", "USD")
    await client.ib.qualifyContractsAsync(nflx)
    ticker = client.ib.reqMktData(nflx)
    await until(lambda: 10167 in client.codes() and ticker.bid > 0)
    assert ticker.marketDataType == 3


async def test_mkt_data_when_line_limit_reached_gets_101(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(market_data_lines=3)
    client = await connect(sim)
    stocks = [Stock(s, "SMART", "USD") for s in ("SPY", "QQQ", "IWM", "DIA")]
    await client.ib.qualifyContractsAsync(*stocks)
    for stock in stocks:
        client.ib.reqMktData(stock)
    await until(lambda: 101 in client.codes())
    assert len(sim.sessions[1].lines) == 3


async def test_requests_when_pacing_exceeded_get_error_100(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(pacing_limit=20)
    client = await connect(sim)
    client.ib.client.MaxRequests = 0  # disable ib_async's own throttle to burst past the limit
    for _ in range(40):
        client.ib.client.reqCurrentTime()
    await until(lambda: 100 in client.codes())
    assert client.ib.isConnected()


async def test_snapshot_when_requested_completes_with_tick_snapshot_end(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    qqq = Stock("QQQ", "SMART", "USD")
    await client.ib.qualifyContractsAsync(qqq)
    [ticker] = await client.ib.reqTickersAsync(qqq)
    assert ticker.bid > 0 and ticker.ask > ticker.bid


async def test_quotes_per_sec_when_lines_open_paces_steps_to_the_total_rate(
    make_sim: MakeSim, connect: Connect
) -> None:
    # Benchmarks need "N quotes/s" for the whole feed, options included: the step
    # interval stretches with the number of open lines (never below tick_interval).
    sim = await make_sim(tick_interval=0.002, quotes_per_sec=400.0)
    assert sim._step_interval() == 0.002  # no lines yet: the fastest pace
    client = await connect(sim)
    stocks = [Stock(s, "SMART", "USD") for s in ("SPY", "QQQ", "AAPL", "MSFT")]
    await client.ib.qualifyContractsAsync(*stocks)
    tickers = [client.ib.reqMktData(s) for s in stocks]
    await until(lambda: len(sim.sessions[1].lines) == 4 and all(t.bid > 0 for t in tickers))
    assert sim._step_interval() == 4 / 400.0
    steps = sim.market.steps
    await until(lambda: sim.market.steps > steps + 3)  # and the clock keeps stepping
