"""Redis behind Sentinel: the primary is SIGKILLed under a trading system.

A primary, one replica and three sentinels (``tests/fault/sentinels.py``, down after
1000 ms) with the four services connected through the sentinels. Killing the primary
promotes the replica; every service reconnects by itself (same pid) and nothing the
order path had acknowledged is lost: order-path writes return only after ``WAIT 1``
(``shared/bus/replicas.py``), so what they acknowledged is on the replica too. The
old primary, restarted, rejoins as a replica of the new one.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from shared.acl import OPERATOR
from shared.bus import connect_redis
from shared.contract import ORDERS_EVENTS, ORDERS_REQUESTS
from tests.fault.conftest import MakeSystem, assert_invariants, first_fill
from tests.fault.harness import REDIS_PASSWORDS, SECRETS, SERVICES, FaultSystem, wait_for
from tests.fault.invariants import entry_time, sim_book_mismatch

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

RECOVERY_BOUND_S = 20.0
REJOIN_BOUND_S = 45.0
ORDER_STREAMS = (ORDERS_REQUESTS, ORDERS_EVENTS)


async def _ids(system: FaultSystem, stream: str) -> set[bytes]:
    rows: Any = await system.redis.xrange(stream)
    return {row[0] for row in rows}


async def _newer(system: FaultSystem, stream: str, since: float) -> bool:
    rows: Any = await system.redis.xrevrange(stream, count=1)
    return bool(rows) and entry_time(rows[0][0]) > since


async def test_primary_killed_when_behind_sentinel_replica_promoted_and_nothing_acked_lost(
    make_system: MakeSystem,
) -> None:
    system = await make_system(sentinel=True)
    ha = system.ha
    assert ha is not None
    await first_fill(system)
    pids = {n: system.pid(n) for n in SERVICES}
    before = {s: await _ids(system, s) for s in ORDER_STREAMS}
    # Every entry read above was written to the primary; within the WAIT timeout its
    # writer learnt that the replica has it too, or logged replica_wait_short.
    await asyncio.sleep(system.settings.redis_replica_wait_ms / 1000 + 0.2)
    assert "replica_wait_short" not in system.log_text(), "a write went unreplicated"

    kill_wall = time.time()
    t0 = time.monotonic()
    system.kill_primary()

    async def promoted() -> bool:
        return await ha.master_port() == {ha.replica_port}

    failover_s = await wait_for(promoted, RECOVERY_BOUND_S, "the sentinels promote the replica")
    await wait_for(system.all_healthy, RECOVERY_BOUND_S, "every service's heartbeat again")
    healthy_s = time.monotonic() - t0
    await wait_for(
        lambda: _newer(system, "md:ticks", kill_wall), RECOVERY_BOUND_S, "quotes after failover"
    )
    quotes_s = time.monotonic() - t0
    await wait_for(
        lambda: _newer(system, ORDERS_EVENTS, kill_wall), 60, "an order event after failover"
    )
    orders_s = time.monotonic() - t0
    assert {n: system.pid(n) for n in SERVICES} == pids, "a service restarted instead"

    for stream in ORDER_STREAMS:
        lost = before[stream] - await _ids(system, stream)
        assert not lost, f"{stream} lost acknowledged entries over the failover: {sorted(lost)}"
    await assert_invariants(system)
    assert await sim_book_mismatch(system.redis) == []
    logs = system.log_text()
    assert [s for s in SECRETS if s in logs] == []  # sentinel and Redis passwords too

    # The old primary comes back (its AOF, same port): the sentinels make it a replica
    # of the new primary, so order writes have a replica to wait for again.
    system.start_redis()
    t1 = time.monotonic()
    old = connect_redis(
        system.redis_url, username=OPERATOR, password=REDIS_PASSWORDS[OPERATOR]
    )  # straight to the old primary's port, not through the sentinels

    async def replicating() -> bool:
        info: Any = await old.info("replication")
        return info.get("master_port") == ha.replica_port and (
            info.get("master_link_status") == "up"
        )

    try:  # sentinels convert a returning primary after ~10 s, then it resyncs
        await wait_for(replicating, REJOIN_BOUND_S, "the old primary replicating the new one")
    finally:
        await old.aclose()
    rejoin_s = time.monotonic() - t1
    assert {n: system.pid(n) for n in SERVICES} == pids
    print(
        f"\nRECOVERY sentinel failover: promoted {failover_s:.1f}s, heartbeats {healthy_s:.1f}s,"
        f" quotes {quotes_s:.1f}s, order events {orders_s:.1f}s; old primary a replica"
        f" {rejoin_s:.1f}s after its restart"
    )
