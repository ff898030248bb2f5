"""``optbot up``: every service as a supervised child process.

Crashed children restart with exponential backoff (reset after a stable run);
Ctrl-C / SIGTERM stops them all (SIGTERM, then SIGKILL after a grace period) and
the private Redis last, so no child process is left behind. Children also get
PR_SET_PDEATHSIG, so even a SIGKILLed supervisor does not leave orphans.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from optbot.registry import ServiceSpec
from shared.aio import sleep_or_stop
from shared.logs import get_logger
from shared.redis_server import RedisHandle

log = get_logger("optbot.supervisor")

_PR_SET_PDEATHSIG = 1
STABLE_AFTER_S = 30.0
MAX_BACKOFF_S = 30.0


def die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the supervisor dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    spec: ServiceSpec
    process: asyncio.subprocess.Process | None = None
    started: float = 0.0
    restarts: int = 0
    backoff: float = 1.0
    history: list[int] = field(default_factory=list)


class Supervisor:
    """Starts, watches and stops the services of one system."""

    def __init__(
        self,
        specs: list[ServiceSpec],
        env: dict[str, str],
        *,
        redis: RedisHandle | None = None,
        grace_s: float = 10.0,
    ) -> None:
        self.children = [Child(spec) for spec in specs]
        self._env = env
        self._redis = redis
        self._grace_s = grace_s
        self.stop = asyncio.Event()

    async def _spawn(self, child: Child) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "optbot.cli",
            "run",
            child.spec.name,
            env=self._env,
            stdin=asyncio.subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        child.process = proc
        child.started = time.monotonic()
        log.info("child_started", service=child.spec.name, pid=proc.pid)
        return proc

    async def _watch(self, child: Child) -> None:
        """Keep one child running until stop; restart it with backoff when it exits."""
        while not self.stop.is_set():
            proc = await self._spawn(child)
            code = await proc.wait()
            child.history.append(code)
            if self.stop.is_set():
                return
            ran = time.monotonic() - child.started
            if ran > STABLE_AFTER_S:
                child.backoff = 1.0
            log.warning(
                "child_exited",
                service=child.spec.name,
                code=code,
                ran_s=round(ran, 1),
                restart_in_s=child.backoff,
            )
            await sleep_or_stop(self.stop, child.backoff)
            child.backoff = min(child.backoff * 2, MAX_BACKOFF_S)
            child.restarts += 1

    async def run(self) -> int:
        """Run until SIGINT/SIGTERM; returns 0 after a clean stop."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        watchers = [asyncio.create_task(self._watch(c)) for c in self.children]
        await self.stop.wait()
        log.info("stopping", services=[c.spec.name for c in self.children])
        await self._terminate_all()
        await asyncio.gather(*watchers, return_exceptions=True)
        if self._redis is not None:
            await asyncio.to_thread(self._redis.stop)
        log.info("stopped")
        return 0

    async def _terminate_all(self) -> None:
        """SIGTERM in reverse start order, SIGKILL whatever outlives the grace period."""
        running = [
            c.process
            for c in reversed(self.children)
            if c.process is not None and c.process.returncode is None
        ]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(p.wait()) for p in running]
        if not waits:
            return
        _done, late = await asyncio.wait(waits, timeout=self._grace_s)
        if late:
            for proc in running:
                if proc.returncode is None:
                    log.warning("child_killed", pid=proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*late, return_exceptions=True)


def child_env(redis_url: str, secrets_dir: Path | None = None) -> dict[str, str]:
    """The children's environment: the Redis to use and, with ACL users, their passwords."""
    env = dict(os.environ)
    env["OPTBOT_REDIS_URL"] = redis_url
    if secrets_dir is not None:  # each child reads only its own file (its service name)
        env["OPTBOT_REDIS_SECRETS_DIR"] = str(secrets_dir)
        env.pop("OPTBOT_REDIS_USERNAME", None)
        env.pop("OPTBOT_REDIS_PASSWORD_FILE", None)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
