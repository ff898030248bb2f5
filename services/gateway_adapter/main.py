"""gateway_adapter: the only process that opens an IB API connection.

Wiring plus the active/standby life cycle. An instance first holds the Redis
lease, then connects; while it is active it consumes ``gw:commands`` and
``orders:requests``, publishes quotes, account and status. Losing the lease ends
the term at once (disconnect first, then back to standby). A clean stop releases
the lease; a crash leaves it to expire, and a standby takes over after the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from redis.exceptions import RedisError

from services.gateway_adapter.account import AccountReporter
from services.gateway_adapter.chains import Requests
from services.gateway_adapter.commands import GROUP, CommandHandler, OrderDesk
from services.gateway_adapter.connection import DATA_TYPE_CODES, IbConnection
from services.gateway_adapter.execution import Executor, SimulatedExecutor
from services.gateway_adapter.expiry import CHECK_INTERVAL_S
from services.gateway_adapter.ib_orders import IbExecutor
from services.gateway_adapter.journal import OrderJournal
from services.gateway_adapter.lease import Lease
from services.gateway_adapter.pacing import TokenBucket
from services.gateway_adapter.publish import QuotePublisher
from services.gateway_adapter.qualify import Qualifier
from services.gateway_adapter.reconcile import Reconciler
from services.gateway_adapter.sim_account import SimAccount
from services.gateway_adapter.status import StatusReporter
from services.gateway_adapter.subscriptions import Subscriptions
from shared import clock
from shared.bus import GroupConsumer
from shared.contract import (
    GW_COMMANDS,
    MD_TICKS,
    ORDERS_EVENTS,
    ORDERS_REQUESTS,
    lease_key,
    service_key,
    standby_key,
)
from shared.logs import get_logger
from shared.market_calendar import preload
from shared.runner import ServiceContext
from shared.schemas import ConnState, ContractRef

log = get_logger("optbot.gateway_adapter")

NAME = "gateway_adapter"
EXECUTOR = "executor"  # requester of the lines the executor needs


class GatewayAdapter:
    """One adapter instance: standby until it holds the lease, then the IB client."""

    def __init__(self, ctx: ServiceContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.status = StatusReporter(ctx)
        self.conn = IbConnection(s, self.status)
        self.pacer = TokenBucket(s.ib_pacing_per_s)
        self.quotes = QuotePublisher(
            ctx.publisher,
            linger_s=s.publish_linger_ms / 1000.0,
            redis=ctx.redis,
            maxlen=s.maxlen(MD_TICKS),
        )
        self.qualifier = Qualifier(self.conn, ctx.redis, self.pacer, s.ib_request_timeout_s)
        self.account = AccountReporter(self.conn, ctx.publisher)
        self.subs = Subscriptions(
            conn=self.conn,
            qualifier=self.qualifier,
            quotes=self.quotes,
            pacer=self.pacer,
            status=self.status,
            redis=ctx.redis,
            max_lines=s.ib_max_lines,
            index_symbols=s.index_symbols,
            held=self._held,
            data_type_code=DATA_TYPE_CODES[s.ib_market_data_type],
            last_ttl_s=s.gw_last_ttl_s,
        )
        self.requests = Requests(
            self.conn,
            self.qualifier,
            self.quotes,
            self.pacer,
            timeout_s=s.ib_request_timeout_s,
            chain_max=s.gw_chain_max_contracts,
        )
        self.journal = OrderJournal(
            ctx.redis, ctx.publisher.src, s.maxlen(ORDERS_EVENTS), ctx.publisher.replicas
        )
        self.sim_account = SimAccount(
            ctx.redis,
            ctx.publisher,
            default_equity=s.strat_starting_equity,
            broker_equity=self.account.net_liquidation,
            account_id=lambda: self.account.account,
            quote=self.quotes.quote,
        )
        self.executor = self._executor()
        self.reconciler = Reconciler(
            conn=self.conn,
            executor=self.executor if isinstance(self.executor, IbExecutor) else None,
            account=self.account,
            publisher=ctx.publisher,
            pacer=self.pacer,
            timeout_s=s.ib_request_timeout_s,
        )
        self.expiry_interval_s = CHECK_INTERVAL_S
        self.lease = Lease(
            ctx.redis,
            lease_key(s.ib_host, s.ib_port, s.ib_client_id),
            ctx.instance,
            s.gw_lease_ttl_ms,
        )
        self.active_key = service_key(NAME)
        self.standby_key = standby_key(NAME, ctx.instance)
        ctx.heartbeat_key = self.standby_key  # before the first heartbeat is written
        self.terms = 0
        self.commands: CommandHandler | None = None  # per term
        self._bg_tasks: set[asyncio.Task[Any]] = set()
        self.conn.ib.pendingTickersEvent += self.quotes.on_pending
        self.conn.on_data_lost = lambda: self._bg(self.subs.resubscribe(), "resubscribe")

    def _executor(self) -> Executor:
        s, ctx = self.ctx.settings, self.ctx
        if s.ib_route_orders:
            return IbExecutor(
                conn=self.conn,
                qualifier=self.qualifier,
                pacer=self.pacer,
                journal=self.journal,
                redis=ctx.redis,
                refused=lambda r: self.status.error(0, r, severity="refused"),
            )
        return SimulatedExecutor(
            quotes=self.quotes,
            journal=self.journal,
            redis=ctx.redis,
            account=self.sim_account,
            per_contract=s.gw_commission_per_contract,
            minimum=s.gw_commission_min,
            slippage_ticks=s.gw_market_slippage_ticks,
            live=self._live,
            ensure_line=self._ensure_line,
        )

    def _live(self) -> bool:
        return self.conn.connected

    @property
    def simulated(self) -> bool:
        return isinstance(self.executor, SimulatedExecutor)

    def _held(self) -> set[str]:
        """Lines that must stay open: broker positions, our working orders, simulated positions."""
        return self.account.held_keys() | self.executor.needed_keys()

    async def _ensure_line(self, ref: ContractRef) -> None:
        await self.subs.subscribe([ref], 8, requester=EXECUTOR)

    def _bg(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._bg_tasks.add(task)
        task.add_done_callback(self._bg_done)

    def _bg_done(self, task: asyncio.Task[Any]) -> None:
        self._bg_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("background_failed", task=task.get_name(), error=repr(task.exception()))

    # --- life cycle -----------------------------------------------------------------------

    async def run(self) -> None:
        """Standby -> active -> ... until stopped. Cancelled = crashed (lease not released)."""
        stop = self.ctx.stop
        try:
            await asyncio.to_thread(preload)  # expiry instants: ~1 s, never on the loop
            while not stop.is_set():
                self._enter_standby()
                if not await self.lease.acquire(stop):
                    break
                await self._term()
        except asyncio.CancelledError:
            self.conn.disconnect("cancelled")  # the OS would close the socket of a dead process
            raise
        self.conn.disconnect("stopping")
        await self.lease.release()

    def _enter_standby(self) -> None:
        self.ctx.heartbeat_key = self.standby_key
        self.ctx.extra["lease"] = self.lease.key
        if self.status.state is not ConnState.STANDBY or not self.status.history:
            holder = self.lease.holder or "another instance"
            self.status.transition(
                ConnState.STANDBY, f"waiting for lease {self.lease.key} ({holder})"
            )

    async def _term(self) -> None:
        """One period as the active adapter: lease acquired -> lease lost or stop."""
        self.terms += 1
        term = asyncio.Event()
        self.ctx.heartbeat_key = self.active_key
        log.info("lease_acquired", key=self.lease.key, term=self.terms)

        def lost(reason: str) -> None:
            self.conn.disconnect(reason)  # at once: never two clients on one id
            term.set()

        await self.qualifier.load()
        self.subs.reset()
        await self.subs.load()
        await self.executor.restore()
        consumers = self._consumers()
        tasks = [
            asyncio.create_task(self.lease.keep(term, lost), name="lease"),
            asyncio.create_task(self.quotes.run(term), name="quotes"),
            asyncio.create_task(self.account.run(term), name="account"),
            asyncio.create_task(self.sim_account.run(term, self._live), name="sim-account"),
            asyncio.create_task(_link(self.ctx.stop, term), name="stop-link"),
            asyncio.create_task(self._stats(term), name="stats"),
            asyncio.create_task(self._expiry_loop(term), name="expiry"),
            *(asyncio.create_task(c.run(term), name=f"consume:{c.stream}") for c in consumers),
        ]
        try:
            await self.conn.run(term, self._on_connected, self.reconciler.run)
        finally:
            term.set()
            self.conn.disconnect("term over")
            for c in consumers:
                self.ctx.consumers.remove(c)
            await _finish(tasks, grace_s=self.ctx.settings.consume_block_ms / 1000.0 + 2.0)

    def _consumers(self) -> list[GroupConsumer]:
        ctx = self.ctx
        handler = self.commands = CommandHandler(
            subs=self.subs,
            requests=self.requests,
            account=self.account,
            sim_account=self.sim_account if self.simulated else None,
            publisher=ctx.publisher,
            connected=lambda: self.conn.connected,
        )
        desk = OrderDesk(self.executor)
        made = [
            GroupConsumer(
                ctx.redis,
                ctx.settings,
                stream=GW_COMMANDS,
                group=GROUP,
                consumer=ctx.instance,
                handler=handler.handle,
                start_id="0",
                accept=handler.accepts,
            ),
            GroupConsumer(
                ctx.redis,
                ctx.settings,
                stream=ORDERS_REQUESTS,
                group=GROUP,
                consumer=ctx.instance,
                handler=desk.handle,
                start_id="$",
                accept=desk.accepts,
            ),
        ]
        ctx.consumers.extend(made)
        return made

    async def _on_connected(self) -> None:
        """After every (re)connect: account feeds, then exactly the desired lines again."""
        self.account.on_connected()
        if isinstance(self.executor, SimulatedExecutor):
            await self.sim_account.open()
        await self.subs.reopen_all()
        # then connection.py runs self.reconciler (SYNCING) before it says CONNECTED

    async def on_clock_tick(self, t: float) -> None:
        """Simulated sessions: catch up with the simulator before the step is acked.

        ``reqCurrentTime`` is a round trip on the TWS socket: when its answer is in,
        every tick and fill the simulator wrote before it has been read and dispatched.
        The simulator's answer (its simulated now) sets our clock; then the quotes those
        ticks made are written to md:ticks.
        """
        sim = clock.current()
        if self.conn.connected and isinstance(sim, clock.SimClock):
            try:
                answer = await asyncio.wait_for(
                    self.conn.ib.reqCurrentTimeAsync(), self.ctx.settings.ib_request_timeout_s
                )
            except (TimeoutError, ConnectionError) as exc:
                log.warning("clock_sync_failed", t=t, error=repr(exc))
            else:
                sim.advance(answer.timestamp())
        try:
            await self.quotes.flush()
        except RedisError as exc:
            log.warning("quote_flush_failed", error=str(exc))

    async def _expiry_loop(self, term: asyncio.Event) -> None:
        """Settle simulated options past their expiry: at once on taking over, then
        every ``expiry_interval_s`` (IB settles the options it holds itself)."""
        executor = self.executor
        if not isinstance(executor, SimulatedExecutor):
            return
        while not term.is_set():
            try:
                await executor.expire()
            except RedisError as exc:  # nothing was written: the next pass tries again
                log.warning("expiry_check_failed", error=str(exc))
            if await clock.current().sleep_or_stop(term, self.expiry_interval_s):
                return

    async def _stats(self, term: asyncio.Event) -> None:
        while not term.is_set():
            self.ctx.extra.update(
                {
                    "lines": str(len(self.subs.open)),
                    "desired": str(len(self.subs.desired)),
                    "quotes": str(self.quotes.quotes),
                    "connects": str(self.conn.connects),
                    "conflicts_326": str(self.conn.conflicts),
                    "term": str(self.terms),
                }
            )
            framing = self.conn.framing
            if framing is not None:  # how far the decoding of IB's stream is behind
                self.ctx.extra.update(
                    ib_backlog_bytes=str(framing.backlog), ib_read_pauses=str(framing.pauses)
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(term.wait(), self.ctx.settings.heartbeat_interval_s)


async def _link(source: asyncio.Event, target: asyncio.Event) -> None:
    """Set ``target`` when ``source`` is set (service stop ends the term)."""
    await source.wait()
    target.set()


async def _finish(tasks: list[asyncio.Task[Any]], grace_s: float) -> None:
    for t in tasks:
        if t.get_name() == "stop-link":
            t.cancel()
    _done, pending = await asyncio.wait(tasks, timeout=grace_s)
    for t in pending:
        t.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for t, r in zip(tasks, results, strict=True):
        if isinstance(r, Exception):
            log.warning("term_task_failed", task=t.get_name(), error=repr(r))


async def main(ctx: ServiceContext) -> None:
    """Service entry point (``optbot run gateway_adapter``)."""
    adapter = GatewayAdapter(ctx)
    ctx.extra["instance"] = ctx.instance
    if ctx.settings.clock == "sim":
        ctx.on_clock_tick = adapter.on_clock_tick
    ctx.spawn(adapter.run(), NAME)
