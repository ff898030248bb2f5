"""Operator controls: Bearer-token check and the halt/reduce/resume/flatten actions.

Controls exist only when ``OPTBOT_CONTROL_TOKEN`` is set; the token is compared in
constant time and never logged or echoed. A refused attempt is logged with the
caller's address so an operator can see who tried.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from enum import StrEnum

from fastapi import HTTPException, Request, status

from services.monitor import models as m
from services.monitor.metrics import MonitorMetrics
from shared.control import ControlNotApplied, request_control
from shared.logs import get_logger
from shared.runner import ServiceContext
from shared.schemas import Control, ControlAction

log = get_logger("optbot.monitor.controls")

DISABLED = "controls are disabled: set OPTBOT_CONTROL_TOKEN to enable them"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


class FailureLimiter:
    """Locks a client out after ``limit`` failed attempts within ``window_s`` seconds.

    Keyed by the client address as uvicorn sees it: ``X-Forwarded-For`` counts only
    from ``OPTBOT_MONITOR_TRUSTED_PROXIES``, so a rotating header buys no fresh tries.
    It slows guessing and floods of refusals; the token's length (24+ characters) is
    what makes guessing hopeless.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.setdefault(client, deque())
        while times and now - times[0] > self.window_s:
            times.popleft()
        return times

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again (0: now)."""
        now = time.monotonic()
        times = self._recent(client, now)
        if len(times) < self.limit:
            return 0.0
        return max(0.0, self.window_s - (now - times[0]))

    def failed(self, client: str) -> None:
        now = time.monotonic()
        self._recent(client, now).append(now)
        if len(self._failures) > 10_000:  # bounded memory under a spray of addresses
            self._failures.pop(next(iter(self._failures)))


def authorize(
    request: Request,
    action: StrEnum,
    token: str,
    metrics: MonitorMetrics,
    limiter: FailureLimiter,
) -> None:
    """403 when controls are off, 401 on a bad token, 429 while that client is locked out.

    The token is checked first: the right token is never refused, so other clients
    behind the same address (or an attacker spoofing it) cannot lock the operator out.
    """
    if not token:
        metrics.controls.labels(action.value, "disabled").inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, DISABLED)
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return
    client = _client(request)
    wait = limiter.retry_after(client)
    if wait > 0:
        metrics.controls.labels(action.value, "throttled").inc()
        log.warning("control_throttled", action=action.value, client=client, retry_after_s=wait)
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed attempts; try again later",
            headers={"Retry-After": str(max(1, round(wait)))},
        )
    limiter.failed(client)
    metrics.controls.labels(action.value, "unauthorized").inc()
    log.warning(
        "control_refused",
        action=action.value,
        client=client,
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
    """Ask the strategy (a ``control`` request) and answer with the state it applied.

    503 when the strategy is not running, 504 when it runs but did not answer in
    ``OPTBOT_CONTROL_TIMEOUT_S``; either way the request expires unapplied.
    """
    who = body.who.strip() or f"dashboard@{_client(request)}"
    why = body.why.strip() or f"{action.value} from the dashboard"
    event = Control(action=action, who=who, why=why, target=target)
    try:
        reply = await request_control(ctx.redis, ctx.settings, event, src=f"monitor/{ctx.instance}")
    except ControlNotApplied as exc:
        running = exc.strategy_running
        code = status.HTTP_504_GATEWAY_TIMEOUT if running else status.HTTP_503_SERVICE_UNAVAILABLE
        metrics.controls.labels(action.value, "not_applied").inc()
        log.warning("control_not_applied", action=action.value, who=who, reason=exc.reason)
        raise HTTPException(code, exc.reason) from exc
    metrics.controls.labels(action.value, "ok").inc()
    change = reply.change
    log.info(
        "control",
        action=action.value,
        who=who,
        why=why,
        target=target,
        event_id=reply.request_id,
        state=change.state.value if change else None,
    )
    if change is None:  # flatten: sent, the state is unchanged
        return m.ControlResult(
            action=action.value, who=who, why=why, target=target,
            event_id=reply.request_id, since=time.time(),
        )  # fmt: skip
    return m.ControlResult(
        action=action.value,
        state=change.state,
        previous=change.previous,
        changed=change.changed,
        who=change.who,
        why=change.why,
        target=target,
        event_id=reply.request_id,
        applied_id=reply.change_id,
        since=change.since,
    )
