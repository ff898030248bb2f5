"""Deliver: sys:alerts to real loopback receivers (Apprise json:// and mailto://)."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from shared.contract import SYS_ALERTS, notifier_delivery_key
from shared.schemas import Alert, AlertSeverity, AlertState
from tests.helpers import wait_until
from tests.notifier.conftest import StartNotifier
from tests.notifier.helpers import add, channel_health
from tests.notifier.receivers import JsonReceiver, SmtpReceiver


def _alert(state: AlertState, message: str, key: str = "gateway", opened_at: float = 0.0) -> Alert:
    severity = AlertSeverity.INFO if state is AlertState.CLOSED else AlertSeverity.CRITICAL
    return Alert(code=key.split(":")[0], severity=severity, message=message, source="test",
                 key=key, state=state, opened_at=opened_at)  # fmt: skip


async def test_open_and_closed_alert_when_written_reach_both_channels_with_content(
    redis: aioredis.Redis,
    start_notifier: StartNotifier,
    json_receiver: JsonReceiver,
    smtp_receiver: SmtpReceiver,
) -> None:
    await start_notifier(f"{json_receiver.url}, {smtp_receiver.url}")
    opened = time.time() - 192
    entry = await add(
        redis, SYS_ALERTS, _alert(AlertState.OPEN, "gateway disconnected for 1 m", opened_at=opened)
    )
    await wait_until(
        lambda: json_receiver.messages() and smtp_receiver.mails, what="open delivered"
    )
    first = json_receiver.messages()[0]
    assert first["title"] == "optbot [CRITICAL] gateway"
    assert "gateway disconnected for 1 m" in first["message"]
    assert first["type"] == "failure"
    assert smtp_receiver.subjects() == ["optbot [CRITICAL] gateway"]
    assert "gateway disconnected for 1 m" in smtp_receiver.bodies()[0]

    await add(
        redis,
        SYS_ALERTS,
        _alert(AlertState.CLOSED, "gateway connected again after 3 m 12 s", opened_at=opened),
    )
    await wait_until(
        lambda: len(json_receiver.messages()) == 2 and len(smtp_receiver.mails) == 2,
        what="recovery delivered",
    )
    recovery = json_receiver.messages()[1]
    assert recovery["title"] == "optbot [RECOVERED] gateway"
    assert "gateway connected again after 3 m 12 s" in recovery["message"]
    assert recovery["type"] == "success"
    delivery = await redis.hgetall(notifier_delivery_key(entry))
    assert sorted(delivery.values()) == [b"sent", b"sent"]


async def test_event_when_repeated_within_dedup_window_is_sent_once(
    redis: aioredis.Redis, start_notifier: StartNotifier, json_receiver: JsonReceiver
) -> None:
    await start_notifier(json_receiver.url, alert_dedup_s=60.0)
    for _ in range(3):
        await add(redis, SYS_ALERTS, _alert(AlertState.EVENT, "client id in use", key="ib:326"))
    await add(redis, SYS_ALERTS, _alert(AlertState.EVENT, "competing session", key="ib:10197"))
    await wait_until(lambda: len(json_receiver.messages()) >= 2, what="two distinct events")
    titles = json_receiver.titles()
    assert titles.count("optbot [CRITICAL] ib:326") == 1
    assert titles.count("optbot [CRITICAL] ib:10197") == 1


async def test_open_alert_when_it_lasts_is_repeated_until_closed(
    redis: aioredis.Redis, start_notifier: StartNotifier, json_receiver: JsonReceiver
) -> None:
    await start_notifier(json_receiver.url, alert_repeat_s=0.4)
    opened = time.time()
    await add(
        redis,
        SYS_ALERTS,
        _alert(AlertState.OPEN, "strategy stopped", key="service:strategy", opened_at=opened),
    )
    await wait_until(lambda: len(json_receiver.messages()) >= 3, what="two reminders")
    reminders = json_receiver.messages()[1:]
    assert all(m["title"] == "optbot [STILL OPEN CRITICAL] service:strategy" for m in reminders)
    assert all("open for" in m["message"] for m in reminders)

    await add(
        redis,
        SYS_ALERTS,
        _alert(
            AlertState.CLOSED,
            "strategy is back after 2 s",
            key="service:strategy",
            opened_at=opened,
        ),
    )
    await wait_until(
        lambda: "optbot [RECOVERED] service:strategy" in json_receiver.titles(), what="recovery"
    )
    count = len(json_receiver.messages())
    # No reminder after the recovery: wait three repeat periods for a marker event instead.
    await wait_until(lambda: time.time() - opened > 0, what="clock")
    deadline = time.monotonic() + 1.5
    await add(redis, SYS_ALERTS, _alert(AlertState.EVENT, "marker", key="marker"))
    await wait_until(lambda: "optbot [CRITICAL] marker" in json_receiver.titles(), what="marker")
    await wait_until(lambda: time.monotonic() > deadline, timeout=3, what="three repeat periods")
    assert len(json_receiver.messages()) == count + 1


async def test_closed_alert_when_never_told_open_is_not_sent(
    redis: aioredis.Redis, start_notifier: StartNotifier, json_receiver: JsonReceiver
) -> None:
    await start_notifier(json_receiver.url)
    await add(
        redis, SYS_ALERTS, _alert(AlertState.CLOSED, "back after 1 s", key="dlq", opened_at=1.0)
    )
    await add(redis, SYS_ALERTS, _alert(AlertState.EVENT, "marker", key="marker"))
    await wait_until(lambda: json_receiver.titles(), what="marker")
    assert json_receiver.titles() == ["optbot [CRITICAL] marker"]


async def test_failing_channel_when_receiver_errors_retries_with_backoff_then_delivers(
    redis: aioredis.Redis,
    start_notifier: StartNotifier,
    json_receiver: JsonReceiver,
    smtp_receiver: SmtpReceiver,
) -> None:
    json_receiver.fail = True
    await start_notifier(f"{json_receiver.url} {smtp_receiver.url}")
    entry = await add(
        redis, SYS_ALERTS, _alert(AlertState.EVENT, "daily loss limit breached", key="loss_limit")
    )
    await wait_until(lambda: smtp_receiver.mails, what="the healthy channel is not held up")

    async def failing_twice() -> bool:
        health = await channel_health(redis)
        json_ch = next(v for k, v in health.items() if k.startswith("json-"))
        return json_ch["state"] == "failing" and json_ch["attempts"] >= 2

    await wait_until(failing_twice, timeout=10, what="json channel failing, retried")
    assert await redis.xlen(SYS_ALERTS) == 1  # the alert is kept whatever the channels do
    status = await redis.hgetall(notifier_delivery_key(entry))
    assert any(v.startswith(b"retrying") for v in status.values())
    assert b"sent" in status.values()

    json_receiver.fail = False
    await wait_until(lambda: json_receiver.messages(), timeout=10, what="delivered after recovery")
    assert json_receiver.titles() == ["optbot [CRITICAL] loss_limit"]

    async def ok_again() -> bool:
        health = await channel_health(redis)
        return all(v["state"] == "ok" and v["queued"] == 0 for v in health.values())

    await wait_until(ok_again, what="both channels ok")


async def test_restart_when_alerts_were_delivered_sends_no_duplicate(
    redis: aioredis.Redis, start_notifier: StartNotifier, json_receiver: JsonReceiver
) -> None:
    first = await start_notifier(json_receiver.url)
    opened = time.time()
    await add(redis, SYS_ALERTS, _alert(AlertState.OPEN, "gateway down", opened_at=opened))
    await wait_until(lambda: json_receiver.messages(), what="first delivery")
    assert await first.stop() == 0

    await start_notifier(json_receiver.url)
    # A second writer of the same condition, then a marker to know both were handled.
    await add(redis, SYS_ALERTS, _alert(AlertState.OPEN, "gateway down", opened_at=opened))
    await add(redis, SYS_ALERTS, _alert(AlertState.EVENT, "marker", key="marker"))
    await wait_until(lambda: "optbot [CRITICAL] marker" in json_receiver.titles(), what="marker")
    assert json_receiver.titles().count("optbot [CRITICAL] gateway") == 1


async def test_channel_when_over_its_rate_limit_queues_the_rest_without_dropping(
    redis: aioredis.Redis, start_notifier: StartNotifier, json_receiver: JsonReceiver
) -> None:
    await start_notifier(json_receiver.url, alert_rate_per_min=2)
    for i in range(4):
        await add(redis, SYS_ALERTS, _alert(AlertState.EVENT, f"event {i}", key=f"ib:10197:{i}"))

    async def two_sent_two_queued() -> bool:
        health = await channel_health(redis)
        return any(h["sent"] == 2 and h["queued"] == 2 for h in health.values())

    await wait_until(two_sent_two_queued, what="two sent, two waiting their turn")
    assert len(json_receiver.messages()) == 2
