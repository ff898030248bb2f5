"""Active adapter SIGKILLed while a standby process runs: takeover, never two connections.

Real processes: the standby is a second `optbot run gateway_adapter`. The simulator (in
this process) is sampled every 5 ms during the handover; IB's own guard, error 326 for a
client id already in use, must never fire.
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from shared.contract import GW_STATUS
from shared.envelope import decode
from shared.schemas import IbError
from tests.fault.conftest import MakeSystem, assert_invariants, first_fill
from tests.fault.harness import FaultSystem, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

TAKEOVER_BOUND_S = 10.0  # lease TTL (3 s default) + renewal slack + connect, on a loaded box


async def _standby_advertised(system: FaultSystem, pid: int) -> bool:
    keys = [k async for k in system.redis.scan_iter(match="svc:gateway_adapter:standby:*")]
    for key in keys:
        if (await system.redis.hget(key, "pid")) == str(pid).encode():
            return True
    return False


async def _active(system: FaultSystem, pid: int) -> bool:
    """The standby now owns ``svc:gateway_adapter`` and is connected to IB."""
    beat = await system.heartbeat("gateway_adapter")
    return beat.get("pid") == str(pid) and beat.get("state") == "connected"


async def _sample(system: FaultSystem, stop: asyncio.Event, most: list[int]) -> None:
    assert system.sim is not None
    while True:
        most.append(len(system.sim.sessions))
        if stop.is_set():
            return
        await asyncio.sleep(0.005)


async def test_standby_when_active_adapter_sigkilled_takes_over_without_two_connections(
    make_system: MakeSystem,
) -> None:
    system = await make_system()
    await first_fill(system)
    active = system.services["gateway_adapter"]
    standby = system.spawn("gateway_adapter")  # becomes services["gateway_adapter"]
    system.services["gateway_adapter (killed)"] = active
    await wait_for(lambda: _standby_advertised(system, standby.proc.pid), 20, "standby heartbeat")
    stop, counts = asyncio.Event(), []
    sampler = asyncio.create_task(_sample(system, stop, counts))
    started = time.monotonic()
    active.proc.send_signal(signal.SIGKILL)
    await wait_for(lambda: _active(system, standby.proc.pid), TAKEOVER_BOUND_S, "takeover")
    took = time.monotonic() - started
    stop.set()
    await sampler
    assert max(counts) <= 1, "two IB connections at once"
    errors = [decode(f).body for _, f in await system.redis.xrange(GW_STATUS)]
    assert not [e for e in errors if isinstance(e, IbError) and e.code == 326]
    await first_fill(system)  # trading goes on through the new active adapter
    await assert_invariants(system)
    print(f"\nRECOVERY standby takeover after SIGKILL: {took:.1f}s")
