"""Account values, summary, P&L and historical bars."""

from __future__ import annotations

import datetime as dt
import itertools

from ib_async import Index, Stock
from tws_sim_helpers import Connect, until

from services.tws_simulator import Simulator


async def test_account_when_connected_reports_configured_net_liquidation(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    values = {v.tag: v.value for v in client.ib.accountValues() if v.currency == "USD"}
    assert values["NetLiquidation"] == "3756.96"
    assert values["TotalCashValue"] == "3756.96" and "BuyingPower" in values
    summary = {v.tag: v.value for v in await client.ib.accountSummaryAsync()}
    assert summary["NetLiquidation"] == "3756.96" and "AvailableFunds" in summary
    pnl = client.ib.reqPnL("DU1234567")
    await until(lambda: pnl.realizedPnL == 0.0)


async def test_historical_data_when_minutes_requested_returns_contiguous_bars(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    bars = await client.ib.reqHistoricalDataAsync(spy, "", "3600 S", "1 min", "TRADES", False)
    assert 59 <= len(bars) <= 62
    steps = {(b.date - a.date).total_seconds() for a, b in itertools.pairwise(bars)}
    assert steps == {60.0}
    assert abs(bars[-1].close - sim.market.price("SPY")) < 3
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)


async def test_historical_data_when_daily_and_vix_requested_returns_dates(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    spy, vix = Stock("SPY", "SMART", "USD"), Index("VIX", "CBOE")
    await client.ib.qualifyContractsAsync(spy, vix)
    daily = await client.ib.reqHistoricalDataAsync(spy, "", "2 W", "1 day", "TRADES", True)
    assert 14 <= len(daily) <= 15 and isinstance(daily[0].date, dt.date)
    five = await client.ib.reqHistoricalDataAsync(vix, "", "1 D", "5 mins", "TRADES", False)
    assert len(five) >= 288 and all(9 <= b.close <= 90 for b in five)


async def test_historical_data_when_bar_size_invalid_gets_162(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    bars = await client.ib.reqHistoricalDataAsync(
        spy, "", "1 D", "7 mins", "TRADES", False, timeout=5
    )
    assert not bars and 162 in client.codes()
