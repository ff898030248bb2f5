"""Alerts panel and the "send test alert" action, over real HTTP, with the notifier."""

from __future__ import annotations

import time

import httpx
import redis.asyncio as aioredis

from shared.contract import SYS_ALERTS
from shared.schemas import Alert, AlertSeverity, AlertState
from tests.helpers import wait_until
from tests.monitor.conftest import TOKEN, StartMonitor
from tests.notifier.conftest import SECRET_PATH, StartNotifier
from tests.notifier.conftest import json_receiver as json_receiver
from tests.notifier.conftest import start_notifier as start_notifier
from tests.notifier.helpers import add
from tests.notifier.receivers import JsonReceiver


async def test_alerts_panel_when_a_condition_is_open_lists_it_first_with_delivery(
    redis: aioredis.Redis,
    start_monitor: StartMonitor,
    start_notifier: StartNotifier,
    json_receiver: JsonReceiver,
) -> None:
    await start_notifier(json_receiver.url)
    mon = await start_monitor()
    opened = time.time()
    gateway = Alert(code="gateway", severity=AlertSeverity.CRITICAL, message="gateway down",
                    key="gateway", state=AlertState.OPEN, opened_at=opened)  # fmt: skip
    await add(redis, SYS_ALERTS, gateway)
    await add(redis, SYS_ALERTS, Alert(code="ib_326", severity=AlertSeverity.CRITICAL,
              message="client id in use", key="ib:326"))  # fmt: skip
    await wait_until(lambda: len(json_receiver.messages()) == 2, what="both delivered")
    async with httpx.AsyncClient(base_url=mon.url, timeout=5) as http:

        async def delivered() -> dict[str, object] | None:
            body = (await http.get("/api/alerts")).json()
            sent = body["open"] and set(body["open"][0]["delivery"].values()) == {"sent"}
            return body if sent else None

        body = await wait_until(delivered, what="delivery status on the panel")
        assert [a["key"] for a in body["open"]] == ["gateway"]
        assert [a["key"] for a in body["history"]] == ["ib:326", "gateway"]
        [channel] = body["channels"]
        assert channel["id"].startswith("json-") and channel["state"] == "ok"
        page = (await http.get("/")).text + (await http.get("/static/app.js")).text
        everything = str(body) + page + (await http.get("/api/system")).text
    assert "send test alert" in page
    assert SECRET_PATH not in everything and "S3CR3T" not in everything


async def test_send_test_alert_when_token_given_reaches_the_channel_and_without_is_refused(
    redis: aioredis.Redis,
    start_monitor: StartMonitor,
    start_notifier: StartNotifier,
    json_receiver: JsonReceiver,
) -> None:
    await start_notifier(json_receiver.url)
    mon = await start_monitor()
    async with httpx.AsyncClient(base_url=mon.url, timeout=5) as http:
        refused = await http.post("/api/alerts/test")
        wrong = await http.post("/api/alerts/test", headers={"Authorization": "Bearer nope"})
        ok = await http.post("/api/alerts/test", headers={"Authorization": f"Bearer {TOKEN}"})
    assert (refused.status_code, wrong.status_code, ok.status_code) == (401, 401, 200)
    assert await redis.xlen(SYS_ALERTS) == 1
    await wait_until(lambda: json_receiver.messages(), what="test alert delivered")
    [msg] = json_receiver.messages()
    assert msg["title"] == f"optbot [INFO] {ok.json()['key']}"
    assert "if you read this, the channel works" in msg["message"]
