"""The Simulator: asyncio TCP server, shared market/account state, fault injection."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Callable

from .account import Account
from .config import SimConfig
from .contracts import Instrument, Universe
from .faults import ControlServer
from .handlers import HANDLERS
from .history import History
from .market import Market, Quote
from .nyse import NEW_YORK, Sessions, sessions
from .options import OptionPricer
from .orders import OrderBook
from .protocol import Out, error_frame, frame, prefix, server_time
from .regimes import Regime, parse_regime
from .schedule import parse_schedule
from .session import Session
from .ticks import quote_frames

log = logging.getLogger("optbot.tws_simulator")

LOST = "Connectivity between IB and Trader Workstation has been lost."
RESTORED_LOST = "Connectivity between IB and Trader Workstation has been restored - data lost."
RESTORED_KEPT = (
    "Connectivity between IB and Trader Workstation has been restored - data maintained."
)
FLOOD_BATCH_SECONDS = 0.01
HOURS = ("always", "regular")
MAX_ADVANCE_SECONDS = 10 * 86400  # one advance: a long weekend and more, never a runaway


class AdvanceError(ValueError):
    """An ``advance`` the simulator refuses: not in lockstep, not finite, backwards, too far."""


class Simulator:
    """An IB Gateway stand-in; one instance serves many client connections."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = cfg = config or SimConfig()
        if cfg.market_hours not in HOURS:
            raise ValueError(f"market_hours must be one of {HOURS}, got {cfg.market_hours!r}")
        if not (math.isfinite(cfg.lockstep_step_seconds) and cfg.lockstep_step_seconds > 0):
            raise ValueError(f"lockstep step must be > 0 s, got {cfg.lockstep_step_seconds!r}")
        start = _start_epoch(cfg.start)
        self.universe = Universe(_trading_date(start))
        self.market = Market(
            cfg.seed,
            cfg.step_seconds,
            start,
            parse_regime(cfg.initial_regime),
            cfg.regime_period,
            sessions() if cfg.market_hours == "regular" else None,
            parse_schedule(cfg.schedule),
        )
        self.pricer = OptionPricer(self.market)
        self.history = History(cfg.seed, self.market)
        self.account = Account(cfg.account_id, cfg.net_liquidation)
        self.book = OrderBook(
            self.account,
            self.quote_of,
            self.send_to_client,
            self._on_fill,
            self.now,
            lambda: self.market.open,
        )
        self.next_order_id = cfg.first_order_id
        self.reply_delay = 0.0
        self.data_paused = False
        self.connection_time = server_time(self.now())
        self.sessions: dict[int, Session] = {}  # by client id
        self._all: set[Session] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        self._control = ControlServer(self)
        self._port = cfg.port
        self._flood_cursor = 0
        self._next_day = _next_midnight(start)  # when the option listings roll

    # --- lifecycle ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound API port (the real one when the config asked for port 0)."""
        return self._port

    @property
    def control_port(self) -> int | None:
        return self._control.port

    async def start(self) -> None:
        """Listen for API clients (and control commands) and start the market clock."""
        await self._listen(self.config.port)
        if self.config.control_port is not None:
            await self._control.start(self.config.control_host, self.config.control_port)
        free_running = self.config.tick_interval > 0 or self.config.flood_ticks_per_sec > 0
        if free_running and not self.config.lockstep:
            self._ticker = asyncio.create_task(self._run_clock())
        log.info(
            "tws simulator listening on %s:%s (seed %s, control %s:%s)",
            self.config.host,
            self.port,
            self.config.seed,
            self.config.control_host,
            self.control_port,
        )

    async def stop(self) -> None:
        """Close every connection and the listeners; idempotent."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self._control.stop()
        await self._close_listener()
        for session in list(self._all):
            session.close(abort=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        log.info("tws simulator stopped")

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(self._on_connect, self.config.host, port)
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = Session(self, reader, writer, HANDLERS)
        self._all.add(session)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        log.info("connection opened from %s", session.peer)
        try:
            await session.run()
        finally:
            if task is not None:
                self._tasks.discard(task)

    # --- session registry ----------------------------------------------------------------

    def claim(self, session: Session, client_id: int) -> bool:
        """Bind a client id to a session unless another live session holds it (326)."""
        holder = self.sessions.get(client_id)
        if holder is not None and not holder.closed:
            return False
        session.client_id = client_id
        self.sessions[client_id] = session
        log.info("client %s logged on from %s", client_id, session.peer)
        return True

    def forget(self, session: Session) -> None:
        self._all.discard(session)
        if session.client_id is not None and self.sessions.get(session.client_id) is session:
            del self.sessions[session.client_id]

    def send_to_client(self, client_id: int, build: Callable[[int], list[bytes]]) -> None:
        """Deliver frames built for that client's negotiated version, if it is connected."""
        session = self.sessions.get(client_id)
        if session is not None:
            session.send(build(session.version))

    def note_order_id(self, order_id: int) -> None:
        self.next_order_id = max(self.next_order_id, order_id + 1)

    # --- market ----------------------------------------------------------------------------

    def quote_of(self, inst: Instrument) -> Quote:
        if inst.is_option:
            return self.pricer.quote(inst).quote
        return self.market.quotes["VIX" if inst.sec_type == "IND" else inst.symbol]

    def mark(self, inst: Instrument) -> float:
        """Mid price used for portfolio valuation."""
        q = self.quote_of(inst)
        if q.bid > 0 and q.ask > 0:
            return (q.bid + q.ask) / 2
        return q.last

    def now(self) -> float:
        """The simulator's time (epoch seconds): the simulated market's. Everything it
        reports (currentTime, the handshake, tick and execution times) says this."""
        return self.market.now()

    def step(self, n: int = 1) -> None:
        """Advance the market n steps, fill crossed orders and push changed ticks."""
        for _ in range(n):
            self._step_once()

    def _step_once(self, seconds: float | None = None) -> None:
        self.market.step(seconds)
        if self.now() >= self._next_day:
            self.universe.roll(_trading_date(self.now()))
            self._next_day = _next_midnight(self.now())
        self.book.on_step()
        if not self.data_paused:
            for session in list(self._all):
                session.on_step()

    def advance_to(self, to: float) -> dict[str, object]:
        """Lockstep: step until the simulated time is at least ``to``.

        Steps are ``lockstep_step_seconds`` long, the last one shortened to land on
        ``to`` and none running past a session close. While the market is closed,
        one step jumps to the next session open carrying the whole closed time (the
        overnight gap; options decay over it), so the result may lie beyond ``to``.
        Returns ``{"now", "open", "close"}`` (close: the open session's end, or None).
        """
        now = self._check_advance(to)
        step = self.config.lockstep_step_seconds
        hours = self.market.sessions
        while now < to:
            if hours is None:
                seconds = min(step, to - now)
            elif hours.is_open(now):
                seconds = min(step, to - now, _session_close(hours, now) - now)
            else:
                seconds = _next_open(hours, now) - now
            self._step_once(seconds)
            now = self.now()
        open_now = hours is None or hours.is_open(now)
        close = _session_close(hours, now) if hours is not None and open_now else None
        return {"now": now, "open": open_now, "close": close}

    def _check_advance(self, to: float) -> float:
        if not self.config.lockstep:
            raise AdvanceError("advance needs a lockstep simulator (OPTBOT_SIM_LOCKSTEP=1)")
        if isinstance(to, bool) or not isinstance(to, int | float) or not math.isfinite(to):
            raise AdvanceError(f"to must be a finite number of epoch seconds, got {to!r}")
        now = self.now()
        if to < now:
            raise AdvanceError(f"to={to!r} is before the simulator's time {now!r}")
        if to - now > MAX_ADVANCE_SECONDS:
            raise AdvanceError(
                f"to={to!r} is {to - now:.0f} s ahead; one advance moves at most "
                f"{MAX_ADVANCE_SECONDS} s"
            )
        return now

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        flood = self.config.flood_ticks_per_sec
        interval = FLOOD_BATCH_SECONDS if flood else self.config.tick_interval
        deadline = loop.time()
        while True:
            deadline += interval if flood else self._step_interval()
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if loop.time() - deadline > 1.0:  # fell far behind: do not try to catch up
                deadline = loop.time()
            try:
                if flood:
                    self._flood_batch(max(1, int(flood * interval)))
                else:
                    self.step()
            except Exception:
                log.exception("market step failed")

    def _step_interval(self) -> float:
        """Seconds to the next market step: the configured interval, or longer when
        ``quotes_per_sec`` caps the quote rate of all open lines together."""
        rate = self.config.quotes_per_sec
        if rate <= 0:
            return self.config.tick_interval
        lines = sum(len(s.lines) for s in self._all)
        return max(self.config.tick_interval, lines / rate)

    def _flood_batch(self, budget: int) -> None:
        """Benchmark mode: ``budget`` tick messages round-robin over every live line."""
        self.market.step()
        self.book.on_step()
        if self.data_paused:
            return
        lines = [(s, line) for s in list(self._all) if not s.lagging() for line in s.lines.values()]
        if not lines:
            return
        out: dict[Session, list[bytes]] = {}
        sent = 0
        while sent < budget:
            session, line = lines[self._flood_cursor % len(lines)]
            self._flood_cursor += 1
            frames = quote_frames(line, self.market, self.pricer, full=True)
            out.setdefault(session, []).extend(frames)
            sent += len(frames)
        for session, frames in out.items():
            session.send(frames)

    def _on_fill(self, inst: Instrument) -> None:
        """Push account, portfolio, position and P&L changes after a fill."""
        acct = self.account
        pos = acct.positions.get(inst.con_id)
        for session in list(self._all):
            frames: list[bytes] = []
            if session.account_updates:
                frames += acct.update_frames(self.mark, self.now())
            if session.position_updates and pos is not None:
                frames.append(acct.position_frame(pos))
            frames += [acct.pnl_frame(r, self.mark) for r in session.pnl_req_ids]
            session.send(frames)

    # --- faults ------------------------------------------------------------------------------

    def drop_all(self) -> int:
        """Abort every client socket (as when the Gateway process dies)."""
        sessions = list(self._all)
        for session in sessions:
            session.close(abort=True)
        log.warning("fault: dropped %d connections", len(sessions))
        return len(sessions)

    def connectivity_lost(self) -> None:
        """Error 1100 to every client and stop market data."""
        self.data_paused = True
        self._broadcast(1100, LOST)

    def connectivity_restored(self, data_maintained: bool = True) -> None:
        """Error 1102 (data maintained) or 1101 (data lost: subscriptions are dropped)."""
        self.data_paused = False
        if data_maintained:
            self._broadcast(1102, RESTORED_KEPT)
            return
        for session in list(self._all):
            session.drop_lines()
        self._broadcast(1101, RESTORED_LOST)

    def _broadcast(self, code: int, text: str) -> None:
        log.warning("fault: error %s to all clients: %s", code, text)
        for session in list(self._all):
            session.send([error_frame(session.version, -1, code, text)])

    async def restart(self, downtime: float | None = None) -> None:
        """Close everything, stay down ``downtime`` s, come back on the same port."""
        await self._close_listener()
        self.drop_all()
        await asyncio.sleep(self.config.restart_downtime if downtime is None else downtime)
        self.connection_time = server_time(self.now())
        self.data_paused = False
        await self._listen(self._port)
        log.warning("fault: restarted, server time %s", self.connection_time)

    def set_reply_delay(self, ms: float) -> None:
        """Delay every outgoing message by ``ms`` milliseconds (0 turns it off)."""
        self.reply_delay = max(0.0, ms) / 1000.0
        log.warning("fault: reply delay %s ms", ms)

    def send_malformed(self) -> None:
        """Send each client a frame that is not a valid message (non-numeric id)."""
        bad = prefix(b"garbage\0\xff\xfe\0") + frame(Out.CURRENT_TIME, 1, int(self.now()))
        for session in list(self._all):
            session.send([bad])
        log.warning("fault: sent a malformed frame to %d clients", len(self._all))

    def force_regime(self, name: str | Regime) -> Regime:
        """Switch the market regime now and hold it (trending_up / trending_down /
        choppy), or ``schedule``: follow the regime schedule again."""
        if name == "schedule":
            self.market.resume_schedule()
            log.warning("fault: regime schedule resumed at %s", self.market.regime.value)
            return self.market.regime
        regime = name if isinstance(name, Regime) else parse_regime(name)
        self.market.force_regime(regime)
        log.warning("fault: regime forced to %s", regime.value)
        return regime

    def status(self) -> dict[str, object]:
        """A small snapshot for the control channel and tests."""
        return {
            "port": self.port,
            "clients": sorted(self.sessions),
            "steps": self.market.steps,
            "now": self.now(),
            "lockstep": self.config.lockstep,
            "regime": self.market.regime.value,
            "schedule": _schedule_state(self.market),
            "paused": self.data_paused,
            "market_open": self.market.open,
            "reply_delay_ms": self.reply_delay * 1000,
            "spy": round(self.market.price("SPY"), 2),
            "vix": self.market.price("VIX"),
            "net_liquidation": round(self.account.cash + self.account.market_value(self.mark), 2),
        }


def _schedule_state(market: Market) -> str:
    if not market.schedule:
        return "off"
    return "pinned" if market.pinned else "running"


def _trading_date(epoch: float) -> dt.date:
    """The exchange's (New York) calendar date of an instant."""
    return dt.datetime.fromtimestamp(epoch, NEW_YORK).date()


def _next_midnight(epoch: float) -> float:
    """The next New York midnight after ``epoch`` (when a new trading date begins)."""
    day = _trading_date(epoch) + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0), NEW_YORK).timestamp()


def _start_epoch(start: str) -> float:
    """``""``: now; ``YYYY-MM-DD``: that NYSE session's open (09:30 New York)."""
    if not start:
        return time.time()
    try:
        day = dt.date.fromisoformat(start)
    except ValueError as e:
        raise ValueError(f"simulator start {start!r} is not a date like 2026-03-02") from e
    return sessions().open_on(day)


def _session_close(hours: Sessions, now: float) -> float:
    close = hours.session_close(now)
    assert close is not None, "only asked while the market is open"
    return close


def _next_open(hours: Sessions, now: float) -> float:
    nxt = hours.next_open(now)
    if nxt is None:
        raise AdvanceError(f"no NYSE session after {server_time(now)}: beyond the calendar")
    return nxt
