"""Watch: conditions derived from the streams become open/closed alerts on sys:alerts."""

from __future__ import annotations

import time
from typing import Any

import redis.asyncio as aioredis

from shared.contract import (
    GW_STATUS,
    ORDERS_EVENTS,
    STRATEGY_POSITIONS,
    SYS_CONTROL,
    SYS_DLQ,
    service_key,
)
from shared.schemas import (
    Action,
    AlertSeverity,
    AlertState,
    ConnState,
    ContractRef,
    Control,
    ControlAction,
    GatewayStatus,
    IbError,
    OrderEvent,
    OrderEventKind,
    RiskState,
    RiskStateChange,
)
from tests.helpers import wait_until
from tests.notifier.conftest import StartNotifier
from tests.notifier.helpers import add, alerts, has_group


async def _ready(redis: aioredis.Redis) -> None:
    await wait_until(lambda: redis.exists(service_key("notifier")), what="notifier running")
    for stream in (GW_STATUS, SYS_CONTROL):
        await wait_until(lambda s=stream: has_group(redis, s), what=f"its group on {stream}")


async def test_gateway_down_when_longer_than_threshold_opens_once_and_closes_with_duration(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await start_notifier(alert_gateway_down_s=0.5)
    await _ready(redis)
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED, reason="socket closed"))
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.CONNECTING))
    await wait_until(lambda: alerts(redis), what="gateway alert")
    [opened] = await alerts(redis)
    assert (opened.alert_key, opened.state, opened.severity) == (
        "gateway", AlertState.OPEN, AlertSeverity.CRITICAL,
    )  # fmt: skip
    assert "gateway disconnected for" in opened.message and "socket closed" in opened.message
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.CONNECTED))

    async def two() -> bool:
        return len(await alerts(redis)) == 2

    await wait_until(two, what="recovery alert")
    closed = (await alerts(redis))[1]
    assert closed.state is AlertState.CLOSED and closed.opened_at == opened.opened_at
    assert closed.message.startswith("gateway connected again after ")


async def test_gateway_blip_when_shorter_than_threshold_raises_nothing(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await start_notifier(alert_gateway_down_s=3.0)
    await _ready(redis)
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED))
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.CONNECTED))
    await add(redis, GW_STATUS, IbError(code=10197, message="competing live session"))
    await wait_until(lambda: alerts(redis), what="the marker event")
    assert [a.alert_key for a in await alerts(redis)] == ["ib:10197"]


async def test_gateway_syncing_when_short_raises_no_gateway_alert(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await start_notifier(alert_gateway_down_s=3.0)
    await _ready(redis)
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED, reason="eof"))
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.CONNECTING))
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.SYNCING, reason="reconciling"))
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.CONNECTED))
    await add(redis, GW_STATUS, IbError(code=10197, message="competing live session"))
    await wait_until(lambda: alerts(redis), what="the marker event")
    assert [a.alert_key for a in await alerts(redis)] == ["ib:10197"]


async def test_gateway_sync_when_it_keeps_failing_alert_names_the_failed_sync(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await start_notifier(alert_gateway_down_s=0.5)
    await _ready(redis)
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED, reason="eof"))
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.CONNECTING))
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.SYNCING, reason="reconciling"))
    failed = "sync failed (2/5): TimeoutError(); retry in 0.4s"
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.DEGRADED, reason=failed))
    await wait_until(lambda: alerts(redis), what="gateway alert")
    [opened] = await alerts(redis)
    assert opened.alert_key == "gateway" and opened.state is AlertState.OPEN
    assert "gateway degraded for" in opened.message and failed in opened.message


def _applied(state: RiskState, previous: RiskState, who: str, why: str, **kw: Any) -> Any:
    return RiskStateChange(state=state, previous=previous, who=who, why=why, **kw)


async def test_risk_when_strategy_applies_states_alerts_on_applied_changes_not_on_requests(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await start_notifier()
    await _ready(redis)
    why = "daily loss 160.00 >= limit 150.28 (trading day 2026-12-02): exits only"
    active, reducing, halted = RiskState.ACTIVE, RiskState.REDUCING, RiskState.HALTED
    # a request the strategy never applied changed nothing: no alert for it
    await add(redis, SYS_CONTROL, Control(action=ControlAction.HALT, who="mallory", why="x"))
    breach = _applied(reducing, active, "risk-engine", why, breach=True)
    await add(redis, SYS_CONTROL, breach)
    await add(redis, SYS_CONTROL, breach)  # redelivered: once
    await add(redis, SYS_CONTROL, _applied(halted, reducing, "bob", "news"))
    await add(redis, SYS_CONTROL, _applied(halted, halted, "bob", "news"))  # "already HALTED"
    await add(redis, SYS_CONTROL, _applied(active, halted, "alice", "ok"))

    async def four() -> bool:
        return len(await alerts(redis)) >= 4

    await wait_until(four, what="risk alerts")
    got = await alerts(redis)
    assert [(a.alert_key, a.state) for a in got] == [
        ("risk", AlertState.OPEN), ("loss_limit", AlertState.EVENT),
        ("risk", AlertState.OPEN), ("risk", AlertState.CLOSED),
    ]  # fmt: skip
    assert got[0].message == f"trading REDUCING (exits only) by risk-engine: {why}"
    assert got[0].severity is AlertSeverity.WARNING
    assert got[1].severity is AlertSeverity.CRITICAL and why in got[1].message
    assert got[2].message == "trading HALTED by bob: news"
    assert got[2].severity is AlertSeverity.CRITICAL and got[2].opened_at > got[0].opened_at
    assert got[3].message.startswith("trading resumed by alice: ok after ")


async def test_ib_200_when_contract_is_held_alerts_and_when_not_held_stays_quiet(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await redis.hset(STRATEGY_POSITIONS, "AAPL 20261218 250 C", "{}")
    await start_notifier()
    await _ready(redis)
    await add(redis, GW_STATUS, IbError(code=200, message="no definition", symbol="MSFT"))
    await add(
        redis, GW_STATUS, IbError(code=200, message="no definition", symbol="AAPL 20261218 250 C")
    )
    await add(redis, GW_STATUS, IbError(code=354, message="not subscribed", symbol="VIX"))

    async def two() -> bool:
        return len(await alerts(redis)) >= 2

    await wait_until(two, what="IB alerts")
    assert [a.alert_key for a in await alerts(redis)] == [
        "ib:200:AAPL 20261218 250 C",
        "ib:354:VIX",
    ]


async def test_ib_1100_when_it_lasts_opens_and_1101_closes_and_reports_data_lost(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await start_notifier(alert_gateway_down_s=0.3)
    await _ready(redis)
    await add(redis, GW_STATUS, IbError(code=1100, message="Connectivity lost"))
    await wait_until(lambda: alerts(redis), what="1100 alert")
    await add(redis, GW_STATUS, IbError(code=1101, message="restored, data lost"))

    async def three() -> bool:
        return len(await alerts(redis)) >= 3

    await wait_until(three, what="close and data-lost event")
    got = await alerts(redis)
    assert [(a.alert_key, a.state) for a in got] == [
        ("ib:1100", AlertState.OPEN), ("ib:1100", AlertState.CLOSED), ("ib:1101", AlertState.EVENT),
    ]  # fmt: skip
    assert "(market data lost)" in got[1].message


async def test_service_heartbeat_when_expired_opens_and_when_back_closes(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await redis.hset(service_key("strategy"), mapping={"heartbeat": str(time.time())})
    await redis.pexpire(service_key("strategy"), 600)
    await start_notifier()
    await wait_until(lambda: alerts(redis), timeout=10, what="service alert")
    [opened] = await alerts(redis)
    assert opened.alert_key == "service:strategy" and "heartbeat expired" in opened.message
    await redis.hset(service_key("strategy"), mapping={"heartbeat": str(time.time())})

    async def two() -> bool:
        return len(await alerts(redis)) == 2

    await wait_until(two, what="service back")
    assert (await alerts(redis))[1].message.startswith("strategy is back after ")


async def test_dead_letters_when_over_threshold_in_window_open_one_alert(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await start_notifier(alert_dlq_threshold=3, alert_dlq_window_s=60.0)
    await _ready(redis)
    for i in range(5):
        await redis.xadd(
            SYS_DLQ, {"type": "dead_letter", "reason": f"undecodable {i}", "stream": "md:ticks"}
        )
    await wait_until(lambda: alerts(redis), what="dlq alert")
    [alert] = await alerts(redis)
    assert alert.alert_key == "dlq" and alert.details["latest_reason"] == "undecodable 4"
    assert alert.message.startswith("3+ dead letters in the last 1 m 0 s")


async def test_gateway_down_when_already_down_at_first_start_is_still_alerted(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    await add(redis, GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED, reason="eof"))
    await start_notifier(alert_gateway_down_s=0.3)  # its groups start 10 min back
    await wait_until(lambda: alerts(redis), what="gateway alert")
    assert [(a.alert_key, a.state) for a in await alerts(redis)] == [("gateway", AlertState.OPEN)]


async def test_fill_when_fill_alerts_enabled_is_an_event_and_by_default_nothing(
    redis: aioredis.Redis, start_notifier: StartNotifier
) -> None:
    fill = OrderEvent(client_order_id="c1", kind=OrderEventKind.FILL, action=Action.BUY,
                      contract=ContractRef(symbol="AAPL"), fill_qty=1, fill_price=2.5,
                      filled_total=1, exec_id="e1")  # fmt: skip
    first = await start_notifier()
    await wait_until(lambda: has_group(redis, ORDERS_EVENTS), what="orders:events group")
    await add(redis, ORDERS_EVENTS, fill)
    await add(redis, GW_STATUS, IbError(code=326, message="client id in use"))  # a marker
    await wait_until(lambda: alerts(redis), what="the marker")
    assert [a.alert_key for a in await alerts(redis)] == ["ib:326"]
    await first.stop()

    await start_notifier(alert_fills=True)
    await add(redis, ORDERS_EVENTS, fill)

    async def two() -> bool:
        return len(await alerts(redis)) == 2

    await wait_until(two, what="the fill alert")
    alert = (await alerts(redis))[1]
    assert alert.alert_key == "fill:e1:1" and alert.message == "fill: BUY 1 AAPL @ 2.50 (simulated)"
