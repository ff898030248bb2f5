"""Hypothesis-made malformed entries on every consumed stream, against the running system.

Per stream a batch of distinct malformed entries (``tests/fault/malformed.py``) is added
at once; each must land in ``sys:dlq`` once per consumer group of the stream (once per
reader for a reply stream, read without a group), with the reason and the original
fields; afterwards a valid entry is still handled (every group delivers and acknowledges
it), no service restarted, and nothing else changed (the strategy is HALTED for the
test, so no order of its own interferes). The monitor reads
streams without a group: its API must answer every endpoint without a 5xx.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from shared.control import request_control
from shared.envelope import encode
from shared.schemas import (
    AccountRefresh,
    Bar,
    ContractRef,
    Control,
    ControlAction,
    HistoryBars,
    IbError,
    OptionChain,
    OrderCancel,
    OrderEvent,
    OrderEventKind,
    Quote,
    Schema,
)
from tests.fault.conftest import boot, fault_root, shutdown
from tests.fault.harness import SERVICES, FaultSystem, wait_for
from tests.fault.invariants import dead_letters, read_record
from tests.fault.malformed import ACCEPTS, draw

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

PER_STREAM = 30
# Who consumes what, as consumer groups: each malformed entry is dead-lettered once per group.
CONSUMERS = {
    "md:ticks": {"market_data", "strategy"},
    "gw:status": {"market_data", "strategy"},
    "gw:commands": {"gateway_adapter"},
    "orders:requests": {"gateway_adapter"},
    "orders:events": {"strategy"},
    "md:signals": {"strategy"},
    "sys:control": {"strategy"},
    "account": {"strategy"},
}
# Reply streams (gw:replies:{service}) are read without a group (shared.bus.request): they
# are not here, and each malformed entry is dead-lettered once, by its one reader.
PROBES: dict[str, Schema] = {
    "md:ticks": Quote(contract=ContractRef(symbol="ZZPROBE"), bid=1.0, ask=1.1),
    "gw:status": IbError(code=0, message="fuzz probe", severity="warning"),
    "gw:replies:market_data": HistoryBars(request_id="fuzz-probe", symbol="ZZPROBE", bars=[]),
    "gw:replies:strategy": OptionChain(request_id="fuzz-probe", underlying="ZZPROBE", contracts=[]),
    "gw:commands": AccountRefresh(request_id="fuzz-probe"),
    "orders:requests": OrderCancel(client_order_id="fuzz-probe"),
    "orders:events": OrderEvent(client_order_id="fuzz-probe", kind=OrderEventKind.REJECTED),
    "md:signals": Bar(symbol="ZZPROBE", start_ns=1, interval_s=60, open=1, high=1, low=1, close=1),
    "sys:control": Control(action=ControlAction.HALT, who="fuzz", why="probe"),
}


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def system() -> AsyncIterator[FaultSystem]:
    s = await boot(fault_root("fuzz"))
    try:

        async def every_group() -> bool:
            return all([set(await _groups(s, st)) >= g for st, g in CONSUMERS.items()])

        await wait_for(every_group, 30, "every consumer group created")
        # applied by the strategy (the one writer of risk:state) before the fuzzing starts
        halt = Control(action=ControlAction.HALT, who="fuzz", why="fuzz")
        await request_control(s.redis, s.settings, halt, src="t")

        async def halted() -> bool:
            return (await s.heartbeat("strategy")).get("risk") == "HALTED"

        await wait_for(halted, 10, "the strategy HALTED")
        yield s
    finally:
        await shutdown(s)


async def _groups(system: FaultSystem, stream: str) -> list[str]:
    try:
        rows: Any = await system.redis.xinfo_groups(stream)
    except Exception:  # no such stream yet
        return []
    return [g["name"].decode() for g in rows]


async def _handled(system: FaultSystem, stream: str, entry_id: str) -> bool:
    """Every group has delivered ``entry_id`` and none still has it pending."""
    for info in await system.redis.xinfo_groups(stream):
        last = info["last-delivered-id"].decode()
        if tuple(map(int, last.split("-"))) < tuple(map(int, entry_id.split("-"))):
            return False
        pending: Any = await system.redis.xpending_range(
            stream, info["name"], min=entry_id, max=entry_id, count=1
        )
        if pending:
            return False
    return True


async def _probe_fields(system: FaultSystem, stream: str) -> dict[bytes, bytes] | None:
    """A valid entry with no effect: a harmless message, or the newest account snapshot."""
    if stream in PROBES:
        return encode(PROBES[stream], "fuzz/probe", "probe")
    rows: Any = await system.redis.xrevrange(stream, count=1)
    return rows[0][1] if rows else None


def _state(rec: Any) -> tuple[Any, ...]:
    """What no malformed entry may change: positions, real orders, real order events."""
    real_events = [
        e
        for _, e in rec.events
        if not e.client_order_id.startswith("fuzz") and e.kind is not OrderEventKind.DENIED
    ]
    return rec.positions, len(rec.requests), len(real_events)


@pytest.mark.parametrize("stream", list(ACCEPTS))
async def test_malformed_entries_when_consumed_land_in_dlq_and_consumer_keeps_going(
    system: FaultSystem, stream: str
) -> None:
    groups = await _groups(system, stream)
    assert set(groups) == CONSUMERS.get(stream, set())
    readers = groups or [""]  # a reply stream's one reader dead-letters with no group
    pids = {n: system.pid(n) for n in SERVICES}
    before = _state(await read_record(system.redis))
    dlq_before = int(await system.redis.xlen("sys:dlq"))
    probe_fields = await _probe_fields(system, stream)
    batch = draw(stream, PER_STREAM)
    pipe = system.redis.pipeline(transaction=False)
    for fields in batch:
        pipe.xadd(stream, fields)  # type: ignore[arg-type]
    ids = {i.decode() for i in await pipe.execute()}
    expected = dlq_before + len(ids) * len(readers)

    async def all_dead_lettered() -> bool:
        return int(await system.redis.xlen("sys:dlq")) >= expected

    await wait_for(all_dead_lettered, 20, f"{len(ids)} x {len(readers)} dead letters")
    if probe_fields is not None:
        probe = (await system.redis.xadd(stream, probe_fields)).decode()  # type: ignore[arg-type]
        await wait_for(lambda: _handled(system, stream, probe), 10, "the valid entry handled")

    rows = [r for r in await dead_letters(system.redis) if r.get("id") in ids]
    assert len(rows) == len(ids) * len(readers), "an entry was dead-lettered twice or not at all"
    assert {r["group"] for r in rows} == set(readers)
    assert all(r["stream"] == stream and r["reason"] for r in rows)
    assert int(await system.redis.xlen("sys:dlq")) == expected  # the probe was not
    assert all([await system.healthy(n) for n in SERVICES])
    assert {n: system.pid(n) for n in SERVICES} == pids, "a service restarted"
    assert _state(await read_record(system.redis)) == before
    assert (await system.redis.hget("risk:state", "state")) == b"HALTED"
    reasons = sorted({r["reason"].split(":")[0][:40] for r in rows})
    print(f"\nFUZZ {stream}: {len(ids)} entries x {len(readers)} readers -> dlq; {reasons[:6]}")


ENDPOINTS = [
    "/", "/api/status", "/api/quotes", "/api/market", "/api/sentiment", "/api/candidates",
    "/api/orders?limit=200", "/api/account", "/api/positions", "/api/decisions?limit=200",
    "/api/streams", "/api/dlq?limit=500", "/api/ib-errors?limit=500", "/api/system",
    "/api/bars/SPY", "/readyz", "/metrics",
]  # fmt: skip


async def test_monitor_when_streams_hold_malformed_entries_answers_without_5xx(
    system: FaultSystem,
) -> None:
    assert int(await system.redis.xlen("sys:dlq")) > 0  # the tests above ran first
    async with httpx.AsyncClient(base_url=system.monitor_url, timeout=10) as http:
        for path in ENDPOINTS:
            r = await http.get(path)
            assert r.status_code < 500, (path, r.status_code, r.text[:300])
    assert await system.healthy("monitor")
