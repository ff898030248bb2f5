"""The seed workflow end to end with the real ib_async client, no timeouts, no EId errors."""

from __future__ import annotations

import pytest
from ib_async import Index, MarketOrder, Option, Stock
from tws_sim_helpers import Connect, until

from services.tws_simulator import Simulator


async def test_seed_workflow_when_run_end_to_end_has_no_timeouts_or_eid_errors(
    sim: Simulator, connect: Connect, ib_log: pytest.LogCaptureFixture
) -> None:
    client = await connect(sim)
    ib = client.ib
    assert any(v.tag == "NetLiquidation" and v.value == "3756.96" for v in ib.accountValues())

    underlyings = [Stock(s, "SMART", "USD") for s in ("SPY", "QQQ", "AAPL", "MSFT")]
    vix = Index("VIX", "CBOE")
    assert all(await ib.qualifyContractsAsync(*underlyings, vix))
    [chain] = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", underlyings[0].conId)
    options = [
        Option("SPY", chain.expirations[1], k, r, "SMART") for k, r in ((590, "C"), (580, "P"))
    ]
    assert all(await ib.qualifyContractsAsync(*options))

    tickers = [ib.reqMktData(c) for c in [*underlyings, vix, *options]]
    await until(lambda: all(t.last > 0 for t in tickers))
    await until(lambda: all(t.modelGreeks is not None for t in tickers[-2:]))

    bars = await ib.reqHistoricalDataAsync(underlyings[0], "", "1 D", "1 min", "TRADES", False)
    assert len(bars) >= 1439

    trade = ib.placeOrder(options[0], MarketOrder("BUY", 1))
    await until(lambda: bool(trade.fills) and trade.fills[0].commissionReport.commission > 0)
    assert trade.orderStatus.status == "Filled"
    await until(lambda: any(p.contract.conId == options[0].conId for p in ib.portfolio()))
    for ticker in tickers:
        ib.cancelMktData(ticker.contract)
    assert await ib.reqCurrentTimeAsync()

    assert "timed out" not in ib_log.text and "Can't find EId" not in ib_log.text
    assert not [e for e in client.errors if e[1] not in (2104, 2106, 2158)]
