"""Lockstep (issue #19): simulated time moves only by ``advance``, over NYSE sessions.

Real ib_async clients over real sockets; time is driven through the control channel
as the backtest driver drives it. A reqCurrentTime round trip is the barrier: its
answer comes after everything the simulator wrote before it on that socket.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import time
from typing import Any

import pytest
from ib_async import MarketOrder, Option, Stock, Ticker
from tws_sim_helpers import Client, Connect, MakeSim

from services.tws_simulator import SimConfig, Simulator
from services.tws_simulator.greeks import black_scholes
from services.tws_simulator.market import YEAR_SECONDS
from services.tws_simulator.nyse import NotASession, expiry_epoch
from services.tws_simulator.protocol import frame, prefix
from services.tws_simulator.service import config_from
from shared.settings import ConfigError, load_settings

UTC = dt.UTC


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


MON_OPEN = _utc(2026, 1, 5, 14, 30)  # Monday 2026-01-05 09:30 EST
FRI_CLOSE = _utc(2026, 1, 9, 21, 0)  # Friday 16:00 EST
NEXT_MON_OPEN = _utc(2026, 1, 12, 14, 30)


async def _lockstep(make_sim: MakeSim, **overrides: Any) -> Simulator:
    config: dict[str, Any] = {
        "lockstep": True,
        "market_hours": "regular",
        "start": "2026-01-05",
        "control_port": 0,
    }
    sim: Simulator = await make_sim(**(config | overrides))
    return sim


async def _control(sim: Simulator, command: str, **args: Any) -> dict[str, Any]:
    """One command on the control channel, as the backtest driver sends it."""
    assert sim.control_port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.control_port)
    writer.write(json.dumps({"command": command, **args}).encode() + b"\n")
    reply: dict[str, Any] = json.loads(await asyncio.wait_for(reader.readline(), 10))
    writer.close()
    await writer.wait_closed()
    return reply


async def _advance(sim: Simulator, to: float) -> dict[str, Any]:
    reply = await _control(sim, "advance", to=to)
    assert reply["ok"], reply
    result: dict[str, Any] = reply["result"]
    return result


async def _now(client: Client) -> float:
    """The simulator's time by reqCurrentTime (also the barrier)."""
    answer: dt.datetime = await asyncio.wait_for(client.ib.reqCurrentTimeAsync(), 5)
    return answer.timestamp()


async def _spy(client: Client) -> Ticker:
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    ticker: Ticker = client.ib.reqMktData(spy)
    return ticker


async def _atm_call(sim: Simulator, client: Client) -> Ticker:
    expiry = sim.universe.chain("SPY").expirations[2]  # type: ignore[union-attr]
    opt = Option("SPY", expiry, 590, "C", "SMART")
    await client.ib.qualifyContractsAsync(opt)
    ticker: Ticker = client.ib.reqMktData(opt)
    return ticker


async def test_lockstep_when_not_advanced_nothing_moves(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await _lockstep(make_sim)  # FAST's tick_interval (0.05 s) must not run a clock
    client = await connect(sim)
    ticker = await _spy(client)
    assert await _now(client) == MON_OPEN
    first = (ticker.bid, ticker.ask, ticker.volume)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.5  # ten free-running steps' worth of wall time
    while loop.time() < deadline:
        assert await _now(client) == MON_OPEN
    assert sim.market.steps == 0 and (ticker.bid, ticker.ask, ticker.volume) == first
    assert sim.status()["lockstep"] is True and sim.status()["now"] == MON_OPEN


async def test_advance_when_to_given_lands_on_it_and_every_time_says_it(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await _lockstep(make_sim)
    client = await connect(sim)
    ticker = await _spy(client)
    await _now(client)
    result = await _advance(sim, MON_OPEN + 62)
    assert result == {"now": MON_OPEN + 62, "open": True, "close": _utc(2026, 1, 5, 21, 0)}
    assert sim.market.steps == 13  # 12 steps of 5 s, then 2 s to land on the time asked
    assert await _now(client) == MON_OPEN + 62
    assert ticker.lastTimestamp == dt.datetime.fromtimestamp(MON_OPEN + 62, UTC)
    bars = await client.ib.reqHistoricalDataAsync(
        ticker.contract, "", "600 S", "1 min", "TRADES", False, 2
    )
    assert bars[-1].date == dt.datetime.fromtimestamp(MON_OPEN + 60, UTC)  # the live minute
    assert await _advance(sim, MON_OPEN + 62) == result  # already there: no step
    assert sim.market.steps == 13


async def test_place_order_when_marketable_fill_is_sent_before_the_next_answer(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await _lockstep(make_sim)
    client = await connect(sim)
    await _advance(sim, MON_OPEN + 600)
    opt = (await _atm_call(sim, client)).contract
    assert opt is not None
    trade = client.ib.placeOrder(opt, MarketOrder("BUY", 1))
    assert await _now(client) == MON_OPEN + 600
    # no waiting: the fill was written while placeOrder was handled, before currentTime
    assert trade.orderStatus.status == "Filled" and trade.fills
    execution = trade.fills[0].execution
    assert execution.time == dt.datetime.fromtimestamp(MON_OPEN + 600, UTC)
    assert trade.fills[0].commissionReport.commission == 1.0  # $0.65, $1 minimum


async def test_place_order_when_market_closed_waits_for_the_open(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await _lockstep(make_sim, start="2026-01-09", lockstep_step_seconds=300)
    client = await connect(sim)
    spy = (await _spy(client)).contract
    assert spy is not None
    assert await _advance(sim, FRI_CLOSE) == {"now": FRI_CLOSE, "open": False, "close": None}
    trade = client.ib.placeOrder(spy, MarketOrder("BUY", 1))
    await _now(client)
    assert trade.orderStatus.status == "Submitted" and not trade.fills
    await _advance(sim, FRI_CLOSE + 1)
    assert await _now(client) == NEXT_MON_OPEN
    assert trade.orderStatus.status == "Filled"
    assert trade.fills[0].execution.time == dt.datetime.fromtimestamp(NEXT_MON_OPEN, UTC)


async def test_advance_when_market_closes_jumps_to_next_open_in_one_step(
    make_sim: MakeSim, connect: Connect
) -> None:
    """Friday's close to Monday's open is one step: the weekend's variance arrives as a
    gap, and the option prices on Monday's calendar time (it decayed over the weekend)."""
    sim = await _lockstep(make_sim, start="2026-01-09", lockstep_step_seconds=60)
    client = await connect(sim)
    spy, call = await _spy(client), await _atm_call(sim, client)
    assert await _advance(sim, FRI_CLOSE) == {"now": FRI_CLOSE, "open": False, "close": None}
    assert sim.market.steps == 390  # 6.5 h of 60 s steps
    await _now(client)
    friday = spy.bid
    started = time.perf_counter()
    result = await _advance(sim, FRI_CLOSE + 60)
    took = time.perf_counter() - started
    assert result == {"now": NEXT_MON_OPEN, "open": True, "close": NEXT_MON_OPEN + 6.5 * 3600}
    assert sim.market.steps == 391 and took < 1.0  # one step, not 3,930 empty ones
    assert await _now(client) == NEXT_MON_OPEN
    assert spy.bid != friday  # the gap
    greeks, contract = call.modelGreeks, call.contract
    assert greeks is not None and isinstance(contract, Option)
    years = (expiry_epoch(contract.lastTradeDateOrContractMonth) - NEXT_MON_OPEN) / YEAR_SECONDS
    friday_years = years + (NEXT_MON_OPEN - FRI_CLOSE) / YEAR_SECONDS
    und, iv = greeks.undPrice, greeks.impliedVol
    assert und is not None and iv is not None and greeks.optPrice is not None
    monday = black_scholes(und, 590, years, iv, True).price
    unmoved = black_scholes(und, 590, friday_years, iv, True).price
    assert math.isclose(greeks.optPrice, monday, abs_tol=1e-3)  # priced on Monday's clock
    assert unmoved - monday > 0.5  # ~2.7 days of an ATM call's decay


async def test_advance_when_early_close_closes_at_13_new_york(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await _lockstep(make_sim, start="2026-11-27", lockstep_step_seconds=600)
    client = await connect(sim)
    early = _utc(2026, 11, 27, 18, 0)  # 13:00 EST, the day after Thanksgiving
    first = await _advance(sim, _utc(2026, 11, 27, 15, 0))
    assert first["close"] == early
    assert await _advance(sim, early) == {"now": early, "open": False, "close": None}
    assert await _now(client) == early
    assert (await _advance(sim, early + 1))["now"] == _utc(2026, 11, 30, 14, 30)


async def test_advance_when_holiday_follows_skips_it(make_sim: MakeSim, connect: Connect) -> None:
    sim = await _lockstep(make_sim, start="2026-07-02", lockstep_step_seconds=600)
    client = await connect(sim)
    thursday_close = _utc(2026, 7, 2, 20, 0)  # 16:00 EDT; Friday July 3rd is a holiday
    await _advance(sim, thursday_close)
    steps = sim.market.steps
    result = await _advance(sim, thursday_close + 5)
    assert result["now"] == _utc(2026, 7, 6, 13, 30) and sim.market.steps == steps + 1
    assert await _now(client) == _utc(2026, 7, 6, 13, 30)


def test_start_when_not_a_session_names_the_day_and_the_next_session() -> None:
    with pytest.raises(
        NotASession, match=r"2026-07-03 \(Friday\) is not an NYSE session.*2026-07-06"
    ):
        Simulator(SimConfig(port=0, lockstep=True, start="2026-07-03"))
    with pytest.raises(ValueError, match="not a date"):
        Simulator(SimConfig(port=0, lockstep=True, start="07/03/2026"))


async def _ticks(make_sim: MakeSim, connect: Connect, seed: int, client_id: int) -> list[Any]:
    """Every SPY tick a client decodes over a session end, a weekend jump and an open."""
    sim = await _lockstep(make_sim, seed=seed, start="2026-01-09")
    client = await connect(sim, client_id=client_id)
    ticker = await _spy(client)
    seen: list[Any] = []
    ticker.updateEvent += lambda t: seen.extend((k.tickType, k.price, k.size) for k in t.ticks)
    await _now(client)
    for to in (FRI_CLOSE - 300, FRI_CLOSE - 37, FRI_CLOSE + 5, NEXT_MON_OPEN + 300):
        await _advance(sim, to)
        await _now(client)
    return [*seen, ticker.lastTimestamp]


async def test_new_line_when_lockstep_gets_its_first_values_with_the_next_step(
    make_sim: MakeSim, connect: Connect
) -> None:
    """Inside one backtest round nothing new arrives: a line opened mid-round is quoted
    with the next step, when every line is (a backtest's wait for quotes cannot race)."""
    sim = await _lockstep(make_sim)
    client = await connect(sim)
    ticker = await _spy(client)
    await _now(client)  # the barrier: all the simulator wrote for reqMktData is in
    assert math.isnan(ticker.bid) and math.isnan(ticker.last)
    await _advance(sim, MON_OPEN + 5)
    await _now(client)
    assert ticker.bid > 0 and ticker.ask > ticker.bid and ticker.last > 0


async def test_ticks_when_same_seed_and_advances_are_identical(
    make_sim: MakeSim, connect: Connect
) -> None:
    a = await _ticks(make_sim, connect, 21, 1)
    b = await _ticks(make_sim, connect, 21, 2)
    c = await _ticks(make_sim, connect, 22, 3)
    assert a == b and len(a) > 100
    assert a[-1] == dt.datetime.fromtimestamp(NEXT_MON_OPEN + 300, UTC)
    assert a != c


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({}, "to is required"),
        ({"to": "tomorrow"}, "finite number"),
        ({"to": True}, "finite number"),
        ({"to": math.inf}, "finite number"),
        ({"to": math.nan}, "finite number"),
        ({"to": MON_OPEN - 1}, "before the simulator's time"),
        ({"to": MON_OPEN + 11 * 86400}, "at most 864000 s"),
        ({"to": MON_OPEN + 5, "n": 1}, "unknown argument"),
    ],
)
async def test_advance_when_input_is_bad_refuses_with_a_reason_and_changes_nothing(
    make_sim: MakeSim, args: dict[str, Any], reason: str
) -> None:
    sim = await _lockstep(make_sim)
    reply = await _control(sim, "advance", **args)
    assert reply["ok"] is False and reason in reply["error"], reply
    assert sim.market.steps == 0 and sim.now() == MON_OPEN


async def test_advance_when_free_running_is_refused_and_the_clock_runs(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await make_sim(control_port=0)  # the free-running default: its own clock
    reply = await _control(sim, "advance", to=time.time() + 60)
    assert reply["ok"] is False and "needs a lockstep simulator" in reply["error"]
    client = await connect(sim)
    ticker = await _spy(client)
    start = sim.market.steps
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 5
    while sim.market.steps < start + 3 or ticker.lastTimestamp is None:
        assert loop.time() < deadline, "the free-running clock did not step"
        await _now(client)
    assert abs(await _now(client) - sim.now()) < 2  # currentTime: the market's time


def test_account_time_when_simulated_is_the_simulated_hh_mm_utc() -> None:
    sim = Simulator(SimConfig(port=0, lockstep=True, start="2026-01-05"))
    frames = sim.account.update_frames(sim.mark, sim.now())
    assert frames[-1] == frame(8, 1, "14:30")  # updateAccountTime (8): 09:30 New York


async def test_handshake_when_lockstep_says_the_simulated_time(make_sim: MakeSim) -> None:
    """TWS's handshake reply: version, then its time at the connection (zone named)."""
    sim = await _lockstep(make_sim)
    await _advance(sim, MON_OPEN + 3600)
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    writer.write(b"API\0" + prefix(b"v157..178"))
    length = int.from_bytes(await asyncio.wait_for(reader.readexactly(4), 5), "big")
    version, when, _ = (await reader.readexactly(length)).split(b"\0")
    writer.close()
    assert (version, when) == (b"178", b"20260105 15:30:00 UTC")


async def test_requests_when_lockstep_are_not_paced_on_the_wall_clock(
    make_sim: MakeSim, connect: Connect
) -> None:
    """IB's 50 messages per wall second has no wall second to count in: a run must not
    depend on how fast the host is (free-running mode keeps error 100)."""
    sim = await _lockstep(make_sim, pacing_limit=20)
    client = await connect(sim)
    client.ib.client.MaxRequests = 0  # ib_async's own throttle off, to burst past the limit
    for _ in range(40):
        client.ib.client.reqCurrentTime()
    assert await _now(client) == MON_OPEN
    assert 100 not in client.codes()


async def test_option_listing_when_days_pass_rolls_to_the_new_trading_date(
    make_sim: MakeSim, connect: Connect
) -> None:
    sim = await _lockstep(make_sim, lockstep_step_seconds=3600)
    client = await connect(sim)
    [spy] = await client.ib.qualifyContractsAsync(Stock("SPY", "SMART", "USD"))

    async def expirations() -> list[str]:
        [params] = await client.ib.reqSecDefOptParamsAsync("SPY", "", "STK", spy.conId)
        return sorted(params.expirations)

    monday = await expirations()
    held = Option("SPY", "20260109", 590, "C", "SMART")
    await client.ib.qualifyContractsAsync(held)
    to = MON_OPEN
    while to < _utc(2026, 1, 9, 14, 30):  # to Friday's open, session by session
        to = (await _advance(sim, to + 86400))["now"]
    friday = await expirations()
    assert monday[0] == "20260109" and friday[0] == "20260116"  # expired that day: delisted
    assert friday[-5] > monday[-5]  # a new weekly listed beyond the old last one
    assert sim.universe.by_id(held.conId) is not None  # still a contract for positions


def test_settings_when_lockstep_env_set_reach_the_simulator_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPTBOT_SIM_LOCKSTEP", "1")
    monkeypatch.setenv("OPTBOT_SIM_START", "2026-01-05")
    monkeypatch.setenv("OPTBOT_SIM_STEP_SECONDS", "10")
    config = config_from(load_settings())
    assert (config.lockstep, config.start, config.step_seconds) == (True, "2026-01-05", 10.0)
    monkeypatch.setenv("OPTBOT_SIM_START", "05/01/2026")
    with pytest.raises(ConfigError, match=r"OPTBOT_SIM_START='05/01/2026': expected a date"):
        load_settings()
