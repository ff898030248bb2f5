"""SIGKILL each service in turn while the system trades, restart it, check everything.

One system for the module (start-up is the expensive part); the kills run in order:
adapter, market_data, strategy, monitor. Each test measures the recovery time (kill to
"working again" by that service's own measure) and prints it for docs/reliability.md.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shared.schemas import ConnState
from tests.fault.conftest import assert_invariants, boot, fault_root, first_fill, shutdown
from tests.fault.harness import FaultSystem, wait_for
from tests.fault.invariants import read_record

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(150)]

CHURN = {"strat_take_profit_pct": 8.0, "strat_stop_loss_pct": 8.0}
RECOVERY_BOUND_S = {"gateway_adapter": 15.0, "market_data": 10.0, "strategy": 10.0, "monitor": 10.0}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def system() -> AsyncIterator[FaultSystem]:
    # Tight exits keep positions turning over: orders and fills all along the test.
    s = await boot(fault_root("kill"), **CHURN)
    try:
        await first_fill(s)
        yield s
    finally:
        await shutdown(s)


async def _adapter_serving(system: FaultSystem, since: float) -> bool:
    rec = await read_record(system.redis)
    connected = any(t > since and s.state is ConnState.CONNECTED for t, s in rec.status)
    if not connected:
        return False
    rows: Any = await system.redis.xrevrange("md:ticks", count=1)
    return bool(rows) and int(rows[0][0].split(b"-")[0]) / 1000 > since


async def _working(system: FaultSystem, name: str, since: float) -> bool:
    """The restarted service does its job again, by its own measure."""
    if not await system.healthy(name):
        return False
    hb = await system.heartbeat(name)
    if name == "gateway_adapter":
        return await _adapter_serving(system, since)
    if name == "market_data":
        return hb.get("sentiment", "WARMING") != "WARMING" and int(hb.get("handled", 0)) > 0
    if name == "strategy":
        return int(hb.get("cycles", 0)) > 0 and hb.get("gateway") == "connected"
    return await system.monitor_ok()


@pytest.mark.parametrize("name", ["gateway_adapter", "market_data", "strategy", "monitor"])
async def test_sigkill_when_trading_service_restarts_and_invariants_hold(
    system: FaultSystem, name: str
) -> None:
    before = await read_record(system.redis)
    await system.kill(name)
    killed_at = time.time()
    t0 = time.monotonic()
    system.spawn(name)
    try:
        await wait_for(
            lambda: _working(system, name, killed_at), RECOVERY_BOUND_S[name], f"{name} working"
        )
    except AssertionError as exc:
        hb = await system.heartbeat(name)
        raise AssertionError(f"{exc}; pid {system.pid(name)}, heartbeat {hb}") from None
    recovery = time.monotonic() - t0
    stats = await assert_invariants(system)
    after = await read_record(system.redis)
    assert after.lengths[("orders:events")] >= before.lengths["orders:events"]
    print(f"\nRECOVERY sigkill {name}: {recovery:.1f}s ({stats})")


async def test_sigkill_when_all_restarted_system_still_trades(system: FaultSystem) -> None:
    """After the four kills the system still sends and fills orders."""
    before = len((await read_record(system.redis)).fills)

    async def more_fills() -> bool:
        return len((await read_record(system.redis)).fills) > before

    waited = await wait_for(more_fills, 45, "a fill after the restarts", interval=0.5)
    await assert_invariants(system)
    async with httpx.AsyncClient(timeout=5) as http:
        r = await http.get(f"{system.monitor_url}/api/orders?limit=5")
    assert r.status_code == 200
    print(f"\nnext fill {waited:.1f}s after the last restart")
