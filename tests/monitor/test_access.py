"""Who gets in, over real HTTP: the lockout, trusted proxies, the read token and login.

The monitor runs as the service does (uvicorn on a free loopback port); every
request comes from 127.0.0.1, so ``X-Forwarded-For`` is the only way a test can
pretend to be another client, which is exactly what must not work unless trusted.
"""

from __future__ import annotations

import json

import httpx
import pytest
import redis.asyncio as aioredis

from shared.contract import RISK_STATE
from shared.settings import Settings
from tests.helpers import wait_until
from tests.monitor import samples
from tests.monitor.conftest import TOKEN, StartMonitor
from tests.running import strategy_running

pytestmark = pytest.mark.timeout(60)
RIGHT = {"Authorization": f"Bearer {TOKEN}"}
READ_TOKEN = "read-token-for-tests-9d41c7e02b"


@pytest.fixture
async def seeded(redis: aioredis.Redis, settings: Settings) -> None:
    await samples.seed(redis, settings)


def wrong_from(address: str) -> dict[str, str]:
    return {"Authorization": "Bearer wrong-guess", "X-Forwarded-For": address}


async def test_post_halt_when_x_forwarded_for_rotates_and_no_proxy_trusted_locks_out_with_429(
    start_monitor: StartMonitor,
    redis: aioredis.Redis,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mon = await start_monitor()
    limit = settings.monitor_control_max_failures
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        codes = [
            (await c.post("/api/control/halt", headers=wrong_from(f"198.51.100.{i}"))).status_code
            for i in range(30)
        ]
        assert codes[:limit] == [401] * limit and set(codes[limit:]) == {429}, codes
        # the right token from the locked-out address (any header) is still accepted
        async with strategy_running(settings, redis):
            ok = await c.post("/api/control/halt", headers={**RIGHT, "X-Forwarded-For": "1.2.3.4"})
        assert ok.status_code == 200
    assert await redis.hget(RISK_STATE, "state") == b"HALTED"
    # the log names the real peer (the service's log handler writes to stderr)
    refused = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    refused = [r for r in refused if r.get("event") == "control_refused"]
    assert len(refused) == limit and {r["client"] for r in refused} == {"127.0.0.1"}


async def test_post_halt_when_proxy_trusted_locks_out_the_forwarded_client_only(
    start_monitor: StartMonitor,
    settings: Settings,
    redis: aioredis.Redis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mon = await start_monitor(monitor_trusted_proxies="127.0.0.1")
    limit = settings.monitor_control_max_failures
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        for _ in range(limit):
            r = await c.post("/api/control/halt", headers=wrong_from("203.0.113.5"))
            assert r.status_code == 401
        again = await c.post("/api/control/halt", headers=wrong_from("203.0.113.5"))
        assert again.status_code == 429
        other = await c.post("/api/control/halt", headers=wrong_from("203.0.113.6"))
        assert other.status_code == 401  # another client behind the proxy: not locked out
        async with strategy_running(settings, redis):
            forwarded = {**RIGHT, "X-Forwarded-For": "203.0.113.5"}
            ok = await c.post("/api/control/halt", headers=forwarded)
        assert ok.status_code == 200 and ok.json()["who"] == "dashboard@203.0.113.5"
    assert '"client": "203.0.113.5"' in capsys.readouterr().err


async def test_post_halt_when_another_address_is_the_trusted_proxy_ignores_the_header(
    start_monitor: StartMonitor, settings: Settings
) -> None:
    mon = await start_monitor(monitor_trusted_proxies="10.9.9.9,172.18.0.0/16")
    limit = settings.monitor_control_max_failures
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        codes = [
            (await c.post("/api/control/halt", headers=wrong_from(f"198.51.100.{i}"))).status_code
            for i in range(limit + 3)
        ]
    assert codes[limit:] == [429] * 3, codes


async def test_read_api_when_read_token_set_needs_token_or_session(
    start_monitor: StartMonitor, seeded: None
) -> None:
    mon = await start_monitor(monitor_read_token=READ_TOKEN)
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        for path in ("/api/status", "/api/account", "/api/orders", "/metrics"):
            r = await c.get(path)
            assert r.status_code == 401 and "/login" in r.json()["detail"], path
            assert "net_liquidation" not in r.text and "DU" not in r.text, path
            bad = await c.get(path, headers={"Authorization": "Bearer not-it"})
            assert bad.status_code == 401, path
        for token in (READ_TOKEN, TOKEN):  # the control token also reads
            r = await c.get("/api/account", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200 and r.json()["account"], token
        assert (await c.get("/healthz")).status_code == 200  # probes stay open
        page = await c.get("/")
        assert page.status_code == 303 and page.headers["location"] == "/login"
        form = await c.get("/login")
        assert form.status_code == 200 and 'name="token"' in form.text


async def test_login_when_token_right_sets_session_cookie_and_the_page_works(
    start_monitor: StartMonitor, seeded: None
) -> None:
    mon = await start_monitor(monitor_read_token=READ_TOKEN)
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        bad = await c.post("/login", data={"token": "nope"})
        assert bad.status_code == 401 and "Wrong token" in bad.text and not c.cookies
        r = await c.post("/login", data={"token": READ_TOKEN})
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and READ_TOKEN not in cookie
        assert "Secure" not in cookie  # plain http on loopback; behind TLS it is Secure
        assert (await c.get("/")).status_code == 200
        assert (await c.get("/api/status")).json()["controls_enabled"] is True
        async with c.stream("GET", "/api/events") as events:
            assert events.status_code == 200
            first = await anext(events.aiter_lines())
            assert first == "event: hello"
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as other:
        other.cookies.set("optbot_session", "forged")
        assert (await other.get("/api/status")).status_code == 401


async def test_login_when_proxy_says_https_marks_the_cookie_secure(
    start_monitor: StartMonitor,
) -> None:
    mon = await start_monitor(monitor_read_token=READ_TOKEN, monitor_trusted_proxies="127.0.0.1")
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        r = await c.post(
            "/login", data={"token": READ_TOKEN}, headers={"X-Forwarded-Proto": "https"}
        )
        assert r.status_code == 303 and "; Secure" in r.headers["set-cookie"]


async def test_read_api_when_read_token_guessed_locks_out_but_the_right_token_gets_in(
    start_monitor: StartMonitor, seeded: None, settings: Settings
) -> None:
    mon = await start_monitor(monitor_read_token=READ_TOKEN)
    limit = settings.monitor_control_max_failures
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        codes = [
            (await c.get("/api/status", headers=wrong_from(f"198.51.100.{i}"))).status_code
            for i in range(limit + 2)
        ]
        assert codes == [401] * limit + [429] * 2, codes
        assert (await c.post("/login", data={"token": "x"})).status_code == 429
        right = await c.get("/api/status", headers={"Authorization": f"Bearer {READ_TOKEN}"})
        assert right.status_code == 200
        assert (await c.post("/login", data={"token": READ_TOKEN})).status_code == 303


async def test_events_when_client_cap_reached_refuses_with_503_and_a_reason(
    start_monitor: StartMonitor, seeded: None, capsys: pytest.CaptureFixture[str]
) -> None:
    mon = await start_monitor(monitor_sse_max_clients=2)
    async with httpx.AsyncClient(base_url=mon.url, timeout=10) as c:
        async with c.stream("GET", "/api/events") as one, c.stream("GET", "/api/events") as two:
            assert one.status_code == two.status_code == 200
            assert await anext(one.aiter_lines()) == await anext(two.aiter_lines())
            third = await c.get("/api/events")
            assert third.status_code == 503 and third.headers["retry-after"] == "10"
            assert "OPTBOT_MONITOR_SSE_MAX_CLIENTS" in third.json()["detail"]
        assert '"event": "sse_refused"' in capsys.readouterr().err

        async def admitted() -> bool:  # the closed streams are released on disconnect
            async with c.stream("GET", "/api/events") as r:
                return r.status_code == 200

        assert await wait_until(admitted, timeout=10, interval=0.1, what="a freed SSE slot")
