"""The Performance panel: today's round trips from real fills on ``orders:events``,
over HTTP and live in Chromium (SSE), computed by ``shared.performance``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page, async_playwright

from shared.bus import Publisher
from shared.contract import ORDERS_EVENTS, ORDERS_REQUESTS
from shared.redis_server import free_port
from shared.schemas import (
    Action,
    ContractRef,
    OrderEvent,
    OrderEventKind,
    OrderNew,
    Right,
    SecType,
)
from shared.settings import Settings
from tests.helpers import wait_until
from tests.monitor.conftest import StartMonitor

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.timeout(90)
CALL = ContractRef(
    symbol="AAPL", sec_type=SecType.OPT, expiry="20991218", strike=250.0, right=Right.CALL,
    multiplier=100,
)  # fmt: skip
PUT = ContractRef(
    symbol="SPY", sec_type=SecType.OPT, expiry="20991218", strike=590.0, right=Right.PUT,
    multiplier=100,
)  # fmt: skip


async def trade(
    pub: Publisher, n: int, ref: ContractRef, action: Action, qty: int, px: float, why: str
) -> None:
    """An order as the strategy sends it and its fill as the adapter reports it."""
    cid = f"p-{n}"
    pub.add(
        ORDERS_REQUESTS,
        OrderNew(
            client_order_id=cid,
            contract=ref,
            action=action,
            quantity=qty,
            limit_price=px,
            reason=why,
        ),
        key=cid,
    )
    pub.add(ORDERS_EVENTS, OrderEvent(client_order_id=cid, kind=OrderEventKind.ACK), key=cid)
    fill = OrderEvent(
        client_order_id=cid,
        kind=OrderEventKind.FILL,
        contract=ref,
        action=action,
        fill_qty=qty,
        fill_price=px,
        commission=0.65 * qty,
        filled_total=qty,
        exec_id=f"x-{n}",
    )
    pub.add(ORDERS_EVENTS, fill, key=cid)
    pub.add(ORDERS_EVENTS, fill, key=cid)  # redelivered: booked once
    await pub.flush()


async def two_trips(pub: Publisher) -> None:
    await trade(pub, 1, CALL, Action.BUY, 2, 1.50, "entry long AAPL")
    await trade(pub, 2, CALL, Action.SELL, 2, 2.10, "exit: take profit")
    await trade(pub, 3, PUT, Action.BUY, 1, 3.00, "entry long SPY put")
    await trade(pub, 4, PUT, Action.SELL, 1, 2.40, "exit: stop loss")


async def test_get_performance_when_two_trips_filled_today_counts_them_net_of_commissions(
    start_monitor: StartMonitor, redis: aioredis.Redis, settings: Settings
) -> None:
    mon = await start_monitor()
    pub = Publisher(redis, settings, src="gateway_adapter/test")
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as client:
        empty = (await client.get("/api/performance")).json()
        assert empty["round_trips"] == 0 and empty["win_rate"] is None
        await two_trips(pub)
        await trade(pub, 5, CALL, Action.BUY, 1, 1.00, "entry long AAPL")  # still open
        body = (await client.get("/api/performance")).json()
    assert body["round_trips"] == 2 and body["wins"] == 1 and body["losses"] == 1
    assert body["win_rate"] == 0.5
    assert body["realized_pnl"] == 60.0  # +120 on AAPL, -60 on SPY
    assert body["commissions"] == 4.55 and body["net_pnl"] == 55.45
    assert body["max_drawdown"] == 61.95  # from +117.40 after AAPL down to +55.45
    assert body["fills"] == 5 and body["open_positions"] == 1
    assert [t["exit_reason"] for t in body["trades"]] == ["exit: stop loss", "exit: take profit"]
    assert body["trades"][1]["pnl"] == 117.4


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=str(chromium),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        await b.close()


async def test_get_performance_when_redis_lost_the_streams_reads_them_again(
    start_monitor: StartMonitor, redis: aioredis.Redis, settings: Settings
) -> None:
    mon = await start_monitor()
    pub = Publisher(redis, settings, src="gateway_adapter/test")
    await two_trips(pub)
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as client:
        assert (await client.get("/api/performance")).json()["round_trips"] == 2
        await redis.delete(ORDERS_EVENTS, ORDERS_REQUESTS)  # as a Redis restarted empty,
        await trade(pub, 7, CALL, Action.BUY, 1, 1.00, "entry long AAPL")
        await trade(pub, 8, CALL, Action.SELL, 1, 1.30, "exit: time stop")  # then filled
        body = (await client.get("/api/performance")).json()
        assert body["round_trips"] == 1 and body["net_pnl"] == 28.70
        await redis.delete(ORDERS_EVENTS, ORDERS_REQUESTS)
        assert (await client.get("/api/performance")).json()["round_trips"] == 0


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():  # `make test` installs it (scripts/ensure-test-tools.sh)
        pytest.fail("no /usr/bin/chromium: run scripts/ensure-test-tools.sh (make test does)")
    return CHROMIUM


async def _stat(page: Page, name: str) -> str:
    return await page.locator(f'#perf-stats [data-k="{name}"] .v').inner_text()


@pytest.mark.slow
async def test_performance_panel_when_a_round_trip_closes_updates_live(
    start_monitor: StartMonitor, browser: Browser, redis: aioredis.Redis, settings: Settings
) -> None:
    pub = Publisher(redis, settings, src="gateway_adapter/test")
    await two_trips(pub)
    port = free_port()
    await start_monitor(monitor_port=port)
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"http://127.0.0.1:{port}/")

    async def shows(name: str, value: str) -> bool:
        return await page.locator("#perf-stats .stat").count() > 0 and (
            await _stat(page, name) == value
        )

    await wait_until(lambda: shows("Round trips", "2"), what="two round trips shown")
    assert await _stat(page, "Win rate") == "50%"
    assert await _stat(page, "Realized P&L (net)") == "+56.10"
    assert await page.locator("#perf-trades tbody tr").count() == 2

    # A third trip closes while the page is open: pushed over SSE, no reload.
    await trade(pub, 5, CALL, Action.BUY, 1, 1.00, "entry long AAPL")
    await trade(pub, 6, CALL, Action.SELL, 1, 1.30, "exit: time stop")
    await wait_until(lambda: shows("Round trips", "3"), what="third round trip pushed live")
    assert await _stat(page, "Realized P&L (net)") == "+84.80"
    first = page.locator("#perf-trades tbody tr").first
    assert "exit: time stop" in await first.inner_text()
    assert errors == []
