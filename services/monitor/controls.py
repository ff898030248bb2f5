"""Operator controls: Bearer-token check and the halt/reduce/resume/flatten actions.

Controls exist only when ``OPTBOT_CONTROL_TOKEN`` is set; the token is compared in
constant time and never logged or echoed. A refused attempt is logged with the
caller's address so an operator can see who tried.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

from services.monitor import models as m
from services.monitor.metrics import MonitorMetrics
from shared.control import apply_control
from shared.logs import get_logger
from shared.runner import ServiceContext
from shared.schemas import Control, ControlAction

log = get_logger("optbot.monitor.controls")

DISABLED = "controls are disabled: set OPTBOT_CONTROL_TOKEN to enable them"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def authorize(request: Request, action: ControlAction, token: str, metrics: MonitorMetrics) -> None:
    """Raise 403 when controls are off, 401 on a missing or wrong Bearer token."""
    if not token:
        metrics.controls.labels(action.value, "disabled").inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, DISABLED)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    if not ok:
        metrics.controls.labels(action.value, "unauthorized").inc()
        log.warning(
            "control_refused",
            action=action.value,
            client=_client(request),
            reason="missing token" if not given else "wrong token",
        )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or invalid Bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )


async def perform(
    ctx: ServiceContext,
    request: Request,
    action: ControlAction,
    body: m.ControlRequest,
    metrics: MonitorMetrics,
    target: str = "",
) -> m.ControlResult:
    """Write the risk state and the ``control`` event; who defaults to the dashboard."""
    who = body.who.strip() or f"dashboard@{_client(request)}"
    why = body.why.strip() or f"{action.value} from the dashboard"
    event = Control(action=action, who=who, why=why, target=target)
    result = await apply_control(ctx.redis, ctx.settings, event, src=f"monitor/{ctx.instance}")
    metrics.controls.labels(action.value, "ok").inc()
    log.info(
        "control", action=action.value, who=who, why=why, target=target, event_id=result.event_id
    )
    return m.ControlResult(
        action=action.value,
        state=m.RiskStateName(result.state.value) if result.state else None,
        who=who,
        why=why,
        target=target,
        event_id=result.event_id,
        since=result.since,
    )
