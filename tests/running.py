"""The real strategy service, run in-process for tests that need it to apply controls.

The CLI and the dashboard only ask the strategy (``sys:control``); a test of either
runs this, the very service ``optbot run strategy`` starts, until the block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from services.strategy.main import main as strategy_main
from shared.contract import SYS_CONTROL, service_key
from shared.runner import run_service
from shared.settings import Settings
from tests.helpers import wait_until


@contextlib.asynccontextmanager
async def strategy_running(settings: Settings, redis: aioredis.Redis) -> AsyncIterator[None]:
    """Start the strategy, wait for its heartbeat (``redis`` reads it), stop it after."""
    cfg = settings.model_copy(update={"heartbeat_interval_s": 0.2, "consume_block_ms": 100})
    stop = asyncio.Event()
    task = asyncio.create_task(run_service("strategy", strategy_main, cfg, stop=stop))

    async def beating() -> bool:
        """Its heartbeat is up and its sys:control group exists (it reads from "$")."""
        if task.done():
            raise AssertionError(f"strategy exited with {task.result()}")
        if not await redis.hget(service_key("strategy"), "risk"):
            return False
        with contextlib.suppress(ResponseError):  # no stream yet
            groups: Any = await redis.xinfo_groups(SYS_CONTROL)
            return any(g["name"] == b"strategy" for g in groups)
        return False

    try:
        await wait_until(beating, timeout=20, what="strategy heartbeat")
        yield
    finally:
        stop.set()
        code = await asyncio.wait_for(task, 20)
    assert code == 0
    await redis.delete(service_key("strategy"))  # its key would outlive it by its TTL
