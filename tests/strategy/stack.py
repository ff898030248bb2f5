"""A running system for the end-to-end tests: simulator, adapter, market data, strategy.

The simulator runs in-process on a free port with the trending_up regime forced
and a 60x clock (one simulated hour per real minute of drift per second); the
services run with ``shared.runner.run_service`` as tasks, or the strategy as a
real subprocess (``python -m optbot.cli run strategy``) when a test must SIGKILL it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from services.gateway_adapter.main import main as gateway_main
from services.market_data.main import main as market_data_main
from services.strategy.main import main as strategy_main
from services.tws_simulator import SimConfig, Simulator
from shared.contract import ORDERS_EVENTS, ORDERS_REQUESTS
from shared.envelope import decode
from shared.runner import run_service
from shared.schemas import OrderEvent, OrderEventKind, OrderNew
from shared.settings import Settings, load_settings

WATCHLIST = "SPY,QQQ,VIX,INTC,BAC,AAPL,AMD,XOM"

SERVICE_SETTINGS: dict[str, Any] = {
    "consume_block_ms": 100,
    "claim_idle_ms": 1000,
    "heartbeat_interval_s": 0.5,
    "log_level": "WARNING",
    "ib_connect_timeout_s": 2.0,
    "ib_request_timeout_s": 5.0,
    "ib_reconnect_min_s": 0.1,
    "ib_reconnect_max_s": 0.5,
    "gw_lease_ttl_ms": 1500,
    "md_watchlist": WATCHLIST,
    "md_eval_interval_s": 0.5,
    "md_top_n": 5,
    "strat_cycle_interval_s": 2.0,
    "strat_max_candidates": 5,
    "strat_reprice_interval_s": 1.0,
    "strat_quote_wait_s": 3.0,
    # 15 % of 3,756.96 = 563.54 a trade: the simulator's cheap calls (INTC, BAC, AAPL near
    # the money) fit, so the test does not wait for one particular candidate.
    "risk_max_premium_pct": 15.0,
    "risk_max_total_premium_pct": 45.0,
}


@dataclass
class Stack:
    sim: Simulator
    settings: Settings
    stop: asyncio.Event
    tasks: list[asyncio.Task[int]] = field(default_factory=list)
    strategy_stop: asyncio.Event | None = None
    strategy_task: asyncio.Task[int] | None = None
    proc: subprocess.Popen[bytes] | None = None

    def start_strategy(self, **overrides: Any) -> None:
        settings = self.settings.model_copy(update=overrides)
        self.strategy_stop = asyncio.Event()
        self.strategy_task = asyncio.create_task(
            run_service("strategy", strategy_main, settings, stop=self.strategy_stop)
        )

    def env(self, **overrides: Any) -> dict[str, str]:
        values = {**SERVICE_SETTINGS, **overrides, "redis_url": self.settings.redis_url}
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPTBOT_")}
        env.update({f"OPTBOT_{k.upper()}": str(v) for k, v in values.items()})
        env["OPTBOT_VAR_DIR"] = str(self.settings.var_dir)
        return env

    def spawn_strategy(self, **overrides: Any) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "optbot.cli", "run", "strategy"],
            env=self.env(**overrides),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self.proc

    def kill_strategy(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    async def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(self.proc.wait, 10)
            if self.proc.poll() is None:
                self.proc.kill()
        if self.strategy_stop is not None and self.strategy_task is not None:
            self.strategy_stop.set()
            await asyncio.wait_for(self.strategy_task, 15)
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 15)
        await self.sim.stop()


async def start_stack(redis_url: str, var_dir: str, **overrides: Any) -> Stack:
    sim = Simulator(
        SimConfig(
            port=0,
            tick_interval=0.05,
            time_scale=60.0,
            regime_period=0,
            initial_regime="trending_up",
        )
    )
    await sim.start()
    sim.force_regime("trending_up")
    settings = load_settings(
        **{**SERVICE_SETTINGS, **overrides},
        redis_url=redis_url,
        ib_port=sim.port,
        var_dir=var_dir,
    )
    stack = Stack(sim, settings, asyncio.Event())
    for name, main in (("gateway_adapter", gateway_main), ("market_data", market_data_main)):
        stack.tasks.append(asyncio.create_task(run_service(name, main, settings, stop=stack.stop)))
    return stack


async def orders(redis: aioredis.Redis) -> list[tuple[str, OrderNew]]:
    rows: Any = await redis.xrange(ORDERS_REQUESTS)
    out = []
    for entry_id, fields in rows:
        body = decode(fields).body
        if isinstance(body, OrderNew):
            out.append((entry_id.decode(), body))
    return out


async def fills(redis: aioredis.Redis) -> list[tuple[str, OrderEvent]]:
    rows: Any = await redis.xrange(ORDERS_EVENTS)
    out = []
    for entry_id, fields in rows:
        body = decode(fields).body
        if isinstance(body, OrderEvent) and body.kind is OrderEventKind.FILL:
            out.append((entry_id.decode(), body))
    return out


async def held_from_fills(redis: aioredis.Redis) -> dict[str, int]:
    """Net position per contract, counted straight from the fills (independent of the ledger)."""
    net: dict[str, int] = {}
    for _, ev in await fills(redis):
        assert ev.contract is not None
        sign = 1 if ev.action is not None and ev.action.value == "BUY" else -1
        net[ev.contract.key] = net.get(ev.contract.key, 0) + sign * ev.fill_qty
    return {k: v for k, v in net.items() if v}
