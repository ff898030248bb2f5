"""Security headers on every kind of response, over real HTTP."""

from __future__ import annotations

import httpx
import pytest
import redis.asyncio as aioredis

from shared.settings import Settings
from tests.monitor import samples
from tests.monitor.conftest import StartMonitor

pytestmark = pytest.mark.timeout(60)
PATHS = (
    "/",
    "/api/status",
    "/api/quotes?keys=not%20valid!",  # 422
    "/api/nothing-here",  # 404
    "/static/app.js",
    "/favicon.ico",
    "/docs",
    "/redoc",
    "/openapi.json",
    "/healthz",
    "/readyz",
    "/metrics",
    "/login",
)


def assert_protected(r: httpx.Response, path: str) -> None:
    h = r.headers
    assert h["x-content-type-options"] == "nosniff", path
    assert h["x-frame-options"] == "DENY", path
    assert h["referrer-policy"] == "no-referrer", path
    csp = h["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp, path


async def test_every_response_when_served_carries_the_security_headers(
    start_monitor: StartMonitor, redis: aioredis.Redis, settings: Settings
) -> None:
    await samples.seed(redis, settings)
    mon = await start_monitor()
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        for path in PATHS:
            assert_protected(await c.get(path), path)
        # a refusal from a middleware (413) and from a route (401) too
        big = await c.post("/api/control/halt", content=b"x" * 70_000)
        assert big.status_code == 413
        assert_protected(big, "413")
        assert_protected(await c.post("/api/control/halt"), "401")
        async with c.stream("GET", "/api/events") as events:
            assert events.status_code == 200
            assert_protected(events, "/api/events")
        page_csp = (await c.get("/")).headers["content-security-policy"]
        assert "script-src 'self';" in page_csp and "unsafe-inline' ;" not in page_csp
        docs_csp = (await c.get("/docs")).headers["content-security-policy"]
        assert "script-src 'self' 'unsafe-inline'" in docs_csp  # Swagger UI's inline init


async def test_refusals_when_read_token_set_carry_the_security_headers(
    start_monitor: StartMonitor,
) -> None:
    mon = await start_monitor(monitor_read_token="read-token-for-tests-9d41c7e02b")
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        refused = await c.get("/api/status")
        assert refused.status_code == 401
        assert_protected(refused, "401 read")
        assert_protected(await c.get("/"), "303 to login")
