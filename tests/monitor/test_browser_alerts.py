"""The Alerts panel in Chromium: an open condition first, delivery per channel, test alert."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from playwright.async_api import Browser, Page

from shared.contract import SYS_ALERTS
from shared.redis_server import free_port
from shared.schemas import Alert, AlertSeverity, AlertState
from tests.helpers import wait_until
from tests.monitor.conftest import TOKEN, StartMonitor
from tests.monitor.test_browser import _chromium_installed as _chromium_installed
from tests.monitor.test_browser import browser as browser
from tests.notifier.conftest import StartNotifier
from tests.notifier.conftest import json_receiver as json_receiver
from tests.notifier.conftest import start_notifier as start_notifier
from tests.notifier.helpers import add
from tests.notifier.receivers import JsonReceiver

pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


async def _text(page: Page, selector: str, expected: str) -> bool:
    return expected in await page.locator(selector).inner_text()


async def test_alerts_panel_when_condition_open_shows_it_first_and_test_alert_reaches_channel(
    start_monitor: StartMonitor,
    start_notifier: StartNotifier,
    json_receiver: JsonReceiver,
    browser: Browser,
    redis: aioredis.Redis,
    output_dir: Path,
) -> None:
    await start_notifier(json_receiver.url)
    port = free_port()
    await start_monitor(monitor_port=port)
    await add(redis, SYS_ALERTS, Alert(code="ib_326", severity=AlertSeverity.CRITICAL,
                                       message="client id in use", key="ib:326"))  # fmt: skip
    await add(redis, SYS_ALERTS, Alert(code="gateway", severity=AlertSeverity.CRITICAL,
                                       message="gateway disconnected for 1 m", key="gateway",
                                       state=AlertState.OPEN, opened_at=time.time()))  # fmt: skip
    page = await browser.new_page(viewport={"width": 1440, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(f"http://127.0.0.1:{port}/")

    await wait_until(lambda: _text(page, "#alerts", "json-"), timeout=15, what="delivery shown")
    first = await page.locator("#alerts li").first.inner_text()
    assert "OPEN gateway" in first and "gateway disconnected for 1 m" in first
    assert await page.locator("#alerts-open").inner_text() == "1"
    await wait_until(lambda: _text(page, "#alert-channels", " ok "), what="channel ok shown")

    await wait_until(lambda: page.locator("#ctl-token").is_enabled(), what="controls enabled")
    await page.fill("#ctl-token", TOKEN)
    await page.click("#test-alert")
    await wait_until(lambda: _text(page, "#test-alert-result", "test alert added"), what="added")
    await wait_until(
        lambda: any("channel works" in m["message"] for m in json_receiver.messages()),
        what="test alert delivered",
    )
    await page.locator("#alerts").scroll_into_view_if_needed()
    await page.screenshot(path=str(output_dir / "alerts.png"), full_page=True)
    assert errors == [], errors
