"""Nobody let in, nothing leaked: controls need the token, secrets appear nowhere,
orders never reach a live (non-paper) account, the dashboard listens on loopback only.

The system runs with ``OPTBOT_CONTROL_TOKEN`` and one Redis
password per ACL user (files in ``OPTBOT_REDIS_SECRETS_DIR``) set to recognisable values
(``harness.SECRETS``); after it has traded, every log line of every service, every
stream entry and hash in Redis, every API answer, the metrics, the page, ``optbot status``
and ``optbot config`` are searched for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
from typing import Any

import httpx
import pytest

from shared.envelope import encode
from shared.schemas import ContractRef, OrderEventKind, OrderNew, Right, SecType
from shared.settings import load_settings
from tests.conftest import redis_binary
from tests.fault.conftest import MakeSystem, assert_invariants, fault_root, first_fill
from tests.fault.harness import CONTROL_TOKEN, SECRETS, FaultSystem, wait_for
from tests.fault.invariants import read_record
from tests.fault.test_fuzz import ENDPOINTS
from tests.helpers import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


async def _control(system: FaultSystem, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=system.monitor_url, timeout=5) as http:
        return await http.post("/api/control/halt", json={"why": "intruder"}, headers=headers)


async def _redis_dump(system: FaultSystem) -> bytes:
    """Every stream entry and every hash/string/list value in Redis, as bytes."""
    r = system.redis
    chunks: list[bytes] = []
    async for key in r.scan_iter(count=500):
        kind = (await r.type(key)).decode()
        value: Any
        if kind == "stream":
            value = await r.xrange(key)
        elif kind == "hash":
            value = await r.hgetall(key)
        elif kind == "list":
            value = await r.lrange(key, 0, -1)
        elif kind == "string":
            value = await r.get(key)
        else:
            value = kind
        chunks.append(key + b"=" + repr(value).encode())
    return b"\n".join(chunks)


def _cli(system: FaultSystem, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "optbot.cli", *args],
        env=system.env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc.stdout + proc.stderr


async def test_controls_when_token_missing_or_wrong_refuse_log_and_change_nothing(
    make_system: MakeSystem,
) -> None:
    system = await make_system()
    before = int(await system.redis.xlen("sys:control"))
    state = await system.redis.hget("risk:state", "state")
    wrong = "wrong-" + CONTROL_TOKEN[::-1]
    for headers in ({}, {"Authorization": f"Bearer {wrong}"}, {"Authorization": CONTROL_TOKEN}):
        r = await _control(system, headers)
        assert r.status_code == 401, (headers, r.status_code)
        assert CONTROL_TOKEN not in r.text and wrong not in r.text
    assert int(await system.redis.xlen("sys:control")) == before
    assert await system.redis.hget("risk:state", "state") == state
    await wait_for(lambda: system.log_text("monitor").count("control_refused") >= 3, 5, "logged")
    assert wrong not in system.log_text()

    ok = await _control(system, {"Authorization": f"Bearer {CONTROL_TOKEN}"})
    assert ok.status_code == 200 and ok.json()["state"] == "HALTED"  # the right token works
    # the request and the state the strategy applied (answered only after it did)
    assert int(await system.redis.xlen("sys:control")) == before + 2

    # Secrets, after the system has run and been steered: nowhere to be found.
    await asyncio.to_thread(_cli, system, "resume", "--why", "test", "--who", "tester")
    await first_fill(system)
    texts: dict[str, str | bytes] = {"redis": await _redis_dump(system)}
    async with httpx.AsyncClient(base_url=system.monitor_url, timeout=10) as http:
        for path in [*ENDPOINTS, "/openapi.json"]:
            texts[path] = (await http.get(path)).text
    texts["optbot status"] = await asyncio.to_thread(_cli, system, "status", "--json")
    texts["optbot config"] = await asyncio.to_thread(_cli, system, "config")
    texts["logs"] = system.log_text()
    for secret in SECRETS:
        for where, text in texts.items():
            needle: str | bytes = secret.encode() if isinstance(text, bytes) else secret
            assert needle not in text, f"{secret[:6]}… found in {where}"
    assert "**********" in str(texts["optbot config"])  # shown masked, so it was set
    await assert_invariants(system)


async def test_routing_when_account_is_not_paper_refuses_and_sends_nothing(
    request: pytest.FixtureRequest,
) -> None:
    system = FaultSystem(fault_root(request.node.name), redis_binary(), ib_route_orders=True)
    try:
        system.start_redis()
        sim = await system.start_simulator(account_id="U7654321")  # a live-looking account
        system.spawn("gateway_adapter")
        await wait_for(lambda: system.healthy("gateway_adapter"), 30, "adapter healthy")

        async def connected() -> bool:
            rec = await read_record(system.redis)
            return any(s.state.value == "connected" for _, s in rec.status)

        await wait_for(connected, 20, "the adapter connected")
        order = OrderNew(
            client_order_id="sec-live-1",
            contract=ContractRef(
                symbol="SPY",
                sec_type=SecType.OPT,
                expiry="20301220",
                strike=600.0,
                right=Right.CALL,
                multiplier=100,
            ),
            action="BUY",  # type: ignore[arg-type]
            quantity=1,
            limit_price=1.0,
        )
        await system.redis.xadd("orders:requests", encode(order, "test/1", order.client_order_id))  # type: ignore[arg-type]

        async def rejected() -> list[Any]:
            rec = await read_record(system.redis)
            return [
                e
                for _, e in rec.events
                if e.client_order_id == "sec-live-1" and e.kind is OrderEventKind.REJECTED
            ]

        events = await wait_until(rejected, timeout=15, what="a reject")
        assert "paper" in events[0].reason
        assert sim.book.orders == {} and sim.book.executions == []  # nothing reached "IB"
        assert not [e for e in (await read_record(system.redis)).fills]
        assert "routing to IB refused" in system.log_text("gateway_adapter")
    finally:
        crashed = system.crashed()
        await system.close()
        assert not crashed, crashed


async def test_monitor_when_defaults_binds_loopback_only(make_system: MakeSystem) -> None:
    assert load_settings().monitor_host == "127.0.0.1"  # the default
    system = await make_system()  # the harness leaves OPTBOT_MONITOR_HOST at its default

    async def serving() -> dict[str, str]:  # the url is in the heartbeat once uvicorn listens
        beat = await system.heartbeat("monitor")
        return beat if "url" in beat else {}

    hb = await wait_until(serving, timeout=20, what="the monitor's url in its heartbeat")
    assert hb["url"].startswith("http://127.0.0.1:")
    assert await system.monitor_ok()
    others = [a for a in _host_addresses() if not a.startswith("127.")]
    for addr in others:  # the same port on any other address of this host: refused
        with pytest.raises(OSError), socket.create_connection((addr, system.monitor_port), 1):
            pass
    print(f"\nmonitor on {hb['url']}; refused on {others or 'no other address'}")


def _host_addresses() -> list[str]:
    """This host's IPv4 addresses: by name, and the source address of its default route."""
    found: set[str] = set()
    with contextlib.suppress(OSError):
        found |= {
            str(i[4][0]) for i in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        }
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
        found.add(s.getsockname()[0])
    return sorted(found)
