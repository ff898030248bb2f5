"""The dashboard in Debian's Chromium (Playwright) against the running system.

Simulator, gateway adapter, market data and monitor run in this test's loop, as
``optbot up`` would start them: quotes travel TWS wire protocol -> adapter ->
md:ticks / md:last -> monitor -> SSE -> the page.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from services.gateway_adapter.main import main as adapter_main
from services.market_data.main import main as market_data_main
from services.tws_simulator.service import main as simulator_main
from shared.contract import RISK_STATE
from shared.redis_server import free_port
from shared.runner import run_service
from shared.settings import Settings
from tests.helpers import wait_until
from tests.monitor.conftest import TOKEN, StartMonitor
from tests.running import strategy_running

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _chromium_installed() -> None:
    if not CHROMIUM.exists():  # `make test` installs it (scripts/ensure-test-tools.sh)
        pytest.fail("no /usr/bin/chromium: run scripts/ensure-test-tools.sh (make test does)")


WATCH = "SPY,QQQ,VIX,AAPL,MSFT,NVDA"


@dataclass
class System:
    stops: list[asyncio.Event]
    tasks: list[asyncio.Task[int]]


@pytest.fixture
async def system(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[Settings]:
    """Simulator + adapter + market data, started like ``optbot up`` does (in order)."""
    port = free_port()
    cfg = settings.model_copy(
        update={
            "sim_port": port,
            "sim_control_port": 0,
            "ib_port": port,
            "sim_tick_interval_s": 0.1,
            "md_watchlist": WATCH,
            "md_eval_interval_s": 1.0,
            "heartbeat_interval_s": 0.5,
            "ib_reconnect_min_s": 0.1,
            "ib_reconnect_max_s": 0.5,
        }
    )
    running = System([], [])
    for name, main in (
        ("tws_simulator", simulator_main),
        ("gateway_adapter", adapter_main),
        ("market_data", market_data_main),
    ):
        stop = asyncio.Event()
        running.stops.append(stop)
        running.tasks.append(asyncio.create_task(run_service(name, main, cfg, stop=stop)))
        if name == "tws_simulator":
            await wait_until(lambda: redis.exists("svc:tws_simulator"), what="simulator up")
    yield cfg
    for stop in reversed(running.stops):
        stop.set()
    await asyncio.wait_for(asyncio.gather(*running.tasks, return_exceptions=True), 30)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        await b.close()


def _number(text: str) -> float | None:
    cleaned = text.replace(",", "").strip()
    return float(cleaned) if re.fullmatch(r"-?\d+(\.\d+)?", cleaned) else None


async def _tile_price(page: Page, key: str) -> float | None:
    loc = page.locator(f'.tile[data-key="{key}"] .px')
    return _number(await loc.inner_text()) if await loc.count() else None


async def test_dashboard_when_system_runs_shows_live_quotes_vix_and_guards_halt(
    system: Settings,
    start_monitor: StartMonitor,
    browser: Browser,
    redis: aioredis.Redis,
    output_dir: Path,
) -> None:
    port = free_port()
    await start_monitor(redis_url=system.redis_url, md_watchlist=WATCH, monitor_port=port)
    url = f"http://127.0.0.1:{port}/"
    page = await browser.new_page(viewport={"width": 1440, "height": 1000})
    errors: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            errors.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)

    # Live quotes: SPY arrives, then changes within a few seconds.
    first = await wait_until(lambda: _tile_price(page, "SPY"), timeout=30, what="SPY price")
    await wait_until(lambda: _changed(page, "SPY", first), timeout=15, what="SPY price to change")
    vix = await wait_until(lambda: _tile_price(page, "VIX"), timeout=15, what="VIX price")
    assert vix > 0
    assert await page.locator("#conn-text").inner_text() == "LIVE"
    await wait_until(
        lambda: _text(page, "#gateway", "GATEWAY CONNECTED"), timeout=15, what="gateway shown"
    )
    assert errors == [], errors

    # Halt without the right token: refused, badge unchanged, nothing written.
    await page.fill("#ctl-token", "not-the-token")
    await page.fill("#ctl-why", "browser test")
    await page.click("button[data-action=halt]")
    await wait_until(lambda: _text(page, "#ctl-result", "refused (401)"), what="refusal shown")
    assert "HALTED" not in await page.locator("#risk-state").inner_text()
    assert await redis.hget(RISK_STATE, "state") is None

    # With the token: the strategy applies it, the badge turns HALTED, with the reason.
    await page.fill("#ctl-token", TOKEN)
    async with strategy_running(system, redis):
        await page.click("button[data-action=halt]")
        await wait_until(lambda: _text(page, "#ctl-result", "applied"), what="applied shown")
    assert "halt applied → HALTED" in await page.locator("#ctl-result").inner_text()
    await wait_until(lambda: _text(page, "#risk-state", "HALTED"), what="HALTED badge")
    assert "browser test" in await page.locator("#risk-why").inner_text()
    await page.wait_for_selector("#chart svg", timeout=15_000)
    await page.evaluate("window.scrollTo(0, 0)")
    await page.screenshot(path=str(output_dir / "dashboard.png"), full_page=True)
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.screenshot(path=str(output_dir / "dashboard-phone.png"), full_page=False)
    unexpected = [e for e in errors if "401" not in e]
    assert unexpected == [], unexpected


async def _changed(page: Page, key: str, first: float) -> bool:
    now = await _tile_price(page, key)
    return now is not None and now != first


async def _text(page: Page, selector: str, expected: str) -> bool:
    return expected in await page.locator(selector).inner_text()


async def test_dashboard_when_monitor_restarts_shows_disconnected_then_live_again(
    start_monitor: StartMonitor, browser: Browser, redis: aioredis.Redis, settings: Settings
) -> None:
    from tests.monitor import samples

    await samples.seed(redis, settings)
    port = free_port()
    mon = await start_monitor(monitor_port=port)
    page = await browser.new_page()
    await page.goto(f"http://127.0.0.1:{port}/")
    await wait_until(lambda: _text(page, "#conn-text", "LIVE"), what="live")
    await mon.stop()
    await wait_until(lambda: _text(page, "#conn-text", "DISCONNECTED"), what="disconnected shown")
    assert "down" in (await page.locator("#conn").get_attribute("class") or "")
    await start_monitor(monitor_port=port)
    await wait_until(lambda: _text(page, "#conn-text", "LIVE"), timeout=20, what="live again")
    await wait_until(lambda: _tile_price(page, "SPY"), what="data after reconnect")


async def test_dashboard_when_read_token_set_logs_in_once_then_goes_live(
    start_monitor: StartMonitor, browser: Browser, redis: aioredis.Redis, settings: Settings
) -> None:
    from tests.monitor import samples

    await samples.seed(redis, settings)
    port = free_port()
    await start_monitor(monitor_port=port, monitor_read_token="read-token-for-tests-9d41c7e02b")
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"http://127.0.0.1:{port}/")
    assert page.url.endswith("/login")
    await page.fill("input[name=token]", "not-the-token")
    await page.click("button[type=submit]")
    await wait_until(lambda: _text(page, "body", "Wrong token"), what="refusal shown")
    await page.fill("input[name=token]", "read-token-for-tests-9d41c7e02b")
    await page.click("button[type=submit]")
    await wait_until(lambda: _text(page, "#conn-text", "LIVE"), timeout=20, what="live")
    await wait_until(lambda: _tile_price(page, "SPY"), what="quotes over the session cookie")
    assert page.url == f"http://127.0.0.1:{port}/" and errors == [], errors
