"""Contract qualification, ambiguity, unknown symbols, option chains, stable conIds."""

from __future__ import annotations

import datetime as dt

from ib_async import Index, Option, Stock
from tws_sim_helpers import Connect

from services.tws_simulator import Simulator
from services.tws_simulator.contracts import ContractQuery, Universe
from services.tws_simulator.nyse import expiry_day


async def test_qualify_when_stock_etf_index_option_fills_conids(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    spy, aapl = Stock("SPY", "SMART", "USD"), Stock("AAPL", "SMART", "USD")
    vix = Index("VIX", "CBOE")
    await client.ib.qualifyContractsAsync(spy, aapl, vix)
    assert spy.conId and aapl.conId and vix.conId
    assert vix.secType == "IND" and spy.primaryExchange == "ARCA"
    expiry = sim.universe.chain("SPY").expirations[0]  # type: ignore[union-attr]
    opt = Option("SPY", expiry, 590, "P", "SMART")
    [qualified] = await client.ib.qualifyContractsAsync(opt)
    assert qualified is not None and opt.conId and opt.multiplier == "100"
    assert opt.tradingClass == "SPY" and opt.localSymbol.startswith("SPY   ")


async def test_qualify_when_symbol_unknown_gets_error_200(sim: Simulator, connect: Connect) -> None:
    client = await connect(sim)
    [result] = await client.ib.qualifyContractsAsync(Stock("NOPE", "SMART", "USD"))
    assert result is None
    assert 200 in client.codes()


async def test_contract_details_when_request_partial_returns_all_matches(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    listings = await client.ib.reqContractDetailsAsync(Stock("AAPL"))
    assert {d.contract.currency for d in listings if d.contract} == {"USD", "EUR"}
    expiry = sim.universe.chain("QQQ").expirations[1]  # type: ignore[union-attr]
    options = await client.ib.reqContractDetailsAsync(Option("QQQ", expiry, exchange="SMART"))
    assert len(options) > 50
    [ambiguous] = await client.ib.qualifyContractsAsync(Stock("AAPL"))
    assert ambiguous is None


async def test_sec_def_opt_params_when_requested_lists_weeklies_and_strikes(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    [chain] = await client.ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId)
    assert chain.exchange == "SMART" and chain.multiplier == "100"
    days = [dt.datetime.strptime(e, "%Y%m%d").date() for e in chain.expirations]
    # Fridays, or the session before a Friday that is an NYSE holiday (Christmas, ...)
    assert all(d.weekday() == 4 or expiry_day(d + dt.timedelta(1)) == d for d in days)
    assert len(days) >= 10 and 48 <= (days[7] - days[0]).days <= 50
    assert min(chain.strikes) < 590 < max(chain.strikes)


def test_con_id_when_universe_rebuilt_is_stable() -> None:
    today = dt.date(2025, 1, 6)
    a, b = Universe(today), Universe(today)
    q = ContractQuery(symbol="MSFT", sec_type="OPT", expiry="20250110", strike=420.0, right="C")
    assert [i.con_id for i in a.match(q)] == [i.con_id for i in b.match(q)]
    con_id = a.match(q)[0].con_id
    assert Universe(today).by_id(con_id) is not None
