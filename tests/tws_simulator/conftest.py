"""Fixtures: a simulator on a free port and real ib_async clients connected to it."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ib_async import IB
from tws_sim_helpers import Client, Connect, MakeSim

from services.tws_simulator import SimConfig, Simulator

FAST = SimConfig(port=0, tick_interval=0.05, regime_period=0)


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    started: list[Simulator] = []

    async def factory(**overrides: Any) -> Simulator:
        sim = Simulator(dataclasses.replace(FAST, **overrides))
        await sim.start()
        started.append(sim)
        return sim

    yield factory
    for sim in started:
        await sim.stop()


@pytest.fixture
async def sim(make_sim: MakeSim) -> Simulator:
    return await make_sim()


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    clients: list[IB] = []

    async def factory(sim: Simulator, client_id: int = 1, **kwargs: Any) -> Client:
        ib = IB()
        client = Client(ib)
        await ib.connectAsync("127.0.0.1", sim.port, client_id, timeout=3, **kwargs)
        clients.append(ib)
        return client

    yield factory
    for ib in clients:
        ib.disconnect()


@pytest.fixture
def ib_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """ib_async's own log, to assert on timeouts and unexpected errors."""
    caplog.set_level(logging.INFO, logger="ib_async")
    return caplog
