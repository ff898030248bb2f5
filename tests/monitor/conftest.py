"""Fixtures: the monitor service started with ``run_service`` on a free port.

The bound URL is read back from the service's heartbeat (``svc:monitor`` field
``url``), so tests never race another process for a port.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from services.monitor.main import main as monitor_main
from shared.contract import service_key
from shared.runner import run_service
from shared.settings import Settings
from tests.helpers import wait_until

TOKEN = "test-control-token-7f3a9c2e51"
FAST = {"heartbeat_interval_s": 0.2, "monitor_refresh_s": 0.3}


class MonitorHandle:
    """A running monitor: its URL, and a clean stop."""

    def __init__(self, settings: Settings, task: asyncio.Task[int], stop: asyncio.Event) -> None:
        self.settings = settings
        self.task = task
        self.stop_event = stop
        self.url = ""

    async def stop(self) -> int:
        self.stop_event.set()
        return await asyncio.wait_for(self.task, 15)


StartMonitor = Callable[..., Awaitable[MonitorHandle]]


@pytest.fixture
async def start_monitor(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[StartMonitor]:
    handles: list[MonitorHandle] = []

    async def factory(*, via: aioredis.Redis | None = None, **overrides: Any) -> MonitorHandle:
        """Start a monitor with ``overrides``; ``via`` is the Redis its heartbeat goes to."""
        values = {"monitor_port": 0, "control_token": TOKEN, **FAST, **overrides}
        # Validated like the environment would be (a short token is refused here too).
        cfg = Settings(**{**settings.model_dump(), **values})
        stop = asyncio.Event()
        task = asyncio.create_task(run_service("monitor", monitor_main, cfg, stop=stop))
        handle = MonitorHandle(cfg, task, stop)
        handles.append(handle)

        async def url() -> str:
            if task.done():
                raise AssertionError(f"monitor exited with {task.result()}")
            raw = await (via or redis).hget(service_key("monitor"), "url")
            return raw.decode() if raw else ""

        handle.url = await wait_until(url, timeout=10, what="monitor listening")
        return handle

    yield factory
    for h in handles:
        if not h.task.done():
            with contextlib.suppress(Exception):
                await h.stop()
