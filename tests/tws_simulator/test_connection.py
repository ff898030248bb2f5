"""Handshake, start-up synchronisation, client ids, reconnects."""

from __future__ import annotations

import time

import pytest
from ib_async import IB
from tws_sim_helpers import Connect, until

from services.tws_simulator import Simulator


async def test_connect_when_started_syncs_quickly_without_timeouts(
    sim: Simulator, connect: Connect, ib_log: pytest.LogCaptureFixture
) -> None:
    t0 = time.perf_counter()
    client = await connect(sim)
    assert time.perf_counter() - t0 < 1.0
    assert client.ib.managedAccounts() == ["DU1234567"]
    assert {2104, 2106, 2158} <= set(client.codes())
    assert "timed out" not in ib_log.text
    assert client.ib.client.serverVersion() == 178


async def test_connect_when_client_id_in_use_gets_326_and_closed(
    sim: Simulator, connect: Connect
) -> None:
    await connect(sim, client_id=7)
    ib = IB()
    codes: list[int] = []
    ib.errorEvent += lambda r, code, t, c: codes.append(code)
    # ib_async waits for apiStart after the peer closes, so it ends in a timeout
    with pytest.raises((ConnectionError, TimeoutError)):
        await ib.connectAsync("127.0.0.1", sim.port, 7, timeout=0.5)
    assert 326 in codes
    assert not ib.isConnected()


async def test_connect_when_distinct_client_ids_both_served(
    sim: Simulator, connect: Connect
) -> None:
    a = await connect(sim, client_id=1)
    b = await connect(sim, client_id=2)
    assert a.ib.isConnected() and b.ib.isConnected()
    assert sorted(sim.sessions) == [1, 2]
    assert await b.ib.reqCurrentTimeAsync()


async def test_reconnect_when_connections_dropped_succeeds_with_same_client_id(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim, client_id=3)
    assert sim.drop_all() == 1
    await until(lambda: not client.ib.isConnected())
    again = await connect(sim, client_id=3)
    assert again.ib.isConnected()


async def test_req_ids_when_requested_returns_next_valid_id(
    sim: Simulator, connect: Connect
) -> None:
    client = await connect(sim)
    before = client.ib.client._reqIdSeq
    client.ib.client.reqIds(1)
    await until(lambda: client.ib.client._reqIdSeq >= before)
    assert (await client.ib.reqCurrentTimeAsync()).year >= 2024
