"""Fault injection: connectivity loss, restart, delays, malformed frames, control channel."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from ib_async import Stock
from tws_sim_helpers import Connect, MakeSim, until

from services.tws_simulator import Simulator, send_fault
from services.tws_simulator.service import config_from
from shared.settings import Settings


async def _streaming(sim: Simulator, connect: Connect):  # type: ignore[no-untyped-def]
    client = await connect(sim)
    spy = Stock("SPY", "SMART", "USD")
    await client.ib.qualifyContractsAsync(spy)
    ticker = client.ib.reqMktData(spy)
    await until(lambda: ticker.volume > 0)
    return client, ticker


async def test_connectivity_when_lost_then_restored_data_lost_stops_lines(
    sim: Simulator, connect: Connect
) -> None:
    client, ticker = await _streaming(sim, connect)
    sim.connectivity_lost()
    await until(lambda: 1100 in client.codes())
    sim.connectivity_restored(data_maintained=False)
    await until(lambda: 1101 in client.codes())
    assert not sim.sessions[1].lines
    client.ib.cancelMktData(ticker.contract)  # resubscribe flow: cancel must not raise 300
    ticker = client.ib.reqMktData(ticker.contract)
    await until(lambda: len(sim.sessions[1].lines) == 1)
    assert 300 not in client.codes()


async def test_connectivity_when_restored_data_maintained_keeps_streaming(
    sim: Simulator, connect: Connect
) -> None:
    client, ticker = await _streaming(sim, connect)
    sim.connectivity_lost()
    await until(lambda: 1100 in client.codes())
    paused_volume = ticker.volume
    sim.connectivity_restored(data_maintained=True)
    await until(lambda: 1102 in client.codes())
    await until(lambda: ticker.volume > paused_volume)


async def test_restart_when_requested_drops_clients_and_accepts_new_ones(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    first_time = sim.connection_time
    port = sim.port
    await sim.restart(downtime=0.05)
    await until(lambda: not client.ib.isConnected())
    assert sim.port == port and sim.connection_time >= first_time
    assert (await connect(sim, client_id=1)).ib.isConnected()


async def test_reply_delay_when_set_slows_replies(sim: Simulator, connect: Connect) -> None:
    client = await connect(sim)
    sim.set_reply_delay(150)
    t0 = time.perf_counter()
    await client.ib.reqCurrentTimeAsync()
    assert time.perf_counter() - t0 >= 0.14
    sim.set_reply_delay(0)


async def test_malformed_frame_when_sent_client_survives(sim: Simulator, connect: Connect) -> None:
    client = await connect(sim)
    sim.send_malformed()
    assert await asyncio.wait_for(client.ib.reqCurrentTimeAsync(), 2)
    assert client.ib.isConnected()


async def test_control_channel_when_commands_sent_applies_faults(make_sim: MakeSim) -> None:
    sim = await make_sim(control_port=0)
    assert sim.control_port
    port = sim.control_port

    def call(command: str, **args: object) -> dict[str, object]:
        return send_fault("127.0.0.1", port, command, **args)

    reply = await asyncio.to_thread(call, "regime", name="trending_down")
    assert reply == {"ok": True, "result": "trending_down"}
    status = await asyncio.to_thread(call, "status")
    assert status["ok"] and status["result"]["regime"] == "trending_down"  # type: ignore[index]
    bad = await asyncio.to_thread(call, "explode")
    assert bad["ok"] is False
    assert (await asyncio.to_thread(call, "delay", ms=5))["ok"]
    assert sim.reply_delay == 0.005


async def test_control_port_when_api_host_is_all_interfaces_binds_loopback(
    make_sim: MakeSim,
) -> None:
    sim = await make_sim(host="0.0.0.0", control_port=0)
    server = sim._control._server
    assert server is not None
    assert {s.getsockname()[0] for s in server.sockets} == {"127.0.0.1"}


def test_config_from_settings_when_api_host_is_all_interfaces_keeps_control_on_loopback() -> None:
    settings = Settings(sim_host="0.0.0.0")
    assert config_from(settings).control_host == "127.0.0.1"
    assert config_from(Settings(sim_control_host="0.0.0.0")).control_host == "0.0.0.0"


@pytest.mark.parametrize(
    ("command", "args", "expected"),
    [
        ("delay", {"ms": 1e9}, "ms must be between 0 and 10000"),
        ("delay", {"ms": -1}, "ms must be between"),
        ("delay", {"ms": "5"}, "ms must be a number"),
        ("delay", {"ms": float("nan")}, "ms must be between"),
        ("step", {"n": 10**9}, "n must be between 1 and 1000"),
        ("step", {"n": 0}, "n must be between"),
        ("step", {"n": 2.5}, "n must be a whole number"),
        ("step", {"n": True}, "n must be a number"),
        ("restart", {"downtime": 3600}, "downtime must be between 0 and 30"),
        ("connectivity_restored", {"data_maintained": "false"}, "must be true or false"),
        ("regime", {}, "name is required"),
        ("regime", {"name": "sideways"}, "sideways"),
        ("status", {"verbose": True}, "unknown argument"),
        ("step", {"count": 5}, "unknown argument"),
    ],
)
async def test_control_command_when_argument_out_of_bounds_is_refused_and_changes_nothing(
    sim: Simulator, command: str, args: dict[str, object], expected: str
) -> None:
    steps, regime = sim.market.steps, sim.market.regime
    reply = await sim._control.execute(json.dumps({"command": command, **args}).encode())
    assert reply["ok"] is False
    assert expected in reply["error"]
    assert sim.reply_delay == 0
    assert sim.market.steps == steps and sim.market.regime == regime
    assert not sim.data_paused


async def test_control_step_when_at_the_bound_returns_promptly(sim: Simulator) -> None:
    t0 = time.perf_counter()
    reply = await sim._control.execute(b'{"command": "step", "n": 1000}')
    assert reply["ok"] is True
    assert sim.market.steps >= 1000
    assert time.perf_counter() - t0 < 5.0
