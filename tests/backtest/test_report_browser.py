"""report.html in Debian's Chromium (Playwright), opened from file:// with no network."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from optbot.backtest.report import write_report
from tests.backtest.test_report import sample_record

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [pytest.mark.timeout(90), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _chromium_installed() -> None:
    if not CHROMIUM.exists():  # `make test` installs it (scripts/ensure-test-tools.sh)
        pytest.fail("no /usr/bin/chromium: run scripts/ensure-test-tools.sh (make test does)")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield b
        await b.close()


async def test_report_page_draws_the_equity_curve_and_lists_the_trades(
    tmp_path: Path, browser: Browser
) -> None:
    page_file = write_report(tmp_path, sample_record()).html
    page = await browser.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(page_file.as_uri())

    # The equity line: an SVG path with points, laid out with a real size on the page.
    line = page.locator("#equity-chart svg g#equity-curve path")
    d = await line.get_attribute("d") or ""
    assert d.count("L") >= 5, d
    box = await line.bounding_box()
    assert box is not None and box["width"] > 200 and box["height"] > 20
    drawdown = page.locator("#equity-chart svg g#equity-drawdown path")
    assert await drawdown.count() >= 1

    rows = page.locator("#trades tbody tr")
    assert await rows.count() == 3
    assert await rows.nth(0).locator("td").nth(2).inner_text() == "AAPL 20250117 250 C"
    assert await rows.nth(1).locator("td").last.inner_text() == "exit: stop loss -20%"
    assert await rows.nth(1).locator("td").nth(8).inner_text() == "-61.30"
    assert await page.locator("#summary").inner_text() != ""

    assert [u for u in requests if not u.startswith("file://")] == []
    assert errors == []
    await page.close()
