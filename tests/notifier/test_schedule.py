"""IB Gateway's scheduled restarts: expected disconnects, and the login alert after."""

from __future__ import annotations

import time
from datetime import datetime

import redis.asyncio as aioredis

from shared.contract import GW_STATUS
from shared.ib_schedule import NEW_YORK, scheduled_restart
from shared.schemas import AlertSeverity, AlertState, ConnState, GatewayStatus
from shared.settings import Settings
from tests.helpers import wait_until
from tests.notifier.conftest import StartNotifier
from tests.notifier.helpers import add, alerts, has_group


def _ny(*args: int) -> float:
    return datetime(*args, tzinfo=NEW_YORK).timestamp()


def test_scheduled_restart_when_disconnect_near_daily_or_weekly_time_is_named(
    settings: Settings,
) -> None:
    s = settings.model_copy(update={"ib_restart_time": "23:45", "ib_restart_window_s": 600.0})
    assert scheduled_restart(_ny(2026, 12, 2, 23, 46), s) == "daily"  # Wednesday
    assert scheduled_restart(_ny(2026, 12, 2, 23, 44, 30), s) == "daily"  # a little early
    assert scheduled_restart(_ny(2026, 12, 3, 0, 0), s) is None  # 15 min late: an outage
    assert scheduled_restart(_ny(2026, 12, 2, 14, 0), s) is None
    assert scheduled_restart(_ny(2026, 12, 6, 1, 3), s) == "weekly"  # Sunday 01:03
    off = s.model_copy(update={"ib_restart_time": ""})
    assert scheduled_restart(_ny(2026, 12, 2, 23, 46), off) is None


async def test_gateway_down_when_in_restart_window_is_scheduled_then_asks_to_approve_login(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    now_ny = datetime.now(NEW_YORK).strftime("%H:%M")
    await start_notifier(ib_restart_time=now_ny, ib_login_grace_s=1.0, alert_gateway_down_s=0.2)
    await wait_until(lambda: has_group(redis, GW_STATUS), what="gw:status group")
    t0 = time.monotonic()
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED, reason="eof"))

    async def two() -> bool:
        return len(await alerts(redis)) >= 2

    await wait_until(two, what="restart notice and login alert")
    assert time.monotonic() - t0 >= 1.0  # the outage threshold (0.2 s) did not apply
    restart, login = (await alerts(redis))[:2]
    assert (restart.alert_key, restart.state, restart.severity) == (
        "gateway:restart", AlertState.EVENT, AlertSeverity.INFO,
    )  # fmt: skip
    assert "daily scheduled restart" in restart.message
    assert (login.alert_key, login.state, login.severity) == (
        "gateway", AlertState.OPEN, AlertSeverity.CRITICAL,
    )  # fmt: skip
    assert "approve the IB login on your phone" in login.message
