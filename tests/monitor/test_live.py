"""Live updates over SSE: coalesced pushes, and recovery after monitor/Redis restarts."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from shared.bus import Publisher, connect_redis
from shared.redis_server import free_port, start_redis
from shared.settings import Settings
from tests.conftest import redis_binary
from tests.helpers import wait_until
from tests.monitor import samples
from tests.monitor.conftest import StartMonitor
from tests.monitor.sse import SseClient

pytestmark = pytest.mark.timeout(90)


def _price(client: SseClient, key: str) -> float | None:
    for event in reversed(client.named("quotes")):
        for q in event.data["quotes"]:
            if q["key"] == key:
                return q["price"]  # type: ignore[no-any-return]
    return None


async def test_sse_when_quotes_flood_client_sees_latest_price_at_most_4_per_second(
    start_monitor: StartMonitor, redis: aioredis.Redis, settings: Settings
) -> None:
    await samples.seed(redis, settings)
    mon = await start_monitor(monitor_refresh_s=5.0)
    sse = SseClient(f"{mon.url}/api/events").start()
    try:
        await wait_until(lambda: sse.named("quotes"), what="first quotes panel")
        assert sse.named("hello") and sse.named("status") and sse.named("connection")
        pub = Publisher(redis, settings, src="gateway_adapter/test")
        before = len(sse.named("quotes"))
        started = time.monotonic()
        for step in range(200):  # ~2 s of quotes, 5 per round
            samples.publish_quote(pub, samples.stock_quote("SPY", 600.0 + step * 0.01))
            await pub.flush()
            await asyncio.sleep(0.01)
        window = time.monotonic() - started
        await wait_until(lambda: _price(sse, "SPY") == pytest.approx(601.99), what="last price")
        pushed = len(sse.named("quotes")) - before
        assert 2 <= pushed <= 4 * (window + 1), (pushed, window)
    finally:
        await sse.close()


async def test_sse_when_monitor_restarts_client_reconnects_and_gets_updates_again(
    start_monitor: StartMonitor, redis: aioredis.Redis, settings: Settings
) -> None:
    await samples.seed(redis, settings)
    port = free_port()
    first = await start_monitor(monitor_port=port)
    sse = SseClient(f"http://127.0.0.1:{port}/api/events").start()
    pub = Publisher(redis, settings, src="gateway_adapter/test")
    try:
        await wait_until(lambda: sse.connects == 1 and sse.named("quotes"), what="connected")
        assert await first.stop() == 0
        await wait_until(lambda: sse.disconnects >= 1, what="client saw the monitor go")
        await start_monitor(monitor_port=port)
        await wait_until(lambda: sse.connects >= 2, timeout=15, what="client reconnected")
        samples.publish_quote(pub, samples.stock_quote("SPY", 777.0))
        await pub.flush()
        await wait_until(lambda: _price(sse, "SPY") == 777.0, what="update after restart")
    finally:
        await sse.close()


async def test_sse_when_redis_restarts_client_is_told_and_updates_resume(
    start_monitor: StartMonitor, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    server = start_redis(redis_binary(), tmp_path / "r1", port=port, appendonly=False)
    own = settings.model_copy(update={"redis_url": server.url})
    client = connect_redis(server.url)
    sse: SseClient | None = None
    try:
        await samples.seed(client, own)
        mon = await _start_on(start_monitor, own, client)
        sse = SseClient(f"{mon}/api/events").start()
        await wait_until(lambda: sse is not None and sse.named("quotes"), what="first quotes")
        server.stop()
        await wait_until(lambda: _redis_flag(sse) is False, timeout=15, what="redis down shown")
        server = start_redis(redis_binary(), tmp_path / "r2", port=port, appendonly=False)
        await wait_until(lambda: _redis_flag(sse) is True, timeout=15, what="redis back shown")
        pub = Publisher(client, own, src="gateway_adapter/test")
        samples.publish_quote(pub, samples.stock_quote("SPY", 555.0))
        await pub.flush()
        await wait_until(lambda: _price(sse, "SPY") == 555.0, timeout=15, what="fresh quote")
        assert sse.connects == 1  # the SSE stream itself survived the Redis outage
    finally:
        if sse is not None:
            await sse.close()
        await client.aclose()
        server.stop()


def _redis_flag(sse: SseClient | None) -> bool | None:
    events = sse.named("connection") if sse else []
    return events[-1].data["redis"] if events else None


async def _start_on(start_monitor: StartMonitor, own: Settings, client: aioredis.Redis) -> str:
    """Start the monitor against another Redis; its heartbeat (and URL) live there."""
    handle = await start_monitor(via=client, redis_url=own.redis_url)
    return handle.url
