"""Liveness as seen from outside a service: its heartbeat hash is there and fresh.

``optbot run NAME`` leaves a pid file under ``$OPTBOT_VAR_DIR/run``; ``optbot health``
without names checks the services whose pid files point at live processes here,
which in a container is exactly the one service it runs (the Docker HEALTHCHECK).
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from shared.contract import service_key


def run_dir(var_dir: Path) -> Path:
    return var_dir / "run"


def write_pidfile(var_dir: Path, name: str) -> Path | None:
    """Record that this process runs ``name``; best effort (read-only disks exist)."""
    path = run_dir(var_dir) / f"{name}.pid"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(os.getpid()))
    except OSError:
        return None
    return path


def remove_pidfile(path: Path | None) -> None:
    if path is not None:
        with contextlib.suppress(OSError):
            if path.read_text().strip() == str(os.getpid()):
                path.unlink()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def local_services(var_dir: Path) -> dict[str, int]:
    """Services with a pid file whose process is alive on this host."""
    out: dict[str, int] = {}
    directory = run_dir(var_dir)
    if not directory.is_dir():
        return out
    for path in directory.glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            pid = int(path.read_text().strip())
            if _pid_alive(pid):
                out[path.stem] = pid
    return out


def _fresh(info: dict[bytes, bytes], max_age_s: float) -> bool:
    try:
        return time.time() - float(info[b"heartbeat"]) <= max_age_s
    except (KeyError, ValueError):
        return False


async def _heartbeats(redis: aioredis.Redis, name: str) -> list[dict[bytes, bytes]]:
    keys: list[Any] = [service_key(name)]
    keys += [k async for k in redis.scan_iter(match=f"{service_key(name)}:*", count=100)]
    rows: list[Any] = [await redis.hgetall(k) for k in keys]
    return [r for r in rows if r]


async def healthy(
    redis: aioredis.Redis, name: str, max_age_s: float, pid: int | None = None
) -> bool:
    """A fresh heartbeat of ``name`` (of the process ``pid`` on this host, if given)."""
    host = socket.gethostname().encode()
    for info in await _heartbeats(redis, name):
        mine = pid is None or (info.get(b"pid") == str(pid).encode() and info.get(b"host") == host)
        if mine and _fresh(info, max_age_s):
            return True
    return False
