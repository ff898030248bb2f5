"""A replica and three sentinels beside the fault system's primary, all on loopback.

Real ``redis-server`` processes on free ports in the test's directory: the replica
replicates as the ``replication`` user, each sentinel watches the primary as the
``sentinel`` user and asks its own clients for a password (``requirepass``), as
the compose ``ha`` profile runs them. Detection is fast for tests: the primary is
"down" after 1000 ms (``down-after-milliseconds``) and a failover may take 3 s.
"""

from __future__ import annotations

import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.bus.connection import SentinelConfig
from shared.redis_ha import REPLICATION_USER, SENTINEL_USER
from shared.redis_server import RedisHandle, free_port, start_redis

MASTER = "optbot"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 3000
HA_PASSWORDS = {
    REPLICATION_USER: "redis-replication-S3CR3T-0b7c44",
    SENTINEL_USER: "redis-sentinel-S3CR3T-91ad02",
}
SENTINEL_PASSWORD = "sentinel-clients-S3CR3T-6e1f58"  # what clients give the sentinels


def replica_conf(path: Path) -> Path:
    """Directives both data nodes include: how to log in to whichever is primary."""
    path.write_text(f"masteruser {REPLICATION_USER}\nmasterauth {HA_PASSWORDS[REPLICATION_USER]}\n")
    path.chmod(0o600)
    return path


def sentinel_conf(port: int, primary_port: int) -> str:
    return "\n".join(
        [
            "bind 127.0.0.1",
            f"port {port}",
            "daemonize no",
            "logfile sentinel.log",
            f"requirepass {SENTINEL_PASSWORD}",
            f"sentinel sentinel-pass {SENTINEL_PASSWORD}",  # to the other sentinels
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} 2",
            f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER} {FAILOVER_TIMEOUT_MS}",
            f"sentinel parallel-syncs {MASTER} 1",
            f"sentinel auth-user {MASTER} {SENTINEL_USER}",
            f"sentinel auth-pass {MASTER} {HA_PASSWORDS[SENTINEL_USER]}",
            "",
        ]
    )


@dataclass
class SentinelSet:
    """The replica's and the sentinels' processes, and a client for each sentinel."""

    root: Path
    binary: str
    primary_port: int
    replica_port: int = field(default_factory=free_port)
    ports: list[int] = field(default_factory=lambda: [free_port() for _ in range(3)])
    replica: RedisHandle | None = None
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def addresses(self) -> str:
        """As ``OPTBOT_REDIS_SENTINELS`` takes them."""
        return ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def config(self) -> SentinelConfig:
        """For a client of the test's own (``connect_redis(..., sentinel=...)``)."""
        return SentinelConfig(
            tuple(("127.0.0.1", p) for p in self.ports), MASTER, password=SENTINEL_PASSWORD
        )

    def start_replica(self, acl_file: Path, include: Path) -> None:
        self.replica = start_redis(
            self.binary,
            self.root / "replica",
            port=self.replica_port,
            appendonly=True,
            extra_args=(
                "--aclfile", str(acl_file),
                "--include", str(include),
                "--replicaof", "127.0.0.1", str(self.primary_port),
            ),
        )  # fmt: skip

    def start_sentinels(self) -> None:
        for i, port in enumerate(self.ports):
            d = self.root / f"sentinel-{i + 1}"
            d.mkdir(parents=True, exist_ok=True)
            conf = d / "sentinel.conf"  # a sentinel rewrites its own config: writable
            conf.write_text(sentinel_conf(port, self.primary_port))
            conf.chmod(0o600)
            self.procs.append(
                subprocess.Popen(
                    [self.binary, str(conf), "--sentinel", "--dir", str(d)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )

    def client(self, port: int) -> aioredis.Redis:
        return aioredis.Redis(
            host="127.0.0.1", port=port, password=SENTINEL_PASSWORD, socket_timeout=1.0
        )

    async def masters(self) -> list[dict[str, Any]]:
        """Each sentinel's view of the master (empty dict when it does not answer)."""
        out: list[dict[str, Any]] = []
        for port in self.ports:
            client = self.client(port)
            try:
                out.append(await client.sentinel_master(MASTER))
            except RedisError:
                out.append({})
            finally:
                await client.aclose()
        return out

    async def ready(self) -> bool:
        """Every sentinel sees the primary, its replica and the two other sentinels."""
        views = await self.masters()
        return all(
            v.get("port") == self.primary_port
            and v.get("num-slaves") == 1
            and v.get("num-other-sentinels") == 2
            for v in views
        )

    async def master_port(self) -> set[int]:
        """The master port each answering sentinel names (one value once they agree)."""
        return {int(v["port"]) for v in await self.masters() if v}

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self.replica is not None:
            self.replica.stop()
