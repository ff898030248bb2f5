"""Operator control requests, sent the same way by the CLI and the dashboard.

The strategy alone writes ``risk:state``. A requester adds a ``control`` entry to
``sys:control`` and waits for the strategy's ``risk.state`` answer on the same
stream, so the audit trail shows the request and the applied change one after the
other. Every request carries a deadline: one the strategy did not answer in time is
reported as not applied, and the strategy refuses it if it sees it later.
``flatten`` changes no state: it is sent only while the strategy is running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import msgspec
import redis.asyncio as aioredis

from shared.contract import SYS_CONTROL, service_key
from shared.envelope import DecodeError, decode, encode
from shared.redis_text import as_str
from shared.schemas import Control, ControlAction, RiskStateChange
from shared.settings import Settings

STRATEGY = "strategy"
READ_BATCH = 100


class ControlNotApplied(Exception):
    """The strategy did not apply a request; ``strategy_running`` says whether it beats."""

    def __init__(self, reason: str, *, strategy_running: bool, request_id: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.strategy_running = strategy_running
        self.request_id = request_id


@dataclass(frozen=True)
class ControlReply:
    """The request's entry id and, for a state action, the strategy's answer."""

    request_id: str
    change: RiskStateChange | None = None  # None: flatten (no state to wait for)
    change_id: str = ""


async def strategy_running(redis: aioredis.Redis) -> bool:
    """Whether the strategy's heartbeat key exists (it expires when the strategy stops)."""
    return bool(await redis.exists(service_key(STRATEGY)))


async def send_control(
    redis: aioredis.Redis, settings: Settings, body: Control, *, src: str
) -> str:
    """Add the request (with its deadline) to ``sys:control``; returns its entry id."""
    if not body.expires:
        body = msgspec.structs.replace(body, expires=time.time() + settings.control_timeout_s)
    fields: Any = encode(body, src=src, key=body.target or body.action.value)
    raw = await redis.xadd(
        SYS_CONTROL, fields, maxlen=settings.maxlen(SYS_CONTROL), approximate=True
    )
    return as_str(raw)


async def wait_for_state(
    redis: aioredis.Redis, request_id: str, timeout_s: float
) -> tuple[str, RiskStateChange] | None:
    """The ``risk.state`` record answering ``request_id``, or None after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    cursor = request_id
    while (left := deadline - time.monotonic()) > 0:
        reply: Any = await redis.xread(
            {SYS_CONTROL: cursor}, count=READ_BATCH, block=max(1, int(left * 1000))
        )
        for _stream, entries in reply or []:
            for raw_id, fields in entries:
                cursor = as_str(raw_id)
                try:
                    msg = decode(fields, cursor)
                except DecodeError:
                    continue  # not ours to judge: the consumers dead-letter it
                if isinstance(msg.body, RiskStateChange) and msg.body.request == request_id:
                    return cursor, msg.body
    return None


async def request_control(
    redis: aioredis.Redis, settings: Settings, body: Control, *, src: str
) -> ControlReply:
    """Send a request and, for a state action, wait until the strategy applied it.

    Raises ``ControlNotApplied`` when the strategy is not running (a flatten is then
    not sent at all) or did not answer within ``OPTBOT_CONTROL_TIMEOUT_S``.
    """
    timeout = settings.control_timeout_s
    if body.action is ControlAction.FLATTEN:
        if not await strategy_running(redis):
            raise ControlNotApplied(
                "the strategy is not running (no heartbeat): flatten not sent",
                strategy_running=False,
            )
        return ControlReply(await send_control(redis, settings, body, src=src))
    request_id = await send_control(redis, settings, body, src=src)
    answer = await wait_for_state(redis, request_id, timeout)
    if answer is None:
        running = await strategy_running(redis)
        why = (
            "the strategy is running but did not answer (see its log)"
            if running
            else "the strategy is not running (no heartbeat)"
        )
        raise ControlNotApplied(
            f"{body.action.value} not applied within {timeout:g}s: {why}; "
            f"request {request_id} expires unapplied",
            strategy_running=running,
            request_id=request_id,
        )
    change_id, change = answer
    return ControlReply(request_id, change, change_id)
