"""Every message is encoded for the version the client negotiated (157..178).

Two independent checks per version: the real ib_async client, capped at that
version, runs the whole workflow without a decode error; and every byte the
simulator sent is matched against IB's published layouts (``ib_layouts.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from ib_async import IB, Contract, Index, LimitOrder, MarketOrder, Option, Stock
from ib_layouts import LayoutError, check
from tws_sim_helpers import until
from wire_tap import WireTap

from services.tws_simulator import Simulator
from services.tws_simulator.contracts import Instrument
from services.tws_simulator.order_messages import (
    Execution,
    OrderStatus,
    SimOrder,
    completed_order,
    exec_details,
    open_order,
)
from services.tws_simulator.protocol import error_frame, split_fields
from services.tws_simulator.refdata import details_frame
from services.tws_simulator.versions import MAX_VERSION, MIN_VERSION

# every gate boundary between the minimum and 178
WORKFLOW_VERSIONS = [157, 158, 160, 162, 163, 164, 166, 170, 176, 177, 178]
# the messages whose layout depends on the version, all of which the workflow provokes
GATED_IDS = {4, 5, 10, 11, 101}
FARM_CODES = {2104, 2106, 2158}


@pytest.fixture
async def tap(sim: Simulator) -> AsyncIterator[WireTap]:
    relay = WireTap(sim.port)
    await relay.start()
    yield relay
    await relay.stop()


async def _connect(port: int, version: int, client_id: int, codes: list[int]) -> IB:
    ib = IB()
    ib.client.MaxClientVersion = version
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    await ib.connectAsync("127.0.0.1", port, client_id, timeout=3)
    return ib


async def _reference_data(ib: IB) -> tuple[Contract, Contract, Contract]:
    """Contract details for a stock, the VIX index and an option, via the chain."""
    [spy] = await ib.reqContractDetailsAsync(Stock("SPY", "SMART", "USD"))
    [vix] = await ib.reqContractDetailsAsync(Index("VIX", "CBOE"))
    assert spy.contract is not None and vix.contract is not None
    assert spy.stockType == "ETF" and vix.contract.secType == "IND"
    [chain] = await ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.contract.conId)
    strikes = sorted(chain.strikes)
    option = Option("SPY", sorted(chain.expirations)[1], strikes[len(strikes) // 2], "C", "SMART")
    [opt] = await ib.reqContractDetailsAsync(option)
    assert opt.contract is not None
    assert opt.underConId == spy.contract.conId and opt.contract.multiplier == "100"
    return spy.contract, vix.contract, opt.contract


async def _market_data(ib: IB, stock: Contract, index: Contract, option: Contract) -> None:
    tickers = [ib.reqMktData(c) for c in (stock, index, option)]
    await until(lambda: all(t.last > 0 for t in tickers))
    await until(lambda: tickers[2].modelGreeks is not None)
    greeks = tickers[2].modelGreeks
    assert greeks is not None and greeks.delta is not None and 0 < greeks.delta < 1
    bars = await ib.reqHistoricalDataAsync(stock, "", "3600 S", "1 min", "TRADES", False)
    assert len(bars) >= 59 and all(b.close > 0 for b in bars)
    for contract in (stock, index, option):
        ib.cancelMktData(contract)


async def _orders(ib: IB, stock: Contract, option: Contract) -> None:
    """A resting limit modified then cancelled, and a market order that fills."""
    resting = ib.placeOrder(stock, LimitOrder("BUY", 1, 1.0))
    await until(lambda: resting.orderStatus.status == "Submitted")
    resting.order.lmtPrice = 2.0
    ib.placeOrder(stock, resting.order)
    await until(lambda: any(entry.message == "Modify" for entry in resting.log))
    open_trades = await ib.reqOpenOrdersAsync()
    assert {(t.order.orderId, t.order.lmtPrice) for t in open_trades} == {
        (resting.order.orderId, 2.0)
    }
    ib.cancelOrder(resting.order)
    await until(lambda: resting.orderStatus.status == "Cancelled")

    filled = ib.placeOrder(option, MarketOrder("BUY", 2))
    await until(lambda: bool(filled.fills) and filled.fills[0].commissionReport.commission > 0)
    assert filled.orderStatus.status == "Filled"
    assert filled.fills[0].execution.shares == 2 and filled.fills[0].execution.price > 0
    assert filled.fills[0].commissionReport.commission == 1.30  # 2 x $0.65
    executions = await ib.reqExecutionsAsync()
    assert [f.execution.execId for f in executions] == [filled.fills[0].execution.execId]
    assert [f.commissionReport.commission for f in ib.fills()] == [1.30]
    await until(lambda: any(p.contract.conId == option.conId for p in ib.positions()))
    completed = await ib.reqCompletedOrdersAsync(False)
    assert sorted(t.orderStatus.status for t in completed) == ["Cancelled", "Filled"]


async def _duplicate_client_id(port: int, version: int, client_id: int) -> None:
    codes: list[int] = []
    ib = IB()
    ib.client.MaxClientVersion = version
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    with pytest.raises((ConnectionError, TimeoutError)):
        await ib.connectAsync("127.0.0.1", port, client_id, timeout=0.5)
    ib.disconnect()
    assert 326 in codes


def _assert_layouts(tap: WireTap, version: int) -> set[int]:
    seen: set[int] = set()
    for connection in range(len(tap.downstream)):
        for fields in tap.messages(connection):
            try:
                check(version, fields)
            except LayoutError as e:
                raise AssertionError(f"v{version}: {e}; fields={fields}") from e
            seen.add(int(fields[0]))
    return seen


@pytest.mark.parametrize("version", WORKFLOW_VERSIONS)
async def test_workflow_when_client_caps_version_every_message_decodes(
    sim: Simulator, tap: WireTap, version: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ib_async")
    codes: list[int] = []
    ib = await _connect(tap.port, version, 5, codes)
    try:
        assert ib.client.serverVersion() == version
        assert ib.managedAccounts() == ["DU1234567"]
        summary = await ib.accountSummaryAsync()
        assert any(v.tag == "NetLiquidation" and float(v.value) > 0 for v in summary)
        stock, index, option = await _reference_data(ib)
        await _market_data(ib, stock, index, option)
        await _orders(ib, stock, option)
        await _duplicate_client_id(tap.port, version, 5)
        assert await ib.reqCurrentTimeAsync()
    finally:
        ib.disconnect()
    await until(lambda: not sim.sessions)

    decode_errors = [r.getMessage() for r in caplog.records if r.name == "ib_async.Decoder"]
    assert decode_errors == []
    assert set(codes) <= FARM_CODES | {202}  # 202: the cancel we asked for
    assert _assert_layouts(tap, version) >= GATED_IDS


def _sample_messages(sim: Simulator, version: int) -> list[bytes]:
    """One of each version-gated message, for an option, a stock and the index."""
    universe = sim.universe
    chain = universe.chain("SPY")
    assert chain is not None
    option = universe.option("SPY", chain.expirations[0], chain.strikes[0], "P")
    stock = universe.underlying("SPY")
    assert stock is not None
    out = [error_frame(version, 7, 201, "Order rejected")]
    out += [details_frame(version, 1, inst, stock) for inst in (option,)]
    out += [details_frame(version, 2, inst, None) for inst in (stock, universe.vix)]
    for inst, status in ((option, OrderStatus.FILLED), (stock, OrderStatus.CANCELLED)):
        order = _order(inst, status)
        execution = Execution(order, "0001.01", "20260101 10:00:00 UTC", 1, 1.5, 1.0, None)
        out += [open_order(order, version), completed_order(order, version)]
        out.append(exec_details(-1, execution, version))
    return out


def _order(inst: Instrument, status: OrderStatus) -> SimOrder:
    return SimOrder(1, 3, 99, inst, "BUY", 1, "LMT", 1.5, "DAY", "DU1", "ref", status, 1, 1.5)


@pytest.mark.parametrize("version", range(MIN_VERSION, MAX_VERSION + 1))
async def test_gated_messages_when_encoded_for_each_version_match_ib_layouts(
    version: int,
) -> None:
    sim = Simulator()
    for payload in _sample_messages(sim, version):
        fields = split_fields(payload[4:])
        check(version, fields)  # raises LayoutError on any shifted or missing field


@pytest.mark.parametrize("offer", [b"v100..156", b"v179..190", b"v170..160"])
async def test_handshake_when_no_common_version_is_refused_without_a_reply(
    sim: Simulator, offer: bytes
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(b"API\0" + len(offer).to_bytes(4, "big") + offer)
    await writer.drain()
    reply = await asyncio.wait_for(reader.read(), 3)  # EOF: the simulator closed the socket
    writer.close()
    assert reply == b""
    assert not sim.sessions


async def test_connect_when_ib_async_capped_below_minimum_gets_no_session(sim: Simulator) -> None:
    codes: list[int] = []
    ib = IB()
    ib.client.MinClientVersion, ib.client.MaxClientVersion = 100, MIN_VERSION - 1
    ib.errorEvent += lambda req_id, code, text, contract: codes.append(code)
    with pytest.raises((ConnectionError, TimeoutError)):
        await ib.connectAsync("127.0.0.1", sim.port, 9, timeout=0.5)
    ib.disconnect()
    # no version, no message: the refusal is the closed socket, not a half-working session
    assert ib.client.serverVersion() == 0 and codes == [] and not sim.sessions


@pytest.mark.parametrize(
    ("encoded", "checked", "ids"),
    [
        (178, 177, {11}),
        (176, 177, {5, 101}),
        (163, 164, {10}),
        (165, 166, {4}),
        (169, 170, {5, 101}),
    ],
)
async def test_layout_check_when_version_differs_rejects_the_gated_messages(
    encoded: int, checked: int, ids: set[int]
) -> None:
    """The independent check is sharp: a message encoded for a neighbouring version fails."""
    rejected: set[int] = set()
    for payload in _sample_messages(Simulator(), encoded):
        fields = split_fields(payload[4:])
        try:
            check(checked, fields)
        except LayoutError:
            rejected.add(int(fields[0]))
    assert rejected == ids


def test_layout_check_when_size_fractional_below_163_rejects() -> None:
    check(163, ["2", "6", "1", "8", "2.5"])
    with pytest.raises(LayoutError):
        check(162, ["2", "6", "1", "8", "2.5"])
