"""Operator controls, applied here: the strategy is the one writer of ``risk:state``.

The CLI and the dashboard only ask (a ``control`` request on ``sys:control``); the
desk writes the new state with its ``risk.state`` record in one MULTI, keeping the
daily-loss ``breach_day``. A request for the standing state is answered too, so
its requester learns what holds. An expired request is refused: its requester has
already reported it as not applied, and a resume must not act hours later.
"""

from __future__ import annotations

import time
from typing import Any

from services.strategy.cycle import Cycles
from services.strategy.desk import Desk
from services.strategy.risk import RiskState
from shared.envelope import Message
from shared.logs import get_logger
from shared.schemas import Control, ControlAction

log = get_logger("optbot.strategy.controls")

CONTROL_STATES = {
    ControlAction.HALT: RiskState.HALTED,
    ControlAction.REDUCE: RiskState.REDUCING,
    ControlAction.RESUME: RiskState.ACTIVE,
}


def recent_id(since: float) -> str:
    """The stream id at epoch seconds ``since``: where a new ``sys:control`` group starts,
    so a request sent while the strategy was starting is applied, not skipped."""
    return f"{int(max(0.0, since) * 1000)}-0"


class ControlHandler:
    """Turns ``control`` requests into state changes, flattens and cancelled entries."""

    def __init__(self, desk: Desk, cycles: Cycles) -> None:
        self.desk = desk
        self.cycles = cycles

    async def on_control(self, msg: Message[Any]) -> None:
        """Handle one ``sys:control`` entry (our own ``risk.state`` records are skipped)."""
        body = msg.body
        if isinstance(body, Control):
            await self.apply(body, msg.id)

    async def apply(self, body: Control, request_id: str) -> None:
        if body.expires and time.time() > body.expires:
            log.warning(
                "control_expired",
                action=body.action.value,
                who=body.who,
                request=request_id,
                late_s=round(time.time() - body.expires, 3),
            )
            return
        if body.action is ControlAction.FLATTEN:
            await self.cycles.flatten(body.target, body.who)
            return
        target = CONTROL_STATES[body.action]
        await self.desk.refresh_status()  # the persisted state is the one to compare with
        await self.desk.set_state(target, body.why, body.who, request=request_id)
        if target is not RiskState.ACTIVE:
            reason = f"risk {target.value} by {body.who}"
            await self.desk.cancel_entries(reason, self.cycles.cycle_id())
        self.cycles.wake.set()
