"""Redis goes away: restarted under a trading system, or not there at start-up.

The Redis is the suite's own ``redis-server`` with AOF (appendfsync everysec), stopped
with SIGTERM (it writes the AOF out) and started again on the same port and directory.
No service may exit; each reconnects by itself (same pid), the order streams keep what
was acknowledged before the restart, and the invariants hold.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from shared.schemas import ConnState
from tests.conftest import redis_binary
from tests.fault.conftest import MakeSystem, assert_invariants, fault_root, first_fill
from tests.fault.harness import SERVICES, FaultSystem, wait_for
from tests.fault.invariants import entry_time, read_record, sim_book_mismatch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

DOWN_S = 3.0
RECOVERY_BOUND_S = 20.0


async def _quotes_since(system: FaultSystem, since: float) -> bool:
    rows: Any = await system.redis.xrevrange("md:ticks", count=1)
    return bool(rows) and entry_time(rows[0][0]) > since


async def test_redis_restart_when_trading_services_reconnect_and_orders_survive(
    make_system: MakeSystem,
) -> None:
    system = await make_system()
    await first_fill(system)
    pids = {n: system.pid(n) for n in SERVICES}
    before = await read_record(system.redis)

    system.stop_redis()
    await asyncio.sleep(DOWN_S)  # services keep running against a missing Redis
    assert not system.crashed(), system.crashed()
    system.start_redis()
    t0 = time.monotonic()
    back = time.time()

    await wait_for(system.all_healthy, RECOVERY_BOUND_S, "every service's heartbeat again")
    healthy_s = time.monotonic() - t0
    await wait_for(lambda: _quotes_since(system, back), RECOVERY_BOUND_S, "quotes after restart")
    quotes_s = time.monotonic() - t0
    assert {n: system.pid(n) for n in SERVICES} == pids, "a service restarted instead"

    after = await read_record(system.redis)
    for stream, length in before.lengths.items():
        assert after.lengths[stream] >= length, f"{stream} lost entries over the restart"
    old_fills = {(e.client_order_id, e.exec_id) for e in before.fills}
    assert old_fills <= {(e.client_order_id, e.exec_id) for e in after.fills}
    await assert_invariants(system)
    assert await sim_book_mismatch(system.redis) == []
    for name in SERVICES:
        assert system.services[name].proc.poll() is None
    print(f"\nRECOVERY redis restart: heartbeats {healthy_s:.1f}s, quotes {quotes_s:.1f}s")


async def test_redis_unavailable_at_start_when_it_appears_services_become_healthy(
    request: pytest.FixtureRequest,
) -> None:
    system = FaultSystem(fault_root(request.node.name), redis_binary())
    try:
        await system.start_simulator()
        for name in SERVICES:
            system.spawn(name)

        def waiting(name: str) -> bool:
            return system.log_text(name).count('"redis_unavailable"') >= 3

        for name in SERVICES:
            await wait_for(lambda n=name: waiting(n), 20, f"{name} reporting redis_unavailable")
        pids = {n: system.pid(n) for n in SERVICES}
        assert not system.crashed(), system.crashed()
        assert all(system.services[n].proc.poll() is None for n in SERVICES)

        system.start_redis()
        t0 = time.monotonic()
        await wait_for(system.all_healthy, RECOVERY_BOUND_S, "every service healthy")
        healthy_s = time.monotonic() - t0

        async def connected() -> bool:
            rec = await read_record(system.redis)
            return bool(rec.status) and rec.status[-1][1].state is ConnState.CONNECTED

        await wait_for(connected, RECOVERY_BOUND_S, "the gateway connected")
        assert {n: system.pid(n) for n in SERVICES} == pids, "a service was restarted"
        for name in SERVICES:
            assert '"redis_available"' in system.log_text(name), name
        await assert_invariants(system)
        print(f"\nRECOVERY redis unavailable at start: healthy {healthy_s:.1f}s after Redis")
    finally:
        crashed = system.crashed()
        await system.close()
        assert not crashed, crashed
