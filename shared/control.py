"""Operator control actions, written the same way by the CLI and the dashboard.

An action sets ``risk:state`` (fields state, why, who, since) and records a
``control`` event on ``sys:control`` in one MULTI, so the state and its audit
trail never disagree. ``flatten`` changes no state: it asks the strategy to close
one position (``target`` is the contract key).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import redis.asyncio as aioredis

from shared.envelope import encode
from shared.redis_text import as_str
from shared.schemas import Control, ControlAction
from shared.settings import Settings
from shared.streams import RISK_STATE, SYS_CONTROL


class RiskState(StrEnum):
    """What the risk engine allows: everything, only exits, or nothing new."""

    ACTIVE = "ACTIVE"
    REDUCING = "REDUCING"
    HALTED = "HALTED"


_STATE_AFTER: dict[ControlAction, RiskState | None] = {
    ControlAction.HALT: RiskState.HALTED,
    ControlAction.REDUCE: RiskState.REDUCING,
    ControlAction.RESUME: RiskState.ACTIVE,
    ControlAction.FLATTEN: None,
}


def state_after(action: ControlAction) -> RiskState | None:
    """The risk state an action sets (None: the action leaves the state alone)."""
    return _STATE_AFTER[action]


@dataclass(frozen=True)
class ControlResult:
    action: ControlAction
    state: RiskState | None
    event_id: str
    since: float


async def apply_control(
    redis: aioredis.Redis,
    settings: Settings,
    body: Control,
    *,
    src: str,
) -> ControlResult:
    """Set ``risk:state`` (unless flatten) and add the ``control`` event, atomically."""
    state = state_after(body.action)
    since = time.time()
    async with redis.pipeline(transaction=True) as pipe:
        if state is not None:
            pipe.hset(
                RISK_STATE,
                mapping={
                    "state": state.value,
                    "why": body.why,
                    "who": body.who,
                    "since": f"{since:.3f}",
                },
            )
        pipe.xadd(
            SYS_CONTROL,
            encode(body, src=src, key=body.target or body.action.value),  # type: ignore[arg-type]
            maxlen=settings.maxlen_control,
            approximate=True,
        )
        replies = await pipe.execute()
    raw = replies[-1]
    event_id = as_str(raw)
    return ControlResult(action=body.action, state=state, event_id=event_id, since=since)
