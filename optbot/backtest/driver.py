"""Lockstep: the simulator advances only when every service has consumed what it sent.

Settling an instant ``t``: XADD ``ClockTick(t, seq)`` to ``sys:clock`` -> wait for each
service's ack of ``seq`` (it has handled the tick and everything the tick woke has
settled) -> look at the bus (``Quiescence``): every consumer group read and acked all,
and nothing was published since the tick. Anything published meanwhile may wake
someone, so the same ``t`` is ticked again (``seq + 1``) until a round adds nothing
(bounded: ``MAX_ROUNDS``).

One step to ``t`` settles ``t`` twice (``_step``): first the services' clocks move (with
all earlier data consumed), then the simulator ``advance``s and its data is consumed
at ``t``. Results thus depend on the seed and the settings, not on how fast the machine
runs the services.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from optbot.backtest.clockwire import SYS_CLOCK, ack_key, parse_ack, tick_fields
from optbot.backtest.control import SimControl
from optbot.backtest.options import Plan
from optbot.backtest.quiescence import BusState, Quiescence
from optbot.backtest.sessions import Session
from shared.contract import GW_STATUS
from shared.envelope import DecodeError, decode
from shared.schemas import ConnState, GatewayStatus

MAX_ROUNDS = 50  # ticks at one instant before the bus must be quiet
ACK_TIMEOUT_S = 60.0  # one service's ack of one tick (a slow step under load: seconds)
START_TIMEOUT_S = 180.0  # every service following the clock and the adapter connected
BLPOP_SLICE_S = 0.5  # how often a wait for acks looks at the child processes


class LockstepError(RuntimeError):
    """The run cannot go on: a service did not ack, died, or the bus never went quiet."""


def iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@dataclass
class Position:
    """Where the run is (for the progress line and the report)."""

    session: int = 0  # index into the plan's sessions
    t: float = 0.0
    sim_seconds: float = 0.0  # market time run (overnight jumps excluded)
    steps: int = 0
    rounds: int = 0  # clock ticks written (>= steps)
    wall_advance: float = 0.0  # host seconds in the simulator's advance
    wall_acks: float = 0.0  # host seconds waiting for the services' acks
    wall_quiet: float = 0.0  # host seconds reading the bus state

    def timing(self) -> str:
        """Where the wall time went, per step (for tuning; in the report's notes)."""
        n = max(self.steps, 1)
        return (
            f"{self.steps} steps, {self.rounds / n:.2f} ticks/step; per step: advance "
            f"{1000 * self.wall_advance / n:.1f} ms, acks {1000 * self.wall_acks / n:.1f} ms, "
            f"bus check {1000 * self.wall_quiet / n:.1f} ms"
        )


class Lockstep:
    """Drives one run; ``alive()`` names a dead child process (None while all run)."""

    def __init__(
        self,
        redis: aioredis.Redis,
        control: SimControl,
        services: Sequence[str],
        *,
        stop: asyncio.Event,
        alive: Callable[[], str | None] = lambda: None,
        ack_timeout_s: float = ACK_TIMEOUT_S,
        max_rounds: int = MAX_ROUNDS,
    ) -> None:
        self.redis = redis
        self.control = control
        self.services = list(services)
        self.stop = stop
        self.alive = alive
        self.ack_timeout_s = ack_timeout_s
        self.max_rounds = max_rounds
        self.quiet = Quiescence(redis, SYS_CLOCK)
        self.seq = 0
        self.pos = Position()
        self.ack_wait: dict[str, float] = {}  # host seconds from a tick to each ack

    # --- one instant -------------------------------------------------------------

    async def _publish(self, t: float) -> int:
        self.seq += 1
        await self.redis.xadd(SYS_CLOCK, tick_fields(t, self.seq))  # type: ignore[arg-type]
        self.pos.rounds += 1
        return self.seq

    async def _acks(self, seq: int, timeout: float) -> list[str]:
        """Wait for every service's ack of ``seq`` (or a later one); the missing ones."""
        keys = {ack_key(s): s for s in self.services}
        pending = set(keys)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while pending:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return sorted(keys[k] for k in pending)
            got: Any = await self.redis.blpop(
                sorted(pending), timeout=min(remaining, BLPOP_SLICE_S)
            )
            if got is None:
                self._check_alive()
                continue
            key, raw = got
            if parse_ack(raw).seq >= seq:
                name = key.decode()
                pending.discard(name)
                self.ack_wait[keys[name]] = self.ack_wait.get(keys[name], 0.0) + (
                    loop.time() - (deadline - timeout)
                )
        return []

    def _check_alive(self) -> None:
        dead = self.alive()
        if dead:
            raise LockstepError(dead)

    async def settle(self, t: float) -> int:
        """Tick ``t`` until a round publishes nothing and every group is idle; rounds used."""
        state: BusState | None = None
        for n in range(1, self.max_rounds + 1):
            before = state.added if state is not None else (await self.quiet.state()).added
            seq = await self._publish(t)
            t0 = time.perf_counter()
            missing = await self._acks(seq, self.ack_timeout_s)
            t1 = time.perf_counter()
            self.pos.wall_acks += t1 - t0
            if missing:
                raise LockstepError(
                    f"no clock ack from {', '.join(missing)} for tick {seq} at {iso(t)} "
                    f"within {self.ack_timeout_s:.0f}s"
                )
            quiet, state = await self.quiet.quiet_since(before)
            self.pos.wall_quiet += time.perf_counter() - t1
            if quiet:
                return n
        busy = "; ".join(state.busy[:5]) if state is not None else ""
        raise LockstepError(
            f"the bus did not go quiet at {iso(t)} after {self.max_rounds} ticks: "
            f"still publishing or consuming ({busy or 'entries keep being added'})"
        )

    # --- start ---------------------------------------------------------------------

    async def _gateway_connected(self) -> bool:
        rows: Any = await self.redis.xrevrange(GW_STATUS, count=1)
        if not rows:
            return False
        try:
            body = decode(rows[0][1]).body
        except DecodeError:
            return False
        return isinstance(body, GatewayStatus) and body.state is ConnState.CONNECTED

    async def start(
        self,
        t: float,
        timeout: float = START_TIMEOUT_S,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Start in a fixed order, every wait at ``t``, so every run starts the same way:
        the adapter follows the clock and is connected to the simulator; then ``then``
        starts the others (market_data, strategy), which therefore find the gateway up
        (their warm-up requests are answered at once, never refused and retried later);
        they follow the clock; the bus settles. Only then does the first step run."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        everyone, first = self.services, [s for s in self.services if s == "gateway_adapter"]
        self.services = first or everyone
        try:
            await self._until(t, deadline, self._gateway_connected, "the adapter to connect")
            if then is not None:
                await then()
            self.services = everyone
            await self._until(t, deadline, None, "the services' first clock acks")
        finally:
            self.services = everyone
        await self.settle(t)

    async def _until(
        self,
        t: float,
        deadline: float,
        ready: Callable[[], Awaitable[bool]] | None,
        what: str,
    ) -> None:
        """Tick ``t`` until every service in ``self.services`` acks and ``ready()``."""
        loop = asyncio.get_running_loop()
        waiting_for = what
        while not self.stop.is_set():
            self._check_alive()
            seq = await self._publish(t)
            missing = await self._acks(seq, 2.0)
            if missing:
                waiting_for = f"clock acks from {', '.join(missing)}"
            elif ready is None or await ready():
                return
            else:
                waiting_for = what
            if loop.time() > deadline:
                raise LockstepError(f"not started in time: waiting for {waiting_for}")
            await asyncio.sleep(0.05)  # host time: processes starting, not trading time

    # --- the run ---------------------------------------------------------------------

    async def run(
        self,
        plan: Plan,
        on_step: Callable[[Position], None] = lambda _p: None,
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> bool:
        """Every session of the plan; False when stopped early (Ctrl-C). ``then``: starts
        the services that come after the adapter (``start``)."""
        first = plan.sessions[0]
        now, _open = await self.control.advance(first.open)  # its start: the first open
        self.pos.t = now
        await self.start(now, then=then)
        for i, session in enumerate(plan.sessions):
            self.pos.session = i
            if i > 0 and not await self._open_session(session, plan.regimes[i].value):
                return False
            if not await self._run_session(plan.session_end(session), plan.step_s, on_step):
                return False
        return True

    async def _open_session(self, session: Session, regime: str) -> bool:
        if self.stop.is_set():
            return False
        await self.control.call("regime", name=regime)
        await self._step(session.open)  # the overnight gap: one simulator step
        return True

    async def _run_session(
        self, end: float, step: float, on_step: Callable[[Position], None]
    ) -> bool:
        while self.pos.t < end:
            if self.stop.is_set():
                return False
            self._check_alive()
            before = self.pos.t
            await self._step(min(self.pos.t + step, end))
            self.pos.sim_seconds += self.pos.t - before
            self.pos.steps += 1
            on_step(self.pos)
        return True

    async def _step(self, t: float) -> None:
        """One step to ``t`` in two halves, so that no service ever sees part of a step:

        - time: every service's clock moves to ``t`` and whatever was due wakes, with
          everything up to the previous step consumed (orders sent now reach the
          simulator before it moves, at its prices of the previous step);
        - data: the simulator steps to ``t``; the adapter's sync reads all it sent and
          publishes it; every consumer handles it at ``t`` (a quote is 0 s old at ``t``).
        Waking and new data never race inside one round.
        """
        await self.settle(t)
        t0 = time.perf_counter()
        now, _open = await self.control.advance(t)
        self.pos.wall_advance += time.perf_counter() - t0
        self.pos.t = now
        await self.settle(now)
