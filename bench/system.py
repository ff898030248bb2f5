"""The whole simulated system for the system-level benchmarks (e2e latency, soak).

The simulator runs in the benchmark's process (so its market steps can be time
stamped); the services run as real subprocesses (``python -m optbot.cli run NAME``),
each with its own event loop and pid, exactly as ``optbot up`` runs them. Logs go
to a temporary directory; stop() terminates only the processes started here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from bench.common import progress
from services.tws_simulator import SimConfig, Simulator
from shared.contract import MD_TICKS, service_key
from shared.redis_server import free_port

SERVICES = ("gateway_adapter", "market_data", "strategy", "monitor")
# The fixed load: all md:ticks entries together (stocks, VIX, options). The
# simulator stretches its step interval (never below FASTEST_STEP_S) to hold it.
QUOTES_PER_S = 2000
FASTEST_STEP_S = 0.005
WATCHLIST = "SPY,QQQ,IWM,DIA,VIX,AAPL,MSFT,NVDA,AMZN,META,GOOGL,TSLA,AMD,NFLX,JPM,BAC,XOM,UNH,V,MA"

# As in tests/strategy/stack.py: a trending market and a quick strategy, so orders
# flow within the run (default 60 s bars, as in the end-to-end tests).
SERVICE_SETTINGS: dict[str, Any] = {
    "log_level": "WARNING",
    "consume_block_ms": 100,
    "heartbeat_interval_s": 0.5,
    "ib_connect_timeout_s": 2.0,
    "ib_request_timeout_s": 5.0,
    "gw_lease_ttl_ms": 1500,
    "md_watchlist": WATCHLIST,
    "md_eval_interval_s": 0.5,
    "strat_cycle_interval_s": 2.0,
    "strat_max_candidates": 5,
    "strat_reprice_interval_s": 1.0,
    "strat_quote_wait_s": 3.0,
    "risk_max_premium_pct": 15.0,
    "risk_max_total_premium_pct": 45.0,
    "risk_max_orders_per_min": 30,
}


StepHook = Callable[[Simulator, int], None]


@dataclass
class System:
    """A running simulator plus service subprocesses."""

    sim: Simulator
    redis_url: str
    monitor_port: int
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="optbot-bench-")))

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items()}

    def alive(self) -> dict[str, bool]:
        return {name: p.poll() is None for name, p in self.procs.items()}

    async def stop(self) -> dict[str, int | None]:
        """SIGTERM every service started here, wait, then stop the simulator."""
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        codes: dict[str, int | None] = {}
        for name, p in self.procs.items():
            try:
                codes[name] = await asyncio.to_thread(p.wait, 15)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = None
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_cancelled)  # sessions cancelled by the stop
        await self.sim.stop()
        await asyncio.sleep(0.1)
        loop.set_exception_handler(None)
        return codes


def _quiet_cancelled(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if isinstance(context.get("exception"), asyncio.CancelledError):
        return
    loop.default_exception_handler(context)


def service_env(
    redis_url: str, sim_port: int, monitor_port: int, **overrides: Any
) -> dict[str, str]:
    values = {
        **SERVICE_SETTINGS,
        **overrides,
        "redis_url": redis_url,
        "ib_port": sim_port,
        "monitor_port": monitor_port,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
    env.update({f"OPTBOT_{k.upper()}": str(v) for k, v in values.items()})
    return env


async def start_system(
    redis_url: str,
    *,
    tick_interval: float,
    quotes_per_sec: float = 0.0,
    step_hook: StepHook | None = None,
    services: tuple[str, ...] = SERVICES,
    **overrides: Any,
) -> System:
    """Simulator in this process, services as subprocesses; waits for their heartbeats."""
    sim = Simulator(
        SimConfig(
            port=0,
            tick_interval=tick_interval,
            quotes_per_sec=quotes_per_sec,
            time_scale=60.0,
            regime_period=0,
            initial_regime="trending_up",
        )
    )
    if step_hook is not None:
        original = sim.step

        def step(n: int = 1) -> None:  # time stamp every market step (the clock calls step())
            original(n)  # prices the step and writes its frames to every client socket
            step_hook(sim, time.time_ns())

        sim.step = step  # type: ignore[method-assign]
    await sim.start()
    sim.force_regime("trending_up")
    monitor_port = free_port()
    system = System(sim, redis_url, monitor_port)
    env = service_env(redis_url, sim.port, monitor_port, **overrides)
    env["OPTBOT_VAR_DIR"] = str(system.logdir)
    system.procs = await asyncio.to_thread(_spawn, services, env, system.logdir)
    await _wait_heartbeats(redis_url, services, system)
    return system


def _spawn(
    services: tuple[str, ...], env: dict[str, str], logdir: Path
) -> dict[str, subprocess.Popen[bytes]]:
    procs = {}
    for name in services:
        with (logdir / f"{name}.log").open("wb") as log:
            procs[name] = subprocess.Popen(
                [sys.executable, "-m", "optbot.cli", "run", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
    return procs


async def _wait_heartbeats(redis_url: str, services: tuple[str, ...], system: System) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 45
    try:
        while time.monotonic() < deadline:
            up = [s for s in services if await redis.exists(service_key(s))]
            if len(up) == len(services):
                progress(f"system up: {', '.join(services)} (logs in {system.logdir})")
                return
            dead = [n for n, ok in system.alive().items() if not ok]
            if dead:
                raise RuntimeError(f"service exited during start: {dead} (see {system.logdir})")
            await asyncio.sleep(0.2)
        raise RuntimeError(f"services not up after 45 s (see {system.logdir})")
    except BaseException:
        with contextlib.suppress(Exception):
            await system.stop()
        raise
    finally:
        await redis.aclose()


async def ticks_added(redis: aioredis.Redis) -> int:
    """Entries ever added to md:ticks: rates from two readings, whatever the cap trims."""
    info: Any = await redis.xinfo_stream(MD_TICKS)
    return int(info.get(b"entries-added", info.get("entries-added", 0)))
