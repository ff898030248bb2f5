"""/metrics: valid Prometheus text whose counters move with the traffic on the bus."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import httpx
import pytest
import redis.asyncio as aioredis
from prometheus_client.parser import text_string_to_metric_families

from shared.bus import Publisher
from shared.contract import GW_STATUS, ORDERS_EVENTS, ORDERS_REQUESTS, STRATEGY_DECISIONS
from shared.schemas import (
    Action,
    ConnState,
    Decision,
    DecisionKind,
    DecisionOutcome,
    GatewayStatus,
    IbError,
    OrderEvent,
    OrderEventKind,
    OrderNew,
)
from shared.settings import Settings
from tests.helpers import wait_until
from tests.monitor import samples
from tests.monitor.conftest import TOKEN, StartMonitor

pytestmark = pytest.mark.timeout(60)


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def value(
    metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_when_bus_under_load_parse_and_counters_move(
    start_monitor: StartMonitor, redis: aioredis.Redis, settings: Settings
) -> None:
    await samples.seed(redis, settings)
    mon = await start_monitor(control_timeout_s=0.2)  # no strategy: a control is not applied
    pub = Publisher(redis, settings, src="gateway_adapter/test")
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as client:
        before = await scrape(client)
        assert value(before, "optbot_redis_up") == 1
        assert value(before, "optbot_dlq_size") == 1
        assert value(before, "optbot_service_up", service="monitor") == 1
        for step in range(100):  # bounded load: 500 quotes, 20 orders with fills
            samples.publish_quotes(pub, step)
            if step % 5 == 0:
                cid = f"load-{step}"
                pub.add(
                    ORDERS_REQUESTS,
                    OrderNew(
                        client_order_id=cid,
                        contract=samples.OPTION,
                        action=Action.BUY,
                        quantity=1,
                        limit_price=4.2,
                    ),
                )
                pub.add(
                    ORDERS_EVENTS,
                    OrderEvent(
                        client_order_id=cid,
                        kind=OrderEventKind.FILL,
                        fill_qty=1,
                        fill_price=4.2,
                        filled_total=1,
                    ),
                )
                pub.add(  # the strategy's refusal: a decision carrying the order
                    STRATEGY_DECISIONS,
                    Decision(
                        cycle=cid,
                        kind=DecisionKind.ENTRY,
                        outcome=DecisionOutcome.DENIED,
                        reason="max_positions: 3 open",
                        client_order_id=f"{cid}-r",
                    ),
                )
                pub.add(  # a denied exit without an order: not an order denial
                    STRATEGY_DECISIONS,
                    Decision(
                        cycle=cid,
                        kind=DecisionKind.EXIT,
                        outcome=DecisionOutcome.DENIED,
                        reason="no reprice",
                    ),
                )
            await pub.flush()
            await asyncio.sleep(0.005)

        async def moved() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
            after = await scrape(client)
            done = value(after, "optbot_quotes_seen_total") >= 500
            return after if done else None

        after = await wait_until(moved, what="quote counter to reach 500")
        assert value(after, "optbot_orders_total", type="order.new") == 20
        assert value(after, "optbot_fills_total") == 20
        assert value(after, "optbot_denials_total") == 20
        assert value(after, "optbot_order_events_total", kind="fill") == 20
        assert value(after, "optbot_quotes_per_second") > 0
        assert value(after, "optbot_stream_length", stream="md:ticks") >= 500
        await client.post("/api/control/halt", headers={"Authorization": "Bearer wrong"})
        late = await client.post("/api/control/halt", headers={"Authorization": f"Bearer {TOKEN}"})
        assert late.status_code == 503
        final = await scrape(client)
        assert (
            value(final, "optbot_control_actions_total", action="halt", result="not_applied") == 1
        )
        assert (
            value(final, "optbot_control_actions_total", action="halt", result="unauthorized") == 1
        )


async def test_gateway_reconnects_when_monitor_started_while_gateway_down_counts_the_return(
    start_monitor: StartMonitor, redis: aioredis.Redis, settings: Settings
) -> None:
    """The follower used to start with the state unknown: a CONNECTED after a loss it
    had not seen itself was not a reconnect."""
    pub = Publisher(redis, settings, src="gateway_adapter/test")
    pub.add(GW_STATUS, GatewayStatus(state=ConnState.CONNECTED))
    pub.add(GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED, reason="1100"))
    await pub.flush()
    mon = await start_monitor()
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as client:

        async def seen() -> float:
            return value(await scrape(client), "optbot_entries_seen_total", stream="gw:status")

        async def following() -> float:  # a warning seen: the follower is positioned
            pub.add(GW_STATUS, IbError(code=2103, message="farm broken", severity="warning"))
            await pub.flush()
            return await seen()

        markers = await wait_until(following, interval=0.2, what="the monitor to follow")
        pub.add(GW_STATUS, GatewayStatus(state=ConnState.CONNECTED, reason="1102"))
        await pub.flush()
        await wait_until(lambda: _above(seen(), markers + 1), what="the CONNECTED followed")
        reconnects = value(await scrape(client), "optbot_gateway_reconnects_total")
        assert reconnects == 1


async def _above(count: Awaitable[float], floor: float) -> bool:
    return await count >= floor
