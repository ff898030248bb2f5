"""The IB side fails: dropped sockets, 1100 -> 1101 / 1102, a Gateway restart, garbage.

One system for the module; the faults run in order against the in-process simulator.
After each: the adapter process never died (same pid), its status is ``connected``
again, quotes flow again (a new ``md:ticks`` entry of SPY after the fault), and the
invariants hold (no entry order while the gateway was down, nothing lost or doubled).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio

from shared.schemas import ConnState
from tests.fault.conftest import assert_invariants, boot, fault_root, first_fill, shutdown
from tests.fault.harness import FaultSystem, wait_for
from tests.fault.invariants import entry_time, read_record
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(150)]

RECONNECT_BOUND_S = 15.0
OUTAGE_S = 3.0


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def system() -> AsyncIterator[FaultSystem]:
    s = await boot(fault_root("simulator"))
    try:
        await first_fill(s)
        yield s
    finally:
        await shutdown(s)


async def _states_since(system: FaultSystem, since: float) -> list[ConnState]:
    rec = await read_record(system.redis)
    return [s.state for t, s in rec.status if t >= since and s.state is not ConnState.STANDBY]


async def _quotes_since(system: FaultSystem, since: float, key: str = "SPY") -> bool:
    rows: Any = await system.redis.xrevrange("md:ticks", count=300)
    return any(entry_time(i) > since and f.get(b"key") == key.encode() for i, f in rows)


async def _serving_since(system: FaultSystem, since: float) -> bool:
    """Connected now (a fault that needs no reconnect leaves the state alone) and quotes
    of SPY published after the fault."""
    states = await _states_since(system, 0.0)
    connected = bool(states) and states[-1] is ConnState.CONNECTED
    return connected and await _quotes_since(system, since)


async def _recovered(system: FaultSystem, since: float) -> float:
    """Seconds from ``since`` until the gateway is connected and quotes flow."""
    await wait_for(lambda: _serving_since(system, since), RECONNECT_BOUND_S, "reconnect + quotes")
    return time.time() - since


async def _outage(system: FaultSystem, maintained: bool) -> float:
    assert system.sim is not None
    lost_at = time.time() - 0.05  # before: the adapter may answer within the same ms
    system.sim.connectivity_lost()
    await wait_for(
        lambda: _has_state(system, lost_at, ConnState.DEGRADED), 5, "degraded after 1100"
    )
    await asyncio.sleep(OUTAGE_S)  # an outage that lasts: cycles run, none may trade
    system.sim.connectivity_restored(data_maintained=maintained)
    return time.time()


async def _has_state(system: FaultSystem, since: float, state: ConnState) -> bool:
    return state in await _states_since(system, since)


async def _drop(system: FaultSystem) -> float:
    assert system.sim is not None
    assert system.sim.drop_all() >= 1
    return time.time() - 0.05


async def _restart(system: FaultSystem) -> float:
    assert system.sim is not None
    before = system.sim.connection_time
    t = time.time()
    await asyncio.sleep(1.1)  # the handshake's server time has 1 s resolution
    await system.sim.restart(downtime=1.0)
    assert system.sim.connection_time != before  # a new server time after the restart
    return t


async def _malformed(system: FaultSystem) -> float:
    assert system.sim is not None
    t = time.time() - 0.05
    system.sim.send_malformed()
    return t


async def _nonsense_errors(system: FaultSystem) -> float:
    """Codes IB never sends, absurd text: logged and reported, never a crash."""
    assert system.sim is not None
    t = time.time() - 0.05
    for code, text in ((99999, "nonsense ☃ " * 50), (-7, ""), (2**31 - 1, "\x00\x01bad")):
        system.sim._broadcast(code, text)
    return t


FAULTS: dict[str, Callable[[FaultSystem], Awaitable[float]]] = {
    "drop_all": _drop,
    "1100_then_1102_data_maintained": lambda s: _outage(s, True),
    "1100_then_1101_data_lost": lambda s: _outage(s, False),
    "restart_new_server_time": _restart,
    "malformed_frame": _malformed,
    "nonsense_errors": _nonsense_errors,
}


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_simulator_fault_when_trading_adapter_recovers_and_invariants_hold(
    system: FaultSystem, fault: str
) -> None:
    pid = system.pid("gateway_adapter")
    since = await FAULTS[fault](system)
    recovery = await _recovered(system, since)
    assert (
        system.pid("gateway_adapter") == pid
        and system.services["gateway_adapter"].proc.poll() is None
    ), "the adapter process died"
    if fault == "malformed_frame":  # logged by ib_async's decoder, the connection kept
        await wait_until(
            lambda: "Error handling fields" in system.log_text("gateway_adapter"),
            timeout=10,
            what="the adapter logging the malformed frame",
        )
    if fault in ("drop_all", "restart_new_server_time"):  # a new logon reconciles first

        async def back_again() -> list[ConnState]:
            states = await _states_since(system, since)
            gone = ConnState.DISCONNECTED in states and states[-1] is ConnState.CONNECTED
            return states if gone else []

        states = await wait_until(back_again, timeout=RECONNECT_BOUND_S, what="logged on again")
        back = states[len(states) - states[::-1].index(ConnState.DISCONNECTED) :]
        assert ConnState.SYNCING in back, states
        assert back.index(ConnState.SYNCING) < back.index(ConnState.CONNECTED), states
    await assert_invariants(system)
    print(f"\nRECOVERY simulator {fault}: {recovery:.1f}s")
