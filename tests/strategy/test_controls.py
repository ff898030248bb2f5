"""Operator controls applied by the strategy, the one writer of ``risk:state``.

Requests go in as the CLI sends them (``sys:control``) and are applied by the
service's own handler over real Redis; what the desk wrote is read back.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.strategy.controls import ControlHandler
from services.strategy.risk import RiskState, load_status
from shared.contract import RISK_STATE, SYS_CONTROL
from shared.control import send_control, wait_for_state
from shared.envelope import decode
from shared.schemas import Control, ControlAction, RiskStateChange
from shared.settings import Settings
from tests.running import strategy_running
from tests.strategy.desk_rig import Rig, hold_long, make_rig


@pytest.fixture
async def rig(redis: aioredis.Redis, settings: Settings) -> Rig:
    return await make_rig(redis, settings)


async def _records(redis: aioredis.Redis) -> list[RiskStateChange]:
    rows: Any = await redis.xrange(SYS_CONTROL)
    bodies = [decode(f, i.decode()).body for i, f in rows]
    return [b for b in bodies if isinstance(b, RiskStateChange)]


async def _commands(redis: aioredis.Redis, started: asyncio.Event, out: list[str]) -> None:
    """Every command Redis runs (MONITOR), until EXEC."""
    async with redis.monitor() as mon:
        started.set()
        for _ in range(1000):
            info = await mon.next_command()
            out.append(str(info["command"]).split(" ")[0].upper())
            if out[-1] == "EXEC":
                return


async def test_halt_when_requested_writes_state_and_its_record_in_one_multi(
    rig: Rig, redis: aioredis.Redis
) -> None:
    request_id = await send_control(
        rig.redis, rig.settings, Control(action=ControlAction.HALT, who="ann", why="news"), src="t"
    )
    rows: Any = await rig.redis.xrange(SYS_CONTROL, request_id, request_id)
    started, seen = asyncio.Event(), list[str]()
    watcher = asyncio.create_task(_commands(redis, started, seen))
    await asyncio.wait_for(started.wait(), 5)
    await ControlHandler(rig.desk, rig.cycles).on_control(decode(rows[0][1], request_id))
    await asyncio.wait_for(watcher, 10)
    writes = [c for c in seen if c in ("MULTI", "HSET", "XADD", "EXEC")]
    assert writes == ["MULTI", "HSET", "XADD", "EXEC"], seen
    status = await load_status(rig.redis)
    (record,) = await _records(rig.redis)
    assert (status.state, status.who, status.why) == (RiskState.HALTED, "ann", "news")
    assert (record.state, record.previous, record.who, record.why) == (
        RiskState.HALTED, RiskState.ACTIVE, "ann", "news",
    )  # fmt: skip
    assert record.request == request_id and record.since == pytest.approx(status.since, abs=1e-3)


async def test_operator_state_when_applied_after_a_breach_keeps_breach_day(rig: Rig) -> None:
    await hold_long(rig, 1.80)
    rig.quote(0.25, 0.30)
    await rig.tick()  # the daily loss limit trips: REDUCING, breach_day today
    assert (await rig.control(ControlAction.HALT, "ann", "look")).state is RiskState.HALTED
    assert await rig.redis.hget(RISK_STATE, "breach_day") == b"2026-12-02"
    await rig.control(ControlAction.RESUME, "ann", "seen")
    for _ in range(3):
        await rig.tick()
    status = await load_status(rig.redis)
    assert (status.state, status.breach_day) == (RiskState.ACTIVE, "2026-12-02")
    breach, halt, resume = await _records(rig.redis)
    assert (breach.who, breach.breach, breach.state) == ("risk-engine", True, RiskState.REDUCING)
    assert (halt.previous, halt.breach) == (RiskState.REDUCING, False)
    assert (resume.state, resume.previous) == (RiskState.ACTIVE, RiskState.HALTED)


async def test_request_when_state_already_holds_answers_unchanged_and_writes_no_state(
    rig: Rig,
) -> None:
    await rig.control(ControlAction.HALT, "ann", "news")
    before = await rig.redis.hgetall(RISK_STATE)
    await rig.control(ControlAction.HALT, "bo", "again")
    assert await rig.redis.hgetall(RISK_STATE) == before  # ann's halt, since then, stands
    first, again = await _records(rig.redis)
    assert not again.changed and (again.who, again.why) == ("ann", "news")
    assert again.since == first.since and again.request and again.request != first.request


async def test_request_when_expired_is_refused_and_changes_nothing(rig: Rig) -> None:
    late = Control(action=ControlAction.RESUME, who="ann", why="old", expires=time.time() - 1)
    await ControlHandler(rig.desk, rig.cycles).apply(late, "1-0")
    assert await rig.redis.exists(RISK_STATE) == 0
    assert await _records(rig.redis) == []
    await rig.control(ControlAction.HALT, "ann", "fresh")  # a live one still applies
    assert (await load_status(rig.redis)).state is RiskState.HALTED


async def test_request_when_sent_while_strategy_starts_is_applied_once_it_runs(
    redis: aioredis.Redis, settings: Settings
) -> None:
    """A new sys:control group starts one control timeout back, not at "$"."""
    body = Control(action=ControlAction.HALT, who="ann", why="before start")
    request_id = await send_control(redis, settings, body, src="cli/ann")
    async with strategy_running(settings, redis):
        answer = await wait_for_state(redis, request_id, 10)
    assert answer is not None and answer[1].state is RiskState.HALTED
    assert (await load_status(redis)).why == "before start"
