"""`optbot up`: starts every service, `optbot status` says healthy, SIGTERM leaves nothing.

Runs the real command in its own session with its Redis URL pointing at nothing,
so it must start a private redis-server (the fallback) as well, with the ACL users:
every service connects as its own user, `optbot status` as the operator.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as syncredis
from redis.exceptions import AuthenticationError

from optbot.registry import services_for
from shared.redis_server import free_port
from shared.settings import load_settings
from tests.helpers import wait_until_sync


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes (its parent has not reaped it yet)
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _group_members(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid and _alive(int(entry.name)):
                    pids.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return pids


def _status(env: dict[str, str]) -> dict[str, object] | None:
    proc = subprocess.run(
        [sys.executable, "-m", "optbot.cli", "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def test_up_when_started_reports_healthy_and_sigterm_leaves_no_child(tmp_path: Path) -> None:
    sim_port = free_port()
    env = {
        **os.environ,
        "OPTBOT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing there: fallback
        "OPTBOT_VAR_DIR": str(tmp_path / "var"),
        "OPTBOT_SIM_PORT": str(sim_port),
        "OPTBOT_SIM_CONTROL_PORT": str(free_port()),
        "OPTBOT_IB_PORT": str(sim_port),
        "OPTBOT_MONITOR_PORT": str(free_port()),
        "OPTBOT_HEARTBEAT_INTERVAL_S": "0.5",
    }
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen(
        [sys.executable, "-m", "optbot.cli", "up"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    try:
        banner = wait_until_sync(
            lambda: re.search(
                r"redis:\s+(redis://\S+) \(redis-server, ACL users", Path(log.name).read_text()
            ),
            timeout=30,
            what="the banner with the private Redis URL",
        )
        env["OPTBOT_REDIS_URL"] = banner.group(1)
        with pytest.raises(AuthenticationError):  # the default user is off
            syncredis.Redis.from_url(banner.group(1)).get("risk:state")
        env["OPTBOT_REDIS_SECRETS_DIR"] = str(tmp_path / "var" / "redis-secrets")
        assert "dashboard: http://localhost:" in Path(log.name).read_text()
        status = wait_until_sync(lambda: _status(env), timeout=90, what="all services healthy")
        expected = {s.name for s in services_for(load_settings())}
        services = status["services"]
        assert isinstance(services, list)
        assert {s["name"] for s in services} == expected and all(s["alive"] for s in services)
        assert "tws_simulator" in expected
        sim = subprocess.run(
            [sys.executable, "-m", "optbot.cli", "sim", "fault", "status"],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert sim.returncode == 0 and '"ok": true' in sim.stdout
        members = _group_members(up.pid)
        assert len(members) >= len(expected) + 2  # up, redis-server, every service
        # a crashed child is restarted by the supervisor
        victim = next(s for s in services if s["name"] == "market_data")
        os.kill(int(victim["pid"]), signal.SIGKILL)
        wait_until_sync(
            lambda: _restarted(env, "market_data", victim["pid"]), timeout=30, what="restart"
        )
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(60)
        log.close()
    assert code == 0
    deadline = time.monotonic() + 10
    while _group_members(up.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _group_members(up.pid) == [], Path(log.name).read_text()[-3000:]


def _restarted(env: dict[str, str], name: str, old_pid: object) -> bool:
    status = _status(env) or {}
    rows = status.get("services", [])
    assert isinstance(rows, list)
    return any(r["name"] == name and r["alive"] and r["pid"] != old_pid for r in rows)
