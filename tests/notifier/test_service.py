"""The notifier as a real process (``optbot run notifier``): secrets stay secret.

The channel URLs hold tokens; they must appear in no log line, no Redis key or
stream entry, and not in ``optbot config`` or ``optbot status``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from shared.contract import GW_STATUS, SYS_ALERTS, service_key
from shared.redis_server import RedisHandle
from shared.schemas import Alert, AlertSeverity, ConnState, GatewayStatus
from tests.helpers import wait_until
from tests.notifier.conftest import SECRET_MAIL, SECRET_PATH
from tests.notifier.helpers import add, channel_health, has_group
from tests.notifier.receivers import JsonReceiver, SmtpReceiver

pytestmark = pytest.mark.slow
SECRETS = ("S3CR3T-webhook-5b1e", SECRET_MAIL.split("@")[0], SECRET_PATH)


def _env(redis_server: RedisHandle, urls: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    env.update(
        OPTBOT_REDIS_URL=redis_server.url,
        OPTBOT_ALERT_URLS=urls,
        OPTBOT_VAR_DIR=str(tmp_path / "var"),
        OPTBOT_HEARTBEAT_INTERVAL_S="0.2",
        OPTBOT_ALERT_WATCH_INTERVAL_S="0.1",
        OPTBOT_ALERT_GATEWAY_DOWN_S="0.3",
        OPTBOT_ALERT_RETRY_MAX_S="0.5",
        OPTBOT_CONSUME_BLOCK_MS="100",
    )
    return env


def _spawn(env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "optbot.cli", "run", "notifier"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip


def _cli(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "optbot.cli", command], env=env, capture_output=True,
        text=True, timeout=30, check=False,
    )  # fmt: skip


async def _redis_text(redis: aioredis.Redis) -> str:
    """Everything in Redis as one text: every key, field, value and stream entry."""
    out: list[str] = []
    async for key in redis.scan_iter(count=1000):
        kind = (await redis.type(key)).decode()
        value: Any
        if kind == "stream":
            value = await redis.xrange(key)
        elif kind == "hash":
            value = await redis.hgetall(key)
        elif kind == "list":
            value = await redis.lrange(key, 0, -1)
        elif kind == "set":
            value = await redis.smembers(key)
        elif kind == "string":
            value = await redis.get(key)
        else:
            value = ""
        out.append(f"{key!r} {value!r}")
    return "\n".join(out)


async def test_secret_urls_when_delivering_and_failing_appear_in_no_log_stream_or_command(
    redis: aioredis.Redis,
    redis_server: RedisHandle,
    json_receiver: JsonReceiver,
    smtp_receiver: SmtpReceiver,
    tmp_path: Path,
) -> None:
    dead = JsonReceiver("hook/S3CR3T-webhook-5b1e-dead")
    dead.stop()  # a channel whose port refuses: its failures are logged
    urls = f"{json_receiver.url} {smtp_receiver.url} {dead.url}"
    env = _env(redis_server, urls, tmp_path)
    log_path = tmp_path / "notifier.log"
    proc = _spawn(env, log_path)
    try:
        await wait_until(lambda: redis.exists(service_key("notifier")), what="notifier up")
        await wait_until(lambda: has_group(redis, GW_STATUS), what="groups")
        await add(redis, GW_STATUS, GatewayStatus(state=ConnState.DISCONNECTED, reason="eof"))
        await add(redis, SYS_ALERTS, Alert(code="test", severity=AlertSeverity.INFO,
                                           message="test alert", key="test:1"))  # fmt: skip
        await wait_until(lambda: len(json_receiver.messages()) >= 2, what="both delivered")
        await wait_until(lambda: len(smtp_receiver.mails) >= 2, what="both mailed")

        async def dead_failing() -> bool:
            return any(h["state"] == "failing" for h in (await channel_health(redis)).values())

        await wait_until(dead_failing, what="the refusing channel reported failing")
        status = await asyncio.to_thread(_cli, env, "status")
        config = await asyncio.to_thread(_cli, env, "config")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 15) == 0
    assert "failing" in status.stdout and "json-" in status.stdout and "mailto-" in status.stdout
    assert "OPTBOT_ALERT_URLS=**********" in config.stdout
    text = log_path.read_text() + status.stdout + status.stderr + config.stdout
    text += await _redis_text(redis)
    assert "alert_send_failed" in text  # the failure was logged, by channel id
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} leaked"
