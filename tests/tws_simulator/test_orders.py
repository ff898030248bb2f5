"""Orders: fills with commission, resting limits, cancels, modification, account effects."""

from __future__ import annotations

from ib_async import LimitOrder, MarketOrder, Option, Stock
from tws_sim_helpers import Client, Connect, until

from services.tws_simulator import Simulator


async def _option(sim: Simulator, client: Client) -> Option:
    expiry = sim.universe.chain("SPY").expirations[2]  # type: ignore[union-attr]
    opt = Option("SPY", expiry, 590, "C", "SMART")
    await client.ib.qualifyContractsAsync(opt)
    return opt


async def test_place_order_when_market_buy_option_fills_with_commission(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    opt = await _option(sim, client)
    trade = client.ib.placeOrder(opt, MarketOrder("BUY", 2))
    await until(lambda: trade.fills and trade.fills[0].commissionReport.commission > 0)
    fill = trade.fills[0]
    assert trade.orderStatus.status == "Filled"
    assert fill.commissionReport.commission == 1.30  # 2 x $0.65
    cash = float(next(v.value for v in client.ib.accountValues() if v.tag == "TotalCashValue"))
    assert abs(cash - (3756.96 - fill.execution.price * 200 - 1.30)) < 0.011
    await until(lambda: any(p.contract.conId == opt.conId for p in client.ib.positions()))
    fills = await client.ib.reqExecutionsAsync()
    assert fills and fills[0].execution.orderId == trade.order.orderId


async def test_place_order_when_limit_not_marketable_rests_then_cancels(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    trade = client.ib.placeOrder(spy, LimitOrder("BUY", 1, 400.0))
    await until(lambda: trade.orderStatus.status == "Submitted")
    assert len(await client.ib.reqOpenOrdersAsync()) == 1
    client.ib.cancelOrder(trade.order)
    await until(lambda: trade.orderStatus.status == "Cancelled")
    completed = await client.ib.reqCompletedOrdersAsync(False)
    assert any(t.orderStatus.status == "Cancelled" for t in completed)


async def test_modify_order_when_repriced_marketable_fills(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    order = LimitOrder("BUY", 3, 500.0)
    trade = client.ib.placeOrder(spy, order)
    await until(lambda: trade.orderStatus.status == "Submitted")
    order.lmtPrice = 700.0
    client.ib.placeOrder(spy, order)
    await until(lambda: trade.orderStatus.status == "Filled")
    assert trade.orderStatus.avgFillPrice < 700.0  # filled at the ask, not the limit
    assert any(entry.message == "Modify" for entry in trade.log)


async def test_resting_limit_when_market_crosses_fills(sim: Simulator, connect: Connect) -> None:
    client = await connect(sim)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    trade = client.ib.placeOrder(spy, LimitOrder("SELL", 1, 10_000.0))
    await until(lambda: trade.orderStatus.status == "Submitted")
    sim.market.quotes["SPY"].bid = 10_001.0  # force the cross; the next step restores it
    sim.book.on_step()
    await until(lambda: trade.orderStatus.status == "Filled")
    await until(lambda: bool(trade.fills) and trade.fills[0].commissionReport.commission > 0)
    assert trade.fills[0].commissionReport.commission == 1.0  # $1 minimum for 1 share
