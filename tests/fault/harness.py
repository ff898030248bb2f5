"""The whole system as real processes, for fault injection.

A private ``redis-server`` with AOF (on a fixed port and directory, so a test can
stop it and start it again on the same address), the TWS simulator in the test's
own event loop (its fault API is then a method call: ``drop_all``, ``restart``,
``connectivity_lost`` …) and every service as ``python -m optbot.cli run NAME``,
each with its stderr captured in ``logs/NAME-N.log`` so a test can grep what the
services said (``redis_unavailable``) and what they must never say (secrets).

Redis runs with the ACL users of ``shared/acl.py`` (default user off): every service
connects as its own user, the test and the CLI as ``operator``.

With ``sentinel=True`` a replica and three sentinels join the primary
(``tests/fault/sentinels.py``) and every process, the test's own client included,
connects through the sentinels (``OPTBOT_REDIS_SENTINELS``).

Settings are the end-to-end ones (``tests/strategy/stack.py``): the simulator's
60x clock with the trending_up regime forced, 2 s trading cycles, small claim idle
and 0.5 s heartbeats, so the strategy sends its first order within ~10 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from optbot.health import healthy
from optbot.supervisor import die_with_parent
from services.tws_simulator import SimConfig, Simulator
from shared.acl import OPERATOR, USERS, render_acl
from shared.bus import connect_redis
from shared.bus.connection import SentinelConfig
from shared.contract import service_key
from shared.redis_ha import render_ha_acl
from shared.redis_server import RedisHandle, free_port, start_redis
from shared.settings import Settings, load_settings
from tests.fault.sentinels import (
    HA_PASSWORDS,
    MASTER,
    SENTINEL_PASSWORD,
    SentinelSet,
    replica_conf,
)
from tests.strategy.stack import SERVICE_SETTINGS

SERVICES = ("gateway_adapter", "market_data", "strategy", "monitor")
CONTROL_TOKEN = "fault-token-S3CR3T-7f3a9c"
# One password per ACL user of the fault system's Redis, recognisable in any output.
REDIS_PASSWORDS = {u.name: f"redis-{u.name}-S3CR3T-5d8e21" for u in USERS}
SECRETS = (CONTROL_TOKEN, *REDIS_PASSWORDS.values(), *HA_PASSWORDS.values(), SENTINEL_PASSWORD)

FAULT_SETTINGS: dict[str, Any] = {
    **SERVICE_SETTINGS,
    "log_level": "INFO",  # the tests read the logs (redis_unavailable, secrets)
    "heartbeat_interval_s": 0.5,
    "heartbeat_ttl_s": 3.0,
    "claim_idle_ms": 1000,
    "control_token": CONTROL_TOKEN,
}


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.monotonic)


class FaultSystem:
    """Redis + simulator + services; kill, restart and inspect any of them."""

    def __init__(
        self, root: Path, redis_binary: str, *, sentinel: bool = False, **overrides: Any
    ) -> None:
        self.root = root
        self.redis_binary = redis_binary
        self.redis_dir = root / "redis"
        self.redis_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}/0"
        self.secrets_dir = write_secrets(root / "redis-secrets")
        self.ha: SentinelSet | None = None
        sentinel_cfg: SentinelConfig | None = None
        if sentinel:
            self.ha = SentinelSet(root, redis_binary, self.redis_port)
            sentinel_cfg = self.ha.config()
            pw_file = root / "sentinel-password"
            pw_file.write_text(SENTINEL_PASSWORD + "\n")
            pw_file.chmod(0o600)
            overrides = {
                "redis_sentinels": self.ha.addresses,
                "redis_sentinel_master": MASTER,
                "redis_sentinel_password_file": str(pw_file),
                **overrides,
            }
        self.monitor_port = free_port()
        self.logs = root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.overrides = overrides
        self.redis_handle: RedisHandle | None = None
        self.sim: Simulator | None = None
        self.services: dict[str, Service] = {}
        self.spawned: dict[str, int] = {}
        self.redis: aioredis.Redis = connect_redis(
            self.redis_url,
            socket_timeout=5.0,
            username=OPERATOR,
            password=REDIS_PASSWORDS[OPERATOR],
            sentinel=sentinel_cfg,
        )
        self.settings: Settings = load_settings(**self._values(), var_dir=str(root / "var"))

    # --- settings ------------------------------------------------------------------------

    def _values(self, **overrides: Any) -> dict[str, Any]:
        return {
            **FAULT_SETTINGS,
            **self.overrides,
            **overrides,
            "redis_url": self.redis_url,
            "redis_secrets_dir": str(self.secrets_dir),
            "ib_port": self.sim.port if self.sim else 0,
            "monitor_port": self.monitor_port,
        }

    def env(self, **overrides: Any) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
        env.update({f"OPTBOT_{k.upper()}": str(v) for k, v in self._values(**overrides).items()})
        env["OPTBOT_VAR_DIR"] = str(self.root / "var")
        return env

    # --- redis -----------------------------------------------------------------------------

    def start_redis(self) -> None:
        """Redis with the services' ACL users loaded from a file, as compose runs it."""
        self.redis_dir.mkdir(parents=True, exist_ok=True)
        acl_file = self.redis_dir / "users.acl"
        acl = render_acl(REDIS_PASSWORDS)
        extra: tuple[str, ...] = ()
        if self.ha is not None:
            acl += render_ha_acl(HA_PASSWORDS)
            extra = ("--include", str(replica_conf(self.root / "replication.conf")))
        acl_file.write_text(acl)
        self.redis_handle = start_redis(
            self.redis_binary,
            self.redis_dir,
            port=self.redis_port,
            appendonly=True,
            extra_args=("--aclfile", str(acl_file), *extra),
        )
        if self.ha is not None and self.ha.replica is None:
            self.ha.start_replica(acl_file, self.root / "replication.conf")
            self.ha.start_sentinels()

    def kill_primary(self) -> None:
        """SIGKILL the Redis primary: no AOF flush, no goodbye to anyone."""
        assert self.redis_handle is not None and self.redis_handle.process is not None
        self.redis_handle.process.send_signal(signal.SIGKILL)
        self.redis_handle.process.wait(10)
        self.redis_handle = None

    def stop_redis(self) -> None:
        """SIGTERM: Redis finishes its AOF and exits."""
        if self.redis_handle is not None:
            self.redis_handle.stop()
            self.redis_handle = None

    # --- simulator ---------------------------------------------------------------------------

    async def start_simulator(
        self, regime: str = "trending_up", account_id: str = "DU1234567"
    ) -> Simulator:
        self.sim = Simulator(
            SimConfig(
                port=0,
                tick_interval=0.05,
                time_scale=60.0,
                regime_period=0,
                initial_regime=regime,
                account_id=account_id,
            )
        )
        await self.sim.start()
        self.sim.force_regime(regime)
        return self.sim

    # --- services ------------------------------------------------------------------------------

    def spawn(
        self, name: str, *, extra_env: dict[str, str] | None = None, **overrides: Any
    ) -> Service:
        """Start ``optbot run NAME`` with its output in its own log file."""
        n = self.spawned[name] = self.spawned.get(name, 0) + 1
        log = self.logs / f"{name}-{n}.log"
        env = {**self.env(**overrides), **(extra_env or {})}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "optbot.cli", "run", name],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,  # no orphan if the test run is killed
            )
        svc = self.services[name] = Service(name, proc, log)
        return svc

    async def start(self, names: tuple[str, ...] = SERVICES) -> None:
        if self.redis_handle is None:
            self.start_redis()
        await self.start_simulator()
        for name in names:
            self.spawn(name)

    def pid(self, name: str) -> int:
        return self.services[name].proc.pid

    async def signal(self, name: str, sig: int) -> None:
        self.services[name].proc.send_signal(sig)

    async def kill(self, name: str) -> int:
        """SIGKILL: no clean-up at all (the heartbeat and any lease linger)."""
        svc = self.services[name]
        svc.proc.send_signal(signal.SIGKILL)
        return await asyncio.to_thread(svc.proc.wait, 10)

    async def stop(self, name: str, timeout: float = 15.0) -> int | None:
        svc = self.services.get(name)
        if svc is None or svc.proc.poll() is not None:
            return svc.proc.returncode if svc else None
        with contextlib.suppress(ProcessLookupError):
            svc.proc.send_signal(signal.SIGCONT)  # in case a test left it stopped
        svc.proc.terminate()
        try:
            return await asyncio.to_thread(svc.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            svc.proc.kill()
            return await asyncio.to_thread(svc.proc.wait, 5)

    async def close(self) -> dict[str, int | None]:
        codes = {}
        for name in reversed(list(self.services)):
            codes[name] = await self.stop(name)
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        if self.sim is not None:
            await self.sim.stop()
        self.stop_redis()
        if self.ha is not None:
            self.ha.stop()
        return codes

    def crashed(self) -> dict[str, int]:
        """Services whose process exited on its own (none should, in any scenario)."""
        return {
            n: s.proc.returncode
            for n, s in self.services.items()
            if s.proc.poll() is not None and s.proc.returncode not in (0, -signal.SIGKILL)
        }

    def log_text(self, name: str | None = None) -> str:
        paths = sorted(self.logs.glob(f"{name or '*'}-*.log"))
        return "\n".join(p.read_text(errors="replace") for p in paths)

    # --- health --------------------------------------------------------------------------------

    async def healthy(self, name: str) -> bool:
        """A fresh heartbeat written by the current process of ``name``."""
        svc = self.services[name]
        if svc.proc.poll() is not None:
            return False
        try:
            return await healthy(self.redis, name, 2.0, svc.proc.pid)
        except Exception:  # Redis away: not healthy yet
            return False

    async def all_healthy(self, names: tuple[str, ...] = SERVICES) -> bool:
        return all([await self.healthy(n) for n in names])

    async def acl_denials(self) -> list[str]:
        """Commands Redis refused a service (ACL LOG): who, what, which key."""
        rows: Any = await self.redis.acl_log()
        return [f"{r.get('username')}: {r.get('reason')} {r.get('object')}" for r in rows]

    async def heartbeat(self, name: str) -> dict[str, str]:
        raw: Any = await self.redis.hgetall(service_key(name))
        return {k.decode(): v.decode() for k, v in raw.items()}

    async def monitor_ok(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2.0) as http:
                r = await http.get(f"{self.monitor_url}/healthz")
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor_port}"


def write_secrets(secrets_dir: Path) -> Path:
    """One password file per user (0600), as `optbot acl` and `optbot up` leave them."""
    secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, password in REDIS_PASSWORDS.items():
        path = secrets_dir / name
        path.write_text(password + "\n")
        path.chmod(0o600)
    return secrets_dir


async def wait_for(condition: Any, timeout: float, what: str, interval: float = 0.1) -> float:
    """Seconds until ``condition`` (sync or async) is truthy; fails after ``timeout``."""
    from tests.helpers import wait_until

    t0 = time.monotonic()
    await wait_until(condition, timeout=timeout, interval=interval, what=what)
    return time.monotonic() - t0
