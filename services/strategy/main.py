"""strategy service: wiring of the bus to the cycles, the desk, the ledger and risk.

Start-up order matters: risk state and ledger first (replayed from the order
streams), then the consumers, then the loops, so no order is sent before the
strategy knows what it already holds and has working.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import msgspec
from redis.exceptions import RedisError

from services.strategy.chains import ChainClient
from services.strategy.controls import ControlHandler, recent_id
from services.strategy.cycle import Cycles
from services.strategy.desk import Books, Context, Desk
from services.strategy.ledger import Ledger, fill_from_event
from services.strategy.market import MarketView
from services.strategy.money import dec
from services.strategy.orders import OrderBook
from services.strategy.rebuild import apply_event, rebuild
from services.strategy.reconcile import BookReconciler
from services.strategy.risk import RiskEngine, RiskLimits, RiskState, RiskStatus, load_status
from services.strategy.views import publish_views
from shared import clock
from shared.bus import RequestClient
from shared.bus.latest import EntryOrder, latest_entry
from shared.contract import (
    ACCOUNT,
    GW_COMMANDS,
    GW_STATUS,
    MD_CANDIDATES,
    MD_SENTIMENT,
    MD_SIGNALS,
    MD_TICKS,
    ORDERS_EVENTS,
    SYS_ALERTS,
    SYS_CONTROL,
    service_key,
    standby_key,
)
from shared.contract.values import CandidatesHash, SentimentHash, decode_fields
from shared.envelope import Message
from shared.logs import get_logger
from shared.market_calendar import preload
from shared.redis_text import as_str
from shared.runner import ServiceContext
from shared.schemas import (
    AccountSnapshot,
    Bar,
    Candidate,
    CandidatesSignal,
    ConnState,
    Control,
    DataType,
    DecisionKind,
    DecisionOutcome,
    GatewayStatus,
    IbError,
    OptionChain,
    OrderEvent,
    OrderEventKind,
    Quote,
    RiskStateChange,
    SentimentSignal,
    Subscribe,
)

log = get_logger("optbot.strategy")

MANAGE_INTERVAL_S = 1.0
CURVE_EVERY = 5  # management ticks between equity-curve points


class StrategyService:
    def __init__(self, ctx: ServiceContext) -> None:
        s = ctx.settings
        self.ctx = ctx
        self.books = Books(
            ledger=Ledger(starting_cash=dec(s.strat_starting_equity)),
            orders=OrderBook(),
            market=MarketView(),
            status=RiskStatus(RiskState.HALTED, "not loaded yet"),  # until start() reads it
        )
        self.desk = Desk(
            self.books,
            risk=RiskEngine(RiskLimits.from_settings(s)),
            publisher=ctx.publisher,
            redis=ctx.redis,
            settings=s,
        )
        self.requests = RequestClient(
            ctx.redis,
            ctx.publisher,
            s,
            requester="strategy",
            replies=(OptionChain,),
            timeout_s=s.strat_chain_timeout_s,
            tag="st",
        )
        self.chains = ChainClient(self.requests)
        self.cycles = Cycles(self.books, self.desk, self.chains, s)
        self.controls = ControlHandler(self.desk, self.cycles)
        self.reconciler = BookReconciler()
        self.ticks = 0
        self._status_order = EntryOrder()

    async def start(self) -> None:
        ctx = self.ctx
        await asyncio.to_thread(preload)  # NYSE calendar for expiry instants, off the loop
        self.books.status = await load_status(ctx.redis)
        last_event = await rebuild(ctx.redis, self.books, self.desk.pricing.interval_s)
        await self.desk.day.load(clock.current().time())
        # Each group exists before its current state is read: a CONNECTED or a sentiment
        # change published meanwhile is delivered, not lost until the next change (which
        # live may be hours away). ``accept`` names every type that belongs on the stream
        # (not only those we act on): anything else is misplaced and goes to sys:dlq.
        await ctx.consume_after(
            self._load_gateway_status, GW_STATUS, self.on_status, accept=(GatewayStatus, IbError)
        )
        await ctx.consume_after(
            self._load_signals,
            MD_SIGNALS,
            self.on_signal,
            accept=(Bar, SentimentSignal, CandidatesSignal),
        )
        ctx.consume(ORDERS_EVENTS, self.on_order_event, start_id=last_event, accept=(OrderEvent,))
        ctx.consume(MD_TICKS, self.on_tick, conflate=lambda m: m.key or None, accept=(Quote,))
        ctx.spawn(self.requests.run(ctx.stop), f"replies:{self.requests.reply_to}")
        # Requests to apply, and our own risk.state records (skipped). A new group starts
        # one control timeout back: a request sent while we started is still unexpired.
        ctx.consume(
            SYS_CONTROL,
            self.controls.on_control,
            accept=(Control, RiskStateChange),
            start_id=recent_id(time.time() - ctx.settings.control_timeout_s),
        )
        ctx.consume(ACCOUNT, self.on_account, accept=(AccountSnapshot,))
        await self.subscribe_held("start")
        ctx.spawn(self.cycles.run(ctx.stop), "cycles")
        ctx.spawn(self._manage_loop(), "manage")

    # --- start-up state -----------------------------------------------------------------

    async def _load_signals(self) -> None:
        """Latest sentiment and candidates from market_data's hashes (no wait for a change)."""
        try:
            sent = decode_fields(await self.ctx.redis.hgetall(MD_SENTIMENT), SentimentHash)
            cands = decode_fields(await self.ctx.redis.hgetall(MD_CANDIDATES), CandidatesHash)
            rows = cands.rows() if cands is not None else []
        except msgspec.DecodeError as exc:  # the contract changed: say so, trade on none
            log.error("signals_unreadable", error=str(exc))
            return
        self.books.market.sentiment = sent.state if sent is not None else None
        self.books.market.candidates = [
            Candidate(symbol=r.symbol, direction=r.direction, score=r.score) for r in rows
        ]

    async def _load_gateway_status(self) -> None:
        """The adapter's current state: its newest (non-standby) ``gw:status`` entry,
        found past any number of IB errors. Its heartbeat mirrors the state only at the
        next beat (seconds late), so it is the fallback when the stream holds none;
        without either the state stays unknown until the consumer sees one."""
        latest = await latest_entry(
            self.ctx.redis,
            GW_STATUS,
            GatewayStatus.TYPE,
            lambda m: m.body.state is not ConnState.STANDBY,
            limit=self.ctx.settings.maxlen_status,
        )
        if latest is not None:
            self._status_order.newer(latest.id)
            status: GatewayStatus = latest.body
            if status.instance and not await self._adapter_alive(status.instance):
                gone = f"adapter {status.instance} gone (no heartbeat), last {status.state.value}"
                status = msgspec.structs.replace(status, state=ConnState.DISCONNECTED, reason=gone)
            self.books.market.on_status(status)
            log.info("gateway_status_loaded", state=status.state.value, entry=latest.id)
            return
        raw: Any = await self.ctx.redis.hgetall(service_key("gateway_adapter"))
        beat = {as_str(k): as_str(v) for k, v in raw.items()}
        with contextlib.suppress(ValueError, msgspec.ValidationError):
            state = ConnState(beat.get("ib_state", ""))
            self.books.market.on_status(
                GatewayStatus(
                    state=state,
                    reason=beat.get("ib_reason", ""),
                    client_id=int(beat.get("client_id") or 0),
                    server_version=int(beat.get("server_version") or 0),
                    data_type=DataType(beat.get("data_type") or DataType.LIVE.value),
                    account=beat.get("account", ""),
                    instance=beat.get("instance", ""),
                )
            )

    async def _adapter_alive(self, instance: str) -> bool:
        """Whether that adapter instance still beats, active or standby: the last word of
        one that crashed may be CONNECTED, and nothing is connected any more."""
        name = "gateway_adapter"
        active: Any = await self.ctx.redis.hget(service_key(name), "instance")
        if active is not None and as_str(active) == instance:
            return True
        return bool(await self.ctx.redis.exists(standby_key(name, instance)))

    async def subscribe_held(self, why: str) -> None:
        """Ask for quote lines of what we hold or have working (idempotent at the gateway)."""
        refs = {h.contract.key: h.contract for h in self.books.ledger.positions.values()}
        refs.update(
            {w.order.contract.key: w.order.contract for w in self.books.orders.working.values()}
        )
        if refs:
            body = Subscribe(contracts=list(refs.values()), priority=9, requester="strategy")
            await self.ctx.publisher.publish(GW_COMMANDS, body, key="strategy")
            log.info("subscribed_held", why=why, contracts=sorted(refs))

    # --- handlers -----------------------------------------------------------------------

    async def on_order_event(self, msg: Message[Any]) -> None:
        if not isinstance(msg.body, OrderEvent):
            return
        new_fill = apply_event(self.books, msg)
        if new_fill:
            fill = fill_from_event(msg.body, msg.ts)
            log.info(
                "fill",
                kind=msg.body.kind.value,
                client_order_id=msg.body.client_order_id,
                key=fill.contract.key if fill else "",
                qty=msg.body.fill_qty,
                price=msg.body.fill_price,
                commission=msg.body.commission,
            )
            if msg.body.kind is OrderEventKind.EXPIRED:
                self._expired(msg.body)

    def _expired(self, ev: OrderEvent) -> None:
        """An option settled at expiry (booked like a closing fill): say so as a decision."""
        symbol = ev.contract.symbol if ev.contract else ""
        key = ev.contract.key if ev.contract else ev.client_order_id
        ctx = Context("expiry", DecisionKind.EXPIRY, symbol)
        self.desk.decide(ctx, DecisionOutcome.TAKEN, f"{key} x{ev.fill_qty}: {ev.reason}")

    async def on_tick(self, msg: Message[Any]) -> None:
        if isinstance(msg.body, Quote):
            self.books.market.on_quote(msg.body)

    async def on_signal(self, msg: Message[Any]) -> None:
        body = msg.body
        if isinstance(body, SentimentSignal):
            self.books.market.sentiment = body.state
            self.cycles.wake.set()
        elif isinstance(body, CandidatesSignal):
            self.books.market.candidates = list(body.candidates)
            self.cycles.wake.set()

    async def on_status(self, msg: Message[Any]) -> None:
        body = msg.body
        if not isinstance(body, GatewayStatus) or not self._status_order.newer(msg.id):
            return  # an IB error, or a status older than the one start-up loaded
        was = self.books.market.gateway_connected
        self.books.market.on_status(body)
        now = self.books.market.gateway_connected
        if was and not now:
            self.chains.fail_all(f"gateway {body.state.value}")
        elif now and not was and body.state is ConnState.CONNECTED:
            await self.subscribe_held("gateway connected")

    async def on_account(self, msg: Message[Any]) -> None:
        body = msg.body
        if not isinstance(body, AccountSnapshot):
            return
        if body.simulated != self.ctx.settings.ib_route_orders:  # the book we trade on
            self.books.net_liquidation = dec(body.net_liquidation)
            await self.desk.day.on_broker(self.books.net_liquidation)
        alert = self.reconciler.observe(body, self.books.ledger.positions, time.monotonic())
        if alert is not None:
            self.ctx.publisher.add(SYS_ALERTS, alert, key=alert.code)
            log.warning("reconcile", message=alert.message, details=dict(alert.details))

    # --- loops --------------------------------------------------------------------------

    async def _manage_loop(self) -> None:
        stop = self.ctx.stop
        while not stop.is_set():
            self.ticks += 1
            try:
                await self.cycles.manage()
                await publish_views(
                    self.ctx.publisher,
                    self.ctx.redis,
                    self.books,
                    self.reconciler,
                    curve=self.ticks % CURVE_EVERY == 1,
                    day=self.desk.day,
                    limits=self.desk.risk.limits,
                )
            except RedisError as exc:  # Redis away: the next tick tries again
                log.warning("manage_failed", error=str(exc))
            self._heartbeat()
            await clock.current().sleep_or_stop(stop, MANAGE_INTERVAL_S)

    def _heartbeat(self) -> None:
        b = self.books
        self.ctx.extra.update(
            risk=b.status.state.value,
            positions=str(len(b.ledger.positions)),
            working=str(len(b.orders.working)),
            fills=str(b.ledger.fills),
            decisions=str(b.decisions),
            cycles=str(self.cycles.cycles),
            sentiment=b.market.sentiment.value if b.market.sentiment else "unknown",
            gateway="connected" if b.market.gateway_connected else "down",
        )


async def main(ctx: ServiceContext) -> None:
    """Entry point for ``optbot run strategy``."""
    await StrategyService(ctx).start()
