"""The Alerts panel: open conditions first, then history, with delivery per channel.

``sys:alerts`` is the source of truth: the latest entry of each key says whether a
condition is open. Delivery status comes from what the notifier publishes for
readers (``notifier:delivery:{entry}``, ``notifier:channels``: channel ids only,
never URLs). "Send test alert" adds an event to ``sys:alerts`` behind the token.
"""

from __future__ import annotations

import time
import uuid
from enum import StrEnum
from typing import Annotated, Any

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, Query, Request

from services.monitor import models as m
from services.monitor.controls import FailureLimiter, authorize
from shared.contract import SYS_ALERTS, notifier_delivery_key
from shared.envelope import DecodeError, decode, encode
from shared.logs import get_logger
from shared.redis_text import as_str
from shared.schemas import Alert, AlertSeverity, AlertState
from shared.status_rows import channel_rows

log = get_logger("optbot.monitor.alerts")
SCAN = 500  # newest sys:alerts entries considered for "open"


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": m.Problem, "description": "missing or wrong Bearer token"},
    403: {"model": m.Problem, "description": "controls disabled (no OPTBOT_CONTROL_TOKEN)"},
    429: {"model": m.Problem, "description": "too many failed attempts from this client"},
}


class AlertAction(StrEnum):
    TEST = "test_alert"


def _row(entry_id: str, ts: int, a: Alert, delivery: dict[str, str]) -> m.AlertRow:
    return m.AlertRow(
        id=entry_id, ts=ts / 1e9, code=a.code, key=a.alert_key, state=a.state.value,
        severity=a.severity.value, message=a.message, source=a.source,
        opened_at=a.opened_at or None, details=dict(a.details), delivery=delivery,
    )  # fmt: skip


async def panel(redis: aioredis.Redis, limit: int) -> m.AlertsPanel:
    rows: Any = await redis.xrevrange(SYS_ALERTS, count=max(limit, SCAN))
    latest: dict[str, tuple[str, int, Alert]] = {}
    history: list[tuple[str, int, Alert]] = []
    for raw_id, fields in rows:
        try:
            msg = decode(fields, as_str(raw_id))
        except DecodeError:
            continue
        if not isinstance(msg.body, Alert):
            continue
        item = (msg.id, msg.ts, msg.body)
        latest.setdefault(msg.body.alert_key, item)
        if len(history) < limit:
            history.append(item)
    open_items = [i for i in latest.values() if i[2].state is AlertState.OPEN]
    chosen = open_items + history
    async with redis.pipeline(transaction=False) as pipe:
        for entry_id, _ts, _a in chosen:
            pipe.hgetall(notifier_delivery_key(entry_id))
        deliveries: list[Any] = await pipe.execute() if chosen else []
    made = [
        _row(e, ts, a, {as_str(k): as_str(v) for k, v in d.items()})
        for (e, ts, a), d in zip(chosen, deliveries, strict=True)
    ]
    channels = [m.ChannelHealth(**vars(c)) for c in await channel_rows(redis)]
    return m.AlertsPanel(
        now=time.time(), open=made[: len(open_items)], history=made[len(open_items) :],
        channels=channels,
    )  # fmt: skip


def alert_routes(
    api: APIRouter, redis: aioredis.Redis, ctx: Any, metrics: Any, limiter: FailureLimiter
) -> None:
    """``GET /api/alerts`` and ``POST /api/alerts/test`` (Bearer token, like controls).

    ``limiter`` is the controls' own failed-token lockout: one budget of guesses in all.
    """
    settings = ctx.settings
    token = settings.control_token.get_secret_value()

    def check(request: Request) -> None:
        authorize(request, AlertAction.TEST, token, metrics, limiter)

    @api.get("/alerts", response_model=m.AlertsPanel, tags=["system"])
    async def alerts(
        limit: Annotated[int, Query(ge=1, le=500, description="history rows")] = 50,
    ) -> m.AlertsPanel:
        """Open conditions first, then the newest alerts, each with its delivery per channel."""
        return await panel(redis, limit)

    @api.post(
        "/alerts/test",
        response_model=m.TestAlertResult,
        tags=["control"],
        responses=_ERRORS,
        dependencies=[Depends(check)],
    )
    async def test_alert(request: Request) -> m.TestAlertResult:
        """Add a test alert to sys:alerts: every channel should receive it."""
        who = f"dashboard@{request.client.host if request.client else 'unknown'}"
        key = f"test:{uuid.uuid4().hex[:8]}"
        alert = Alert(
            code="test", severity=AlertSeverity.INFO, key=key, source=f"monitor ({who})",
            message="test alert from the dashboard: if you read this, the channel works",
        )  # fmt: skip
        fields: Any = encode(alert, src=f"monitor/{ctx.instance}", key=key)
        entry = as_str(
            await redis.xadd(
                SYS_ALERTS, fields, maxlen=settings.maxlen(SYS_ALERTS), approximate=True
            )
        )
        log.info("test_alert", who=who, entry=entry, key=key)
        return m.TestAlertResult(entry_id=entry, key=key)
