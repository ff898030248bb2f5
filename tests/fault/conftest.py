"""Fixtures of the fault suite: a whole system of real processes per test (or module).

``fault_system`` starts Redis (AOF), the simulator and the four services and waits
until they are healthy and the gateway is connected; teardown stops everything and
fails the test if a service crashed on its own. ``assert_invariants`` is what every
scenario ends with.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import redis_binary
from tests.fault.harness import SERVICES, FaultSystem, wait_for
from tests.fault.invariants import (
    dead_letters,
    double_fills,
    forbidden_entries,
    lost_fills,
    read_record,
    stale_entries,
)

HEALTHY_BOUND_S = 20.0  # every service healthy again within this after a fault

MakeSystem = Callable[..., Awaitable[FaultSystem]]


def fault_root(name: str) -> Path:
    """Where a scenario keeps Redis data and service logs (kept for humans to read)."""
    root = Path("test-output/fault") / name.replace("/", "_").replace("[", "-").strip("]")
    shutil.rmtree(root, ignore_errors=True)
    return root.resolve()


async def boot(root: Path, *, sentinel: bool = False, **overrides: Any) -> FaultSystem:
    system = FaultSystem(root, redis_binary(), sentinel=sentinel, **overrides)
    if system.ha is not None:  # the sentinels must know the replica before services ask
        system.start_redis()
        await wait_for(system.ha.ready, 30, "sentinels see the primary, replica, each other")
    await system.start()
    await wait_for(system.all_healthy, 30, "every service healthy after start")
    return system


async def shutdown(system: FaultSystem) -> None:
    crashed = system.crashed()
    await system.close()
    assert not crashed, f"services exited on their own: {crashed}"


@pytest_asyncio.fixture
async def make_system(request: pytest.FixtureRequest) -> AsyncIterator[MakeSystem]:
    systems: list[FaultSystem] = []

    async def factory(**overrides: Any) -> FaultSystem:
        system = await boot(fault_root(f"{request.node.name}-{len(systems)}"), **overrides)
        systems.append(system)
        return system

    yield factory
    for system in systems:
        await shutdown(system)


async def first_fill(system: FaultSystem, timeout: float = 60.0) -> float:
    """Seconds until the first fill on orders:events (the system is trading)."""

    async def filled() -> bool:
        return bool((await read_record(system.redis)).fills)

    return await wait_for(filled, timeout, "a first fill", interval=0.3)


async def assert_invariants(
    system: FaultSystem,
    *,
    dlq: Callable[[list[dict[str, str]]], bool] = lambda rows: rows == [],
    healthy_within: float = HEALTHY_BOUND_S,
    services: tuple[str, ...] = SERVICES,
) -> dict[str, Any]:
    """Every invariant of the suite; returns a few numbers for the report."""
    recovery = await wait_for(
        lambda: system.all_healthy(services), healthy_within, "every service healthy"
    )
    assert not system.crashed(), system.crashed()

    async def ledger_settled() -> bool:
        rec = await read_record(system.redis)
        return not lost_fills(rec)

    with contextlib.suppress(AssertionError):  # reported with details below
        await wait_for(ledger_settled, 10, "strategy:positions == net of fills", interval=0.3)
    rec = await read_record(system.redis)
    problems = double_fills(rec) + lost_fills(rec) + forbidden_entries(rec)
    if lost_fills(rec):  # say whether the strategy's views are still being refreshed
        updated = await system.redis.hget("strategy:pnl", "updated")
        age = time.time() - float(updated or 0)
        problems.append(
            f"strategy:pnl updated {age:.1f}s ago; hb {await system.heartbeat('strategy')}"
        )
    problems += await stale_entries(system.redis, rec, system.settings.risk_max_quote_age_s)
    assert problems == [], problems
    assert await system.acl_denials() == []  # every service's own ACL user sufficed
    rows = await dead_letters(system.redis)
    assert dlq(rows), [(r.get("stream"), r.get("reason")) for r in rows]
    return {
        "healthy_s": recovery,
        "orders": len(rec.requests),
        "fills": len(rec.fills),
        "positions": rec.positions,
    }
