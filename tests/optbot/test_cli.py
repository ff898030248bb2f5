"""The ``optbot`` command against a real Redis: tail, status, halt/resume, help."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as syncredis
import redis.asyncio as aioredis

from optbot.registry import SERVICES
from shared.redis_server import RedisHandle
from shared.settings import Settings
from tests.running import strategy_running


def optbot(
    *args: str, url: str, timeout: float = 60, **env_vars: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPTBOT_REDIS_URL": url, **env_vars}
    return subprocess.run(
        [sys.executable, "-m", "optbot.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def client(redis_server: RedisHandle) -> syncredis.Redis:
    c = syncredis.Redis.from_url(redis_server.url)
    c.flushall()  # our private server
    return c


def test_tail_when_stream_has_entries_prints_decoded_lines(
    redis_server: RedisHandle, client: syncredis.Redis
) -> None:
    from shared.envelope import encode
    from tests.shared.samples import SAMPLES

    for body in SAMPLES[:3]:
        client.xadd("md:ticks", encode(body, src="t", key=body.contract.key))  # type: ignore[attr-defined, arg-type]
    client.xadd("md:ticks", {"type": "junk"})
    proc = optbot("tail", "md:ticks", "-n", "3", url=redis_server.url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3
    assert " quote key=VIX " in lines[0] and '"last":17.25' in lines[0]
    assert " quote key=AAPL 20261218 250 C " in lines[1] and '"delta":0.42' in lines[1]
    assert "undecodable: unknown type 'junk'" in lines[2]


def test_tail_when_entries_are_json_msgpack_or_junk_prints_one_line_each(
    redis_server: RedisHandle, client: syncredis.Redis
) -> None:
    import json

    import msgspec

    from shared.envelope import encode
    from shared.schemas import ContractRef, Quote

    odd = Quote(contract=ContractRef(symbol="X\u2028Y"), bid=1.5)
    client.xadd("md:ticks", encode(odd, src="t", key="two\nlines"))  # type: ignore[arg-type]
    legacy = {**encode(odd, src="old", key="K"), b"body": msgspec.msgpack.encode(odd)}
    client.xadd("md:ticks", legacy)  # type: ignore[arg-type]
    client.xadd("md:ticks", {"type": "quote", "v": "1", "src": "t", "ts": "1", "body": '{"bid":'})
    proc = optbot("tail", "md:ticks", "-n", "3", url=redis_server.url)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 3 and len(proc.stdout.strip().split("\n")) == 3
    assert "key=two\\u000alines" in lines[0] and " src=old " in lines[1]
    for line in lines[:2]:
        body = json.loads(line[line.index("{") :])
        assert body == {"contract": {"symbol": "X\u2028Y"}, "bid": 1.5}
    assert (
        "undecodable: quote: undecodable body" in lines[2] and '"body": "<7 undecodable' in lines[2]
    )


def test_status_when_services_missing_exits_nonzero_and_lists_streams(
    redis_server: RedisHandle, client: syncredis.Redis
) -> None:
    client.xadd("gw:status", {"a": "b"})
    client.xgroup_create("gw:status", "strategy", "0")
    proc = optbot("status", url=redis_server.url)
    assert proc.returncode == 1
    assert "gw:status" in proc.stdout and "redis_version=" in proc.stdout


def test_status_when_redis_unreachable_exits_3() -> None:
    proc = optbot("status", url="redis://127.0.0.1:1/0")
    assert proc.returncode == 3 and "unreachable" in proc.stderr


async def test_halt_then_resume_when_strategy_runs_waits_for_and_prints_the_applied_state(
    redis_server: RedisHandle, client: syncredis.Redis, settings: Settings, redis: aioredis.Redis
) -> None:
    async with strategy_running(settings, redis):
        proc = await asyncio.to_thread(
            optbot, "halt", "--why", "fomc", "--who", "ana", url=redis_server.url
        )
        assert proc.returncode == 0, proc.stderr
        # printed once the strategy applied it: the state is already there when the CLI exits
        assert (
            "halt: risk state HALTED (was ACTIVE)" in proc.stdout and "by ana: fomc" in proc.stdout
        )
        assert client.hget("risk:state", "state") == b"HALTED"
        assert client.hget("risk:state", "why") == b"fomc"
        again = await asyncio.to_thread(optbot, "halt", "--who", "bo", url=redis_server.url)
        assert "risk state HALTED (unchanged)" in again.stdout and "by ana: fomc" in again.stdout
        resumed = await asyncio.to_thread(optbot, "resume", "--who", "ana", url=redis_server.url)
        assert "risk state ACTIVE (was HALTED)" in resumed.stdout, resumed.stderr
    assert client.hget("risk:state", "state") == b"ACTIVE"
    tail = optbot("tail", "sys:control", url=redis_server.url)
    assert '"action":"halt","who":"ana","why":"fomc"' in tail.stdout
    assert "risk.state key=HALTED src=strategy/" in tail.stdout
    assert '"action":"resume"' in tail.stdout


def test_halt_when_no_strategy_runs_times_out_with_a_clear_message_and_exit_4(
    redis_server: RedisHandle, client: syncredis.Redis
) -> None:
    started = time.monotonic()
    proc = optbot("halt", "--why", "x", url=redis_server.url, OPTBOT_CONTROL_TIMEOUT_S="0.5")
    assert time.monotonic() - started < 30
    assert proc.returncode == 4
    assert "halt NOT applied: halt not applied within 0.5s" in proc.stderr
    assert "the strategy is not running (no heartbeat)" in proc.stderr
    assert "expires unapplied" in proc.stderr
    assert client.exists("risk:state") == 0  # nobody but the strategy writes it
    flat = optbot("flatten", "AAPL", url=redis_server.url)
    assert flat.returncode == 4 and "flatten not sent" in flat.stderr
    assert client.xlen("sys:control") == 1  # the halt request only, now expired


@pytest.mark.parametrize("command", ["up", "run", "status", "tail", "halt", "resume", "config"])
def test_help_when_asked_describes_every_command(command: str) -> None:
    proc = optbot(command, "--help", url="redis://127.0.0.1:1/0")
    assert proc.returncode == 0 and "Usage" in proc.stdout


def test_run_when_service_unknown_exits_2_listing_services() -> None:
    proc = optbot("run", "nonsense", url="redis://127.0.0.1:1/0")
    assert proc.returncode == 2
    assert all(s.name in proc.stderr for s in SERVICES)


def test_health_when_heartbeat_fresh_passes_and_stale_or_missing_fails(
    redis_server: RedisHandle, client: syncredis.Redis
) -> None:
    import time

    client.hset("svc:market_data", mapping={"heartbeat": f"{time.time():.3f}", "pid": "1"})
    client.hset("svc:strategy", mapping={"heartbeat": f"{time.time() - 60:.3f}", "pid": "1"})
    assert optbot("health", "market_data", url=redis_server.url).returncode == 0
    stale = optbot("health", "market_data", "strategy", url=redis_server.url)
    assert stale.returncode == 1 and "strategy: UNHEALTHY" in stale.stdout
    assert optbot("health", "monitor", url=redis_server.url).returncode == 1


def test_health_when_no_name_checks_services_run_here(
    redis_server: RedisHandle, client: syncredis.Redis, tmp_path: Path
) -> None:
    env = {**os.environ, "OPTBOT_REDIS_URL": redis_server.url, "OPTBOT_VAR_DIR": str(tmp_path)}
    none = subprocess.run(
        [sys.executable, "-m", "optbot.cli", "health"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert none.returncode == 1 and "no service to check" in none.stderr
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "market_data.pid").write_text(str(os.getpid()))
    import socket
    import time

    client.hset(
        "svc:market_data",
        mapping={
            "heartbeat": f"{time.time():.3f}",
            "pid": str(os.getpid()),
            "host": socket.gethostname(),
        },
    )
    ok = subprocess.run(
        [sys.executable, "-m", "optbot.cli", "health"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert ok.returncode == 0 and "market_data: healthy" in ok.stdout


def test_redis_password_when_in_url_works_and_is_never_printed(tmp_path: Path) -> None:
    from shared.redis_server import start_redis
    from tests.conftest import redis_binary

    secret = "s3cr3t-pw-4711"
    handle = start_redis(
        redis_binary(), tmp_path, appendonly=False, extra_args=("--requirepass", secret)
    )
    try:
        assert secret in handle.url
        outputs = [
            optbot("flatten", "AAPL", url=handle.url),
            optbot("status", url=handle.url),
            optbot("config", url=handle.url),
            optbot("tail", "sys:control", url=handle.url),
            optbot("status", url=handle.url.replace(secret, secret + "-wrong")),
        ]
    finally:
        handle.stop()
    # reached Redis (3 would be unreachable): no strategy runs, so nothing is sent
    assert outputs[0].returncode == 4 and "not running" in outputs[0].stderr, outputs[0].stderr
    assert outputs[1].returncode == 1 and "sys:control" in outputs[1].stdout  # reached Redis
    assert "OPTBOT_REDIS_URL=redis://:***@127.0.0.1:" in outputs[2].stdout
    assert outputs[4].returncode == 3 and ":***@" in outputs[4].stderr
    for proc in outputs:
        assert secret not in proc.stdout + proc.stderr


@pytest.mark.parametrize("form", ["user", "query"])
def test_redis_password_when_given_as_user_or_query_works_and_is_never_printed(
    tmp_path: Path, form: str
) -> None:
    from shared.redis_server import start_redis
    from tests.conftest import redis_binary

    secret = "s3cr3t-pw-0815"
    handle = start_redis(
        redis_binary(), tmp_path, appendonly=False, extra_args=("--requirepass", secret)
    )
    base = handle.url.replace(f":{secret}@", "")  # redis://127.0.0.1:PORT/0

    def url(password: str) -> str:
        if form == "user":
            return base.replace("redis://", f"redis://default:{password}@")
        return f"{base}?password={password}"

    try:
        outputs = [
            optbot("flatten", "AAPL", url=url(secret)),
            optbot("config", url=url(secret)),
            optbot("status", url=url(secret + "-wrong")),
        ]
    finally:
        handle.stop()
    assert outputs[0].returncode == 4, outputs[0].stderr  # reached Redis: no strategy there
    shown = "redis://default:***@127.0.0.1:" if form == "user" else "/0?password=***"
    assert shown in outputs[1].stdout
    assert outputs[2].returncode == 3 and shown in outputs[2].stderr
    for proc in outputs:
        assert secret not in proc.stdout + proc.stderr
